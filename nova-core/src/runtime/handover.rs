//! Make-before-break handover: a handler asks for it
//! ([`Context::request_handover`](crate::Context::request_handover)) when the platform announces
//! that the connection will end (Slack's `warning` / `refresh_requested`).
//!
//! ```text
//!  current ──────────────────────────────┐ drains (reads only) ─► closed by the peer, or drain ends
//!  request ─► next: URL, TCP, TLS, WS ─► switch ─► handle_connect ─► auth ─► restore ─► sends flow
//! ```
//!
//! While the next connection is opened, the current one carries everything. At the switch the
//! next becomes the session's connection (the same order of events as any connection: see
//! `driver.rs`), and the old one is kept only to read what it still delivers, which the handler
//! sees as any frame (de-duplicating what the platform may send twice is the platform's: Slack's
//! `envelope_id`). Writes always go to the session's connection. Requests in flight at the switch
//! stay pending: their answers may come on either connection. If the next connection cannot be
//! opened, the current one stays and the handler is told through `handle_error`.
//!
//! [`Handover`] owns the state (a connection being opened, a connection draining); the methods on
//! the driver below route its results.

use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

use super::driver::{Driver, SessionEnd};
use super::events::LifecycleEvent;
use super::session::close_with;
use crate::endpoint::{ConnectPurpose, EndpointRequest, SharedEndpoint, redacted};
use crate::error::Error;
use crate::handler::{ErrorSource, Handler};
use crate::message::Frame;
use crate::telemetry::EventKind;
use crate::transport::{Connected, Transport, WsStream};

/// A connection being opened: its URL asked of the handler or the endpoint source, then the
/// transport's connect. Owns everything it needs, so it can run beside the session.
pub(crate) type Opening =
    Pin<Box<dyn Future<Output = Result<(Connected, String), Error>> + Send + 'static>>;

/// Opens a connection to `fixed` when a URL is known, or to the URL `endpoint` gives.
pub(crate) fn open(
    transport: Transport,
    fixed: Option<String>,
    endpoint: Option<SharedEndpoint>,
    request: EndpointRequest,
) -> Opening {
    Box::pin(async move {
        let url = match (fixed, endpoint) {
            (Some(url), _) => url,
            (None, Some(source)) => source.0.endpoint(request).await?,
            (None, None) => {
                return Err(Error::Endpoint(crate::EndpointError::fatal(
                    "no URL: neither connect_url nor an endpoint source gave one",
                )));
            }
        };
        tracing::debug!(
            attempt = request.attempt,
            purpose = request.purpose.as_str(),
            url = %redacted(&url),
            "connecting"
        );
        let connected = transport.connect(&url).await?;
        Ok((connected, url))
    })
}

/// What [`Handover::next`] saw.
pub(crate) enum HandoverStep {
    /// A frame, an error or the end of the draining connection.
    Drained(Option<Result<tungstenite::Message, tungstenite::Error>>),
    /// The next connection is open, or could not be opened; asked for at the instant given.
    Opened(Box<Result<(Connected, String), Error>>, Instant),
}

/// The old connection of a handover, read until it ends.
struct Drain {
    ws: Box<WsStream>,
    /// When both connections became open.
    since: Instant,
    /// When it is closed whatever it still sends.
    until: Instant,
}

/// A handover's state: the next connection being opened, the old one draining (both can be
/// there: a second handover while the first drains).
#[derive(Default)]
pub(crate) struct Handover {
    opening: Option<(Instant, Opening)>,
    draining: Option<Drain>,
}

impl Handover {
    /// Whether a next connection is being opened.
    pub(crate) fn is_opening(&self) -> bool {
        self.opening.is_some()
    }

    /// What happens next on the handover's connections: a frame (or the end) of the draining
    /// one, or the next one opened (or failed). Pending forever when neither is there.
    pub(crate) async fn next(&mut self) -> HandoverStep {
        let Self { opening, draining } = self;
        tokio::select! {
            biased;
            read = async {
                match draining {
                    Some(drain) => drain.ws.next().await,
                    None => std::future::pending().await,
                }
            } => HandoverStep::Drained(read),
            (result, asked) = async {
                match opening {
                    Some((asked, opening)) => (opening.await, *asked),
                    None => std::future::pending().await,
                }
            } => {
                *opening = None;
                HandoverStep::Opened(Box::new(result), asked)
            }
        }
    }

    /// Whether anything is under way.
    pub(crate) fn is_active(&self) -> bool {
        self.opening.is_some() || self.draining.is_some()
    }

    /// When the draining connection is closed whatever it sends.
    pub(crate) fn drain_until(&self) -> Option<Instant> {
        self.draining.as_ref().map(|d| d.until)
    }

