//! One gateway connection's task: Hello, the client's payloads, the session's dispatches, the
//! heartbeat deadline and the handle's fault commands.
//!
//! The task owns the socket. It sends Hello (unless the handle withholds it), then reads
//! payloads in order: rate-limit check (4008), size (4002), JSON (4002), then the op. Dispatches come from the attached session's
//! log (see [`super::session`]): after every event of the loop the task writes whatever the log
//! holds past its cursor. With `zlib-stream` every payload goes through the connection's one
//! [`ZlibStreamDeflater`] as a binary message. When the loop ends the session is detached (and
//! ended if the client closed with 1000 or 1001), and the socket is closed as asked: a close
//! frame, or SO_LINGER 0 and a drop (a TCP reset).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::debug;

use super::compress::ZlibStreamDeflater;
use super::identify::{Identify, Outcome};
use super::session::{Attachment, ResumeRefused};
use super::{ConnectionInfo, Shared, bump, lock, register, unregister};

/// How long a write may wait for a client that does not read before the connection is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest payload a client may send (the docs); larger closes with 4002.
const MAX_CLIENT_PAYLOAD: usize = 4096;

/// A fault or event the handle asks a connection for.
#[derive(Clone, Debug)]
pub(super) enum Command {
    /// Drop the TCP socket without a close frame (a reset).
    Drop,
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
    /// Send a heartbeat request (op 1).
    RequestHeartbeat,
    /// Send Reconnect (op 7).
    Reconnect,
    /// Send Invalid Session (op 9) with this `d`.
    InvalidSession(bool),
}

type Ws = WebSocketStream<TcpStream>;

/// How a connection's loop ended.
#[derive(Debug)]
enum End {
    /// Reset the socket.
    Drop,
    /// Close with this code and reason.
    Close(u16, String),
    /// The client closed (with this code, if any) or the socket failed.
    Gone(Option<u16>),
}

fn close(code: u16, reason: &str) -> End {
    End::Close(code, reason.to_owned())
}

/// Serves a gateway connection after the upgrade. `version_ok: false` closes with 4012 at once.
pub(super) async fn serve(ws: Ws, shared: Arc<Shared>, info: ConnectionInfo, version_ok: bool) {
    let compressed = info.compressed;
    let (id, commands) = register(&shared, info);
    let mut conn = Conn {
        id,
        shared: &shared,
        ws,
        deflater: compressed.then(ZlibStreamDeflater::new),
        attachment: None,
        last_sent_seq: None,
        identified: false,
        sends: VecDeque::new(),
        last_heartbeat: Instant::now(),
        reconnect_deadline: None,
    };
    let end = if version_ok {
        conn.run(commands).await
    } else {
        close(4012, "Invalid API version.")
    };
    conn.finish(end).await;
    unregister(&shared, id);
}

struct Conn<'a> {
    id: u64,
    shared: &'a Shared,
    ws: Ws,
    deflater: Option<ZlibStreamDeflater>,
    attachment: Option<Attachment>,
    last_sent_seq: Option<u64>,
    identified: bool,
    /// When each client payload of the current window arrived.
    sends: VecDeque<Instant>,
    last_heartbeat: Instant,
    reconnect_deadline: Option<Instant>,
}

