//! The session a shard keeps across connections, and the one decision every disconnect needs:
//! resume, identify again, or stop.
//!
//! [`GatewaySession`] holds the discovered gateway URL, the [`Session`] READY created
//! (`session_id`, `resume_gateway_url`) and the last sequence number of any dispatch. After a
//! disconnect, [`GatewaySession::next_connect`] turns the cause into a [`NextConnect`]:
//!
//! | cause | next |
//! |---|---|
//! | dropped (no close frame), zombie, no Hello, op 7, op 9 `d: true` | Resume at `resume_gateway_url` |
//! | closed with a resumable code (everything not below) | Resume |
//! | closed with 4007 or 4009 | Identify at the gateway URL |
//! | op 9 `d: false` | Identify at the gateway URL after 1–5 s |
//! | closed with 4004, 4010–4014 | Stop with the code; never retried |
//!
//! A Resume needs a session and a sequence number; without them every "resume" is an Identify.
//! An Identify decision forgets the session, so what follows cannot resume a dead one. URLs get
//! the query the connection needs ([`ConnectParams`]), appended to whatever Discord gave
//! (`wss://gateway.discord.gg` or `wss://host/`).

use std::time::Duration;

use crate::close::{CloseAction, CloseCode, close_action};
use crate::event::Ready;

/// A session READY created.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// `session_id`.
    pub id: String,
    /// `resume_gateway_url`, as Discord sent it (no query).
    pub resume_gateway_url: String,
}

/// The query of every gateway connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectParams {
    /// `compress=zlib-stream`.
    pub zlib_stream: bool,
}

impl ConnectParams {
    /// Sets [`zlib_stream`](Self::zlib_stream).
    #[must_use]
    pub fn with_zlib_stream(mut self, on: bool) -> Self {
        self.zlib_stream = on;
        self
    }

    /// `base` with `?v=10&encoding=json[&compress=zlib-stream]` (a query already there is
    /// replaced; a missing path becomes `/`).
    ///
    /// ```
    /// use nova_discord::ConnectParams;
    ///
    /// let params = ConnectParams::default().with_zlib_stream(true);
    /// assert_eq!(
    ///     params.url("wss://gateway.discord.gg"),
    ///     "wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream"
    /// );
    /// assert_eq!(ConnectParams::default().url("ws://127.0.0.1:9/?v=9"), "ws://127.0.0.1:9/?v=10&encoding=json");
    /// ```
    #[must_use]
    pub fn url(self, base: &str) -> String {
        let base = base.split(['?', '#']).next().unwrap_or(base);
        let after_scheme = base.find("://").map_or(0, |i| i + 3);
        let slash = if base[after_scheme..].contains('/') {
            ""
        } else {
            "/"
        };
        let compress = if self.zlib_stream {
            "&compress=zlib-stream"
        } else {
            ""
        };
        format!("{base}{slash}?v=10&encoding=json{compress}")
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disconnect {
    /// The server closed with this code.
    Closed(u16),
    /// The connection ended without a close frame (reset, EOF, I/O error, handshake failure).
    Dropped,
    /// No heartbeat ACK before the next beat: the client closed (non-1000) to resume.
    Zombie,
    /// No Hello within the configured bound after the socket opened: the client closed
    /// (non-1000) to try again, resuming when it can.
    NoHello,
    /// The server sent Reconnect (op 7).
    Reconnect,
    /// The server sent Invalid Session (op 9) with this `d`.
    InvalidSession {
        /// `d`.
        resumable: bool,
    },
}

/// Where and how the next connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextConnect {
    /// Connect to `url` and send Resume with `session_id` and `seq`.
    Resume {
        /// `resume_gateway_url` with the query.
        url: String,
        /// The session.
        session_id: String,
        /// The last sequence number received.
        seq: u64,
    },
    /// Connect to `url` (the discovered gateway) after `after` and send Identify.
    Identify {
        /// The gateway URL with the query.
        url: String,
        /// How long to wait first (op 9 `d: false`: 1–5 s; otherwise zero, the runtime's
        /// backoff and the identify limiter add their own waits).
        after: Duration,
    },
    /// Stop; the code says why (4004, 4010–4014).
    Stop(CloseCode),
}

/// One shard's session state across connections.
///
/// ```
/// use nova_discord::{ConnectParams, Disconnect, GatewaySession, NextConnect};
///
/// let mut session = GatewaySession::new("wss://gateway.discord.gg", ConnectParams::default());
/// session.on_session("abc".into(), "wss://resume.discord.gg".into());
/// session.observe_seq(Some(42));
/// assert_eq!(
///     session.next_connect(Disconnect::Dropped, 0.5),
///     NextConnect::Resume {
///         url: "wss://resume.discord.gg/?v=10&encoding=json".into(),
///         session_id: "abc".into(),
///         seq: 42,
///     }
/// );
/// ```
#[derive(Clone, Debug)]
pub struct GatewaySession {
    gateway_url: String,
    params: ConnectParams,
    session: Option<Session>,
    seq: Option<u64>,
}

impl GatewaySession {
    /// A shard that will identify at `gateway_url` (from discovery, without query).
    #[must_use]
    pub fn new(gateway_url: impl Into<String>, params: ConnectParams) -> Self {
        Self {
            gateway_url: gateway_url.into(),
            params,
            session: None,
            seq: None,
        }
    }

    /// The URL of the first connection (Identify).
    #[must_use]
    pub fn identify_url(&self) -> String {
        self.params.url(&self.gateway_url)
    }