    /// Forgets everything (the session ended: both connections go with it).
    pub(crate) fn clear(&mut self) {
        self.opening = None;
        self.draining = None;
    }
}

impl<H: Handler> Driver<H> {
    /// A handler asked for a handover: the next connection starts opening, unless one already
    /// is.
    pub(super) fn start_handover(&mut self, reason: String) {
        if self.handover.is_opening() {
            tracing::debug!(%reason, "handover already under way; request ignored");
            return;
        }
        let Some(transport) = self.transport.clone() else {
            return;
        };
        let fixed = {
            let ctx = ctx!(self);
            self.handler.connect_url(&ctx)
        };
        let fixed = fixed.or_else(|| {
            self.config
                .endpoint
                .is_none()
                .then(|| self.config.url.clone())
        });
        let request = EndpointRequest::new(0, ConnectPurpose::Handover);
        let opening = open(transport, fixed, self.config.endpoint.clone(), request);
        self.handover.opening = Some((Instant::now(), opening));
        tracing::info!(%reason, "handover: opening the next connection");
        self.obs.emit(LifecycleEvent::HandoverStarted { reason });
        self.obs.event(EventKind::HandoverStarted);
    }

    /// The next connection is open (or could not be): it becomes the session's connection and
    /// the current one drains; or the current one stays.
    pub(super) async fn on_handover_opened(
        &mut self,
        ws: &mut WsStream,
        result: Box<Result<(Connected, String), Error>>,
        asked: Instant,
    ) -> Option<SessionEnd> {
        let (connected, url) = match *result {
            Ok(opened) => opened,
            Err(e) => {
                self.obs.event(EventKind::HandoverFailed {
                    error_type: e.kind(),
                });
                return self.on_error(&e, ErrorSource::Connect);
            }
        };
        let duration = asked.elapsed();
        let Connected {
            stream: mut next,
            peer_addr,
            protocol,
            ..
        } = connected;
        std::mem::swap(ws, &mut next);
        // A drain still under way ends now: at most two connections at a time.
        if let Some(older) = self.handover.draining.take() {
            self.close_drained(older, "a newer handover").await;
        }
        let now = Instant::now();
        self.handover.draining = Some(Drain {
            ws: Box::new(next),
            since: now,
            until: now + self.config.handover_drain,
        });
        self.obs.event(EventKind::HandoverSwitched { duration });
        // Per-connection state starts over for the new connection; requests in flight stay, as
        // their answers may still come on the old one.
        self.on_switch();
        let info = self.connect_info(url, peer_addr, protocol, duration, ConnectPurpose::Handover);
        self.on_connected(&info);
        self.open_session(ws, &info).await
    }

    /// A frame (or the end) of the draining connection.
    pub(super) async fn on_drained(
        &mut self,
        ws: &mut WsStream,
        read: Option<Result<tungstenite::Message, tungstenite::Error>>,
    ) -> Option<SessionEnd> {
        let message = match read {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                self.end_drain(&format!("read failed: {e}")).await;
                return None;
            }
            None => {
                self.end_drain("closed").await;
                return None;
            }
        };
        self.read_at = Instant::now();
        let frame = Frame::from_ws(message)?;
        if let Frame::Close(close) = &frame {
            let code = close.as_ref().map(|c| c.code);
            self.end_drain(&format!("closed by the peer ({code:?})"))
                .await;
            return None;
        }
        if let Some(end) = self.on_frame(frame) {
            return Some(end);
        }
        // What only makes sense for the connection it was asked on is not carried out for the
        // draining one.
        if let Some(why) = self.out.reconnect.take() {
            self.out.reconnect_close = None;
            tracing::debug!(%why, "reconnect asked on the draining connection: the drain ends");
            self.end_drain("the handler asked to drop it").await;
        }
        if let Some(why) = self.out.handover.take() {
            tracing::debug!(%why, "handover asked on the draining connection: ignored");
        }
        match self.apply_outbox(ws).await {
            Some(end) => Some(end),
            None => self.flush_sends(ws).await,
        }
    }

    /// The draining connection is done (closed by the peer, failed, or past its time).
    pub(super) async fn end_drain(&mut self, why: &str) {
        if let Some(drain) = self.handover.draining.take() {
            self.close_drained(drain, why).await;
        }
    }

    async fn close_drained(&mut self, mut drain: Drain, why: &str) {
        let overlap = drain.since.elapsed();
        // Boxed: rare, and its timer would otherwise size every state of the task.
        Box::pin(close_with(&mut drain.ws, 1000)).await;
        tracing::info!(why, "handover: the old connection is closed");
        self.obs.emit(LifecycleEvent::HandoverCompleted { overlap });
        self.obs.event(EventKind::HandoverCompleted { overlap });
    }
}