impl Conn<'_> {
    async fn run(&mut self, mut commands: mpsc::Receiver<Command>) -> End {
        let options = &self.shared.options;
        let interval = options.heartbeat_interval;
        let hello = format!(
            r#"{{"op":10,"s":null,"t":null,"d":{{"heartbeat_interval":{},"_trace":["nova-sim"]}}}}"#,
            interval.as_millis()
        );
        if self.shared.take_withheld_hello() {
            bump(&self.shared.counters.hellos_withheld);
        } else if self.write(vec![hello.into()]).await.is_err() {
            return End::Gone(None);
        }
        let mut shutdown = self.shared.shutdown.subscribe();
        loop {
            if self.flush_dispatches().await.is_err() {
                return End::Gone(None);
            }
            let notify: Option<Arc<Notify>> =
                self.attachment.as_ref().map(|a| Arc::clone(&a.notify));
            let heartbeat_deadline = self.last_heartbeat + interval + interval / 2;
            let far = Instant::now() + Duration::from_secs(24 * 3600);
            let reconnect_deadline = self.reconnect_deadline.unwrap_or(far);
            tokio::select! {
                biased;
                _ = shutdown.changed() => return close(1001, "server shutting down"),
                command = commands.recv() => {
                    let end = match command {
                        None => Some(End::Drop),
                        Some(command) => self.command(command).await,
                    };
                    if let Some(end) = end {
                        return end;
                    }
                }
                frame = self.ws.next() => {
                    let text = match frame {
                        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
                        Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                            Ok(text) => text,
                            Err(_) => return close(4002, "Decode error."),
                        },
                        Some(Ok(Message::Close(frame))) => {
                            return End::Gone(frame.map(|f| u16::from(f.code)));
                        }
                        Some(Ok(_)) => continue,
                        None | Some(Err(_)) => return End::Gone(None),
                    };
                    if let Some(end) = self.payload(&text).await {
                        return end;
                    }
                }
                () = wait(notify.as_deref()) => {}
                () = tokio::time::sleep_until(heartbeat_deadline), if options.heartbeat_timeout_code.is_some() => {
                    bump(&self.shared.counters.heartbeat_timeouts);
                    let code = options.heartbeat_timeout_code.unwrap_or(4000);
                    return close(code, "Heartbeat timed out.");
                }
                () = tokio::time::sleep_until(reconnect_deadline), if self.reconnect_deadline.is_some() => {
                    return close(4000, "Reconnect.");
                }
            }
        }
    }

    /// Handles one client payload; `Some` ends the connection.
    async fn payload(&mut self, text: &str) -> Option<End> {
        let shared = self.shared;
        let options = &shared.options;
        let now = Instant::now();
        shared.with_connection(self.id, |c| c.received += 1);
        self.sends.push_back(now);
        while self
            .sends
            .front()
            .is_some_and(|t| now.duration_since(*t) >= options.send_window)
        {
            self.sends.pop_front();
        }
        if self.sends.len() > usize::try_from(options.send_limit).unwrap_or(usize::MAX) {
            bump(&shared.counters.rate_limited);
            return Some(close(4008, "Rate limited."));
        }
        if text.len() > MAX_CLIENT_PAYLOAD {
            return Some(close(4002, "Decode error."));
        }
        let Ok(payload) = serde_json::from_str::<serde_json::Value>(text) else {
            return Some(close(4002, "Decode error."));
        };
        let Some(op) = payload.get("op").and_then(serde_json::Value::as_u64) else {
            return Some(close(4002, "Decode error."));
        };
        let d = payload.get("d").unwrap_or(&serde_json::Value::Null);
        match op {
            1 => self.heartbeat(d, now).await,
            2 => self.identify(d, now).await,
            6 => self.resume(d, now).await,
            3 | 4 | 8 | 31 | 43 if self.identified => None,
            3 | 4 | 8 | 31 | 43 => Some(close(4003, "Not authenticated.")),
            _ => Some(close(4001, "Unknown opcode.")),
        }
    }

    async fn heartbeat(&mut self, d: &serde_json::Value, now: Instant) -> Option<End> {
        let counters = &self.shared.counters;
        bump(&counters.heartbeats);
        self.last_heartbeat = now;
        if d.as_u64() != self.last_sent_seq {
            bump(&counters.heartbeat_seq_mismatches);
        }
        if self.shared.zombie.load(Ordering::Relaxed) {
            return None;
        }
        bump(&counters.heartbeat_acks);
        let ack = r#"{"op":11,"s":null,"t":null,"d":null}"#;
        self.write(vec![ack.into()]).await.err()
    }

    async fn identify(&mut self, d: &serde_json::Value, now: Instant) -> Option<End> {
        let shared = self.shared;
        if self.identified {
            return Some(close(4005, "Already authenticated."));
        }
        let Some(identify) = Identify::parse(d) else {
            return Some(close(4002, "Decode error."));
        };
        let token_ok = shared.token_ok(&identify.token);
        let outcome = lock(&shared.identify).check(&shared.options, &identify, token_ok, now);
        match outcome {
            Outcome::Accept => {
                bump(&shared.counters.identifies);
                let attachment = lock(&shared.sessions).create(
                    &identify.token,
                    identify.shard,
                    identify.intents,
                    self.id,
                    &shared.resume_url(),
                    &shared.options,
                );
                self.attach(attachment);
                None
            }
            Outcome::Close(code, reason) => {
                if code == 4004 {
                    bump(&shared.counters.auth_failures);
                }
                Some(close(code, reason))
            }
            Outcome::RateLimited => {
                bump(&shared.counters.identify_rate_limited);
                self.invalid_session(false).await
            }
        }
    }

    async fn resume(&mut self, d: &serde_json::Value, now: Instant) -> Option<End> {
        let shared = self.shared;
        if self.identified {
            return Some(close(4005, "Already authenticated."));
        }
        let token = d.get("token").and_then(serde_json::Value::as_str);
        let session_id = d.get("session_id").and_then(serde_json::Value::as_str);
        let seq = d.get("seq").and_then(serde_json::Value::as_u64);
        let (Some(token), Some(session_id), Some(seq)) = (token, session_id, seq) else {
            return Some(close(4002, "Decode error."));
        };
        if !shared.token_ok(token) {
            bump(&shared.counters.auth_failures);
            return Some(close(4004, "Authentication failed."));
        }
        let resumed =
            lock(&shared.sessions).resume(session_id, token, seq, self.id, now, &shared.options);
        match resumed {
            Ok(attachment) => {
                bump(&shared.counters.resumes);
                self.attach(attachment);
                None
            }
            Err(ResumeRefused::Invalid) => {
                bump(&shared.counters.resume_failures);
                self.invalid_session(false).await
            }
            Err(ResumeRefused::BadSeq) => {
                bump(&shared.counters.resume_failures);
                Some(close(4007, "Invalid seq."))
            }
        }
    }

    fn attach(&mut self, attachment: Attachment) {
        let session_id = attachment.session_id.clone();
        self.shared
            .with_connection(self.id, |c| c.session_id = Some(session_id));
        self.attachment = Some(attachment);
        self.identified = true;
    }

    /// Sends op 9 with `d: resumable`; the connection is no longer identified.
    async fn invalid_session(&mut self, resumable: bool) -> Option<End> {
        bump(&self.shared.counters.invalid_sessions);
        if let Some(attachment) = self.attachment.take() {
            lock(&self.shared.sessions).detach(
                &attachment.session_id,
                self.id,
                Instant::now(),
                false,
            );
        }
        self.identified = false;
        let text = format!(r#"{{"op":9,"s":null,"t":null,"d":{resumable}}}"#);
        self.write(vec![text.into()]).await.err()
    }

    /// Obeys a handle command; `Some` ends the connection.
    async fn command(&mut self, command: Command) -> Option<End> {
        let counters = &self.shared.counters;
        match command {
            Command::Drop => Some(End::Drop),
            Command::Close(code, reason) => Some(End::Close(code, reason)),
            Command::RequestHeartbeat => {
                bump(&counters.heartbeat_requests);
                let text = r#"{"op":1,"s":null,"t":null,"d":null}"#;
                self.write(vec![text.into()]).await.err()
            }
            Command::Reconnect => {
                bump(&counters.reconnects);
                self.reconnect_deadline =
                    Some(Instant::now() + self.shared.options.reconnect_grace);
                let text = r#"{"op":7,"s":null,"t":null,"d":null}"#;
                self.write(vec![text.into()]).await.err()
            }
            Command::InvalidSession(resumable) => {
                if !self.identified {
                    return None;
                }
                if let Some(attachment) = &self.attachment
                    && !resumable
                {
                    lock(&self.shared.sessions).invalidate(&attachment.session_id);
                }
                self.invalid_session(resumable).await
            }
        }
    }

    /// Writes the attached session's dispatches past the cursor.
    async fn flush_dispatches(&mut self) -> Result<(), End> {
        let Some(attachment) = &self.attachment else {
            return Ok(());
        };
        let pending =
            lock(&self.shared.sessions).pending(&attachment.session_id, self.id, attachment.cursor);
        let Some(pending) = pending else {
            // Another connection resumed the session: this one no longer dispatches.
            self.attachment = None;
            self.identified = false;
            return Ok(());
        };
        let Some(&(last, _)) = pending.last() else {
            return Ok(());
        };
        let seqs: Vec<u64> = pending.iter().map(|(s, _)| *s).collect();
        let count = seqs.len() as u64;
        let session_id = attachment.session_id.clone();
        self.write(pending.into_iter().map(|(_, text)| text).collect())
            .await?;
        if let Some(attachment) = &mut self.attachment {
            attachment.cursor = last + 1;
        }
        self.last_sent_seq = Some(last);
        lock(&self.shared.sessions).record_sent(&session_id, seqs);
        self.shared
            .counters
            .dispatches
            .fetch_add(count, Ordering::Relaxed);
        Ok(())
    }

    /// Writes `texts` (compressed when asked) and flushes; fails when the socket fails or the
    /// client has not taken them within [`WRITE_TIMEOUT`].
    async fn write(&mut self, texts: Vec<Arc<str>>) -> Result<(), End> {
        let ws = &mut self.ws;
        let deflater = &mut self.deflater;
        let all = async {
            for text in texts {
                let message = match deflater {
                    Some(deflater) => Message::binary(deflater.compress(text.as_bytes())),
                    None => Message::text(&*text),
                };
                ws.feed(message).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, all).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone(None)),
        }
    }

    /// Detaches the session and closes the socket as `end` says.
    async fn finish(mut self, end: End) {
        let shared = self.shared;
        let client_close = match &end {
            End::Gone(code) => *code,
            _ => None,
        };
        if let Some(attachment) = self.attachment.take() {
            let ends_session = matches!(client_close, Some(1000 | 1001));
            lock(&shared.sessions).detach(
                &attachment.session_id,
                self.id,
                Instant::now(),
                ends_session,
            );
        }
        debug!(id = self.id, ?end, "discord sim: connection ends");
        match end {
            End::Drop => {
                // A zero linger does not block (what `set_zero_linger` does in newer tokio).
                #[allow(deprecated)]
                let _ = self.ws.get_ref().set_linger(Some(Duration::ZERO));
                drop(self.ws);
            }
            End::Close(code, reason) => {
                bump(&shared.counters.closes);
                shared.with_connection(self.id, |c| c.server_close_code = Some(code));
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), self.ws.close(Some(frame))).await;
                // Let the client's close frame come back before the socket goes.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    while let Some(Ok(_)) = self.ws.next().await {}
                })
                .await;
            }
            End::Gone(code) => {
                shared.with_connection(self.id, |c| c.client_close_code = code);
                let _ = tokio::time::timeout(Duration::from_secs(1), self.ws.close(None)).await;
            }
        }
    }
}

/// Waits for the session's next dispatch, or forever without a session.
async fn wait(notify: Option<&Notify>) {
    match notify {
        Some(notify) => notify.notified().await,
        None => std::future::pending().await,
    }
}