    /// Replaces the gateway URL (a new discovery).
    pub fn set_gateway_url(&mut self, url: impl Into<String>) {
        self.gateway_url = url.into();
    }

    /// The session, once READY came.
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// The last sequence number received: Heartbeat's `d` and Resume's `seq`.
    #[must_use]
    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    /// Records a dispatch's `s` (null ones change nothing; a lower one is ignored, as a
    /// sequence never goes back within a session).
    pub fn observe_seq(&mut self, seq: Option<u64>) {
        if let Some(seq) = seq
            && self.seq.is_none_or(|last| seq > last)
        {
            self.seq = Some(seq);
        }
    }

    /// READY: a new session (its `s` is recorded separately by [`observe_seq`](Self::observe_seq)).
    pub fn on_ready(&mut self, ready: &Ready) {
        self.on_session(ready.session_id.clone(), ready.resume_gateway_url.clone());
    }

    /// A new session with this id and resume URL.
    pub fn on_session(&mut self, id: String, resume_gateway_url: String) {
        self.session = Some(Session {
            id,
            resume_gateway_url,
        });
    }

    /// Forgets the session (it cannot be resumed any more).
    pub fn forget(&mut self) {
        self.session = None;
        self.seq = None;
    }

    /// Decides the next connection after `cause`. `jitter` in `[0, 1]` (from the caller's
    /// random source) spreads the 1–5 s wait after op 9 `d: false`.
    pub fn next_connect(&mut self, cause: Disconnect, jitter: f64) -> NextConnect {
        let resume = match cause {
            Disconnect::Closed(code) => match close_action(Some(code)) {
                CloseAction::Resume => true,
                CloseAction::Reidentify => false,
                CloseAction::Fatal(code) => {
                    self.forget();
                    return NextConnect::Stop(code);
                }
            },
            Disconnect::Dropped
            | Disconnect::Zombie
            | Disconnect::NoHello
            | Disconnect::Reconnect => true,
            Disconnect::InvalidSession { resumable } => resumable,
        };
        if let (true, Some(session), Some(seq)) = (resume, &self.session, self.seq) {
            return NextConnect::Resume {
                url: self.params.url(&session.resume_gateway_url),
                session_id: session.id.clone(),
                seq,
            };
        }
        self.forget();
        let after = match cause {
            Disconnect::InvalidSession { resumable: false } => {
                let jitter = if jitter.is_finite() {
                    jitter.clamp(0.0, 1.0)
                } else {
                    0.5
                };
                Duration::from_secs(1) + Duration::from_secs(4).mul_f64(jitter)
            }
            _ => Duration::ZERO,
        };
        NextConnect::Identify {
            url: self.identify_url(),
            after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready_session() -> GatewaySession {
        let mut session = GatewaySession::new("ws://g", ConnectParams::default());
        session.on_session("s1".into(), "ws://r".into());
        session.observe_seq(Some(1));
        session.observe_seq(None);
        session.observe_seq(Some(9));
        session.observe_seq(Some(3));
        session
    }

    fn resume() -> NextConnect {
        NextConnect::Resume {
            url: "ws://r/?v=10&encoding=json".into(),
            session_id: "s1".into(),
            seq: 9,
        }
    }

    fn identify(after: Duration) -> NextConnect {
        NextConnect::Identify {
            url: "ws://g/?v=10&encoding=json".into(),
            after,
        }
    }

    #[test]
    fn resumable_causes_resume() {
        for cause in [
            Disconnect::Dropped,
            Disconnect::Zombie,
            Disconnect::NoHello,
            Disconnect::Reconnect,
            Disconnect::InvalidSession { resumable: true },
            Disconnect::Closed(4000),
            Disconnect::Closed(4008),
            Disconnect::Closed(1006),
        ] {
            assert_eq!(
                ready_session().next_connect(cause, 0.0),
                resume(),
                "{cause:?}"
            );
        }
    }

    #[test]
    fn new_session_causes_identify_and_forget() {
        for code in [4007, 4009] {
            let mut session = ready_session();
            assert_eq!(
                session.next_connect(Disconnect::Closed(code), 0.0),
                identify(Duration::ZERO)
            );
            assert!(session.session().is_none() && session.seq().is_none());
            // And the next drop cannot resume a dead session.
            assert_eq!(
                session.next_connect(Disconnect::Dropped, 0.0),
                identify(Duration::ZERO)
            );
        }
        let mut session = ready_session();
        let next = session.next_connect(Disconnect::InvalidSession { resumable: false }, 1.0);
        assert_eq!(next, identify(Duration::from_secs(5)));
        let next =
            ready_session().next_connect(Disconnect::InvalidSession { resumable: false }, 0.0);
        assert_eq!(next, identify(Duration::from_secs(1)));
        let next =
            ready_session().next_connect(Disconnect::InvalidSession { resumable: false }, f64::NAN);
        assert_eq!(next, identify(Duration::from_secs(3)));
    }

    #[test]
    fn fatal_codes_stop() {
        for code in [4004, 4010, 4011, 4012, 4013, 4014] {
            let next = ready_session().next_connect(Disconnect::Closed(code), 0.0);
            assert_eq!(next, NextConnect::Stop(CloseCode::from_code(code)));
        }
    }

    #[test]
    fn no_session_means_identify() {
        let mut session = GatewaySession::new("ws://g", ConnectParams::default());
        assert_eq!(
            session.next_connect(Disconnect::Dropped, 0.0),
            identify(Duration::ZERO)
        );
    }
}
