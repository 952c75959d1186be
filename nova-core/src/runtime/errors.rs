//! Errors on a connection: what a WebSocket error means (nova's error, why the connection ended,
//! and the close code owed to the peer when the fault is theirs), and the error policy: every
//! error is logged and reported, then the `ErrorHandler`'s decision says whether the session goes
//! on, reconnects or stops.

use tokio_tungstenite::tungstenite;

use super::driver::{Driver, SessionEnd};
use super::events::LifecycleEvent;
use crate::config::ClientConfig;
use crate::error::Error;
use crate::handler::{Context, ErrorAction, ErrorContext, ErrorSource, Handler};
use crate::message::CloseFrame;
use crate::telemetry::EventKind;
use crate::types::{DisconnectReason, StopReason};

impl<H: Handler> Driver<H> {
    /// Logs an error, reports it, asks the handler, and returns how the session ends, if it does.
    pub(super) fn on_error(&mut self, error: &Error, source: ErrorSource) -> Option<SessionEnd> {
        self.log(error, source);
        self.obs.emit(LifecycleEvent::Error {
            kind: error.kind(),
            source: source.as_str(),
            message: error.to_string(),
        });
        self.obs.event(EventKind::ErrorOccurred {
            error_type: error.kind(),
            source: source.as_str(),
        });
        let context = self.error_context(source);
        let action = {
            let ctx = Context::new(&self.obs.state, &self.config, &mut self.out);
            self.handler.handle_error(error, &context, &ctx)
        };
        match action {
            ErrorAction::Continue => None,
            ErrorAction::Reconnect => Some(SessionEnd::Disconnected(DisconnectReason::Requested(
                format!("error handler: {}", error.kind()),
            ))),
            ErrorAction::Stop { reason } => Some(SessionEnd::Stop(StopReason::Policy(reason))),
        }
    }

    /// Hands an error to the handler's `log_error`.
    pub(super) fn log(&mut self, error: &Error, source: ErrorSource) {
        let context = self.error_context(source);
        self.handler.log_error(error, &context);
    }

    fn error_context(&self, source: ErrorSource) -> ErrorContext {
        ErrorContext {
            source,
            client: self.config.name.clone(),
            attempt: self.obs.state.reconnection_attempts,
        }
    }
}

/// Why a connection ended, from the peer's close frame if one came.
pub(crate) fn closed_reason(
    peer_close: Option<Option<CloseFrame>>,
    fallback: &str,
) -> DisconnectReason {
    match peer_close {
        Some(Some(c)) => DisconnectReason::ClosedByPeer {
            code: Some(c.code),
            reason: c.reason,
        },
        Some(None) => DisconnectReason::ClosedByPeer {
            code: None,
            reason: String::new(),
        },
        None => DisconnectReason::ConnectionLost(fallback.to_owned()),
    }
}

/// A WebSocket error, classified.
pub(crate) struct Classified {
    /// nova's error.
    pub(crate) error: Error,
    /// Why the connection ended.
    pub(crate) reason: DisconnectReason,
    /// The close code to send the peer when the fault is theirs (1007 invalid data, 1009 too
    /// big, 1002 protocol).
    pub(crate) close_code: Option<u16>,
}

/// Maps a WebSocket error to nova's error, the reason the connection ended, and the close code.
pub(crate) fn classify(
    e: tungstenite::Error,
    config: &ClientConfig,
    peer_close: Option<Option<CloseFrame>>,
) -> Classified {
    use tungstenite::Error as E;
    use tungstenite::error::CapacityError;
    let lost = |reason: DisconnectReason, error: Error| Classified {
        error,
        reason,
        close_code: None,
    };
    let peer_fault = |error: Error, why: String, code: u16| Classified {
        error,
        reason: DisconnectReason::ProtocolError(why),
        close_code: Some(code),
    };
    match e {
        E::ConnectionClosed | E::AlreadyClosed => {
            let reason = closed_reason(peer_close, "connection closed");
            let why = reason.to_string();
            lost(reason, Error::connection_lost(why))
        }
        E::Io(io) => {
            let why = io.to_string();
            let reason = match peer_close {
                Some(_) => closed_reason(peer_close, ""),
                None => DisconnectReason::ConnectionLost(why.clone()),
            };
            lost(reason, Error::connection_lost_by(why, io))
        }
        E::Utf8(detail) => {
            let why = "invalid UTF-8 in a text message".to_owned();
            let error = Error::protocol_by(why.clone(), E::Utf8(detail));
            peer_fault(error, why, 1007)
        }
        E::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            let why = format!("message of {size} bytes over the limit of {max_size}");
            let error = Error::MessageTooLarge {
                size,
                limit: max_size,
            };
            peer_fault(error, why, 1009)
        }
        E::Capacity(c) => {
            let limit = config.transport.max_frame_size.unwrap_or_default();
            peer_fault(
                Error::MessageTooLarge { size: 0, limit },
                c.to_string(),
                1009,
            )
        }
        E::Protocol(p @ tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            let why = "connection reset without a closing handshake".to_owned();
            let reason = match peer_close {
                Some(_) => closed_reason(peer_close, ""),
                None => DisconnectReason::ConnectionLost(why.clone()),
            };
            lost(reason, Error::connection_lost_by(why, p))
        }
        E::Protocol(p) => {
            let why = p.to_string();
            peer_fault(Error::protocol_by(why.clone(), p), why, 1002)
        }
        other => {
            let why = other.to_string();
            let reason = DisconnectReason::ConnectionLost(why.clone());
            lost(reason, Error::connection_lost_by(why, other))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig::builder("ws://127.0.0.1:1")
            .build()
            .expect("config")
    }

    #[test]
    fn invalid_utf8_is_the_peers_fault_with_1007() {
        let e = tungstenite::Error::Utf8("bad".into());
        let c = classify(e, &config(), None);
        assert_eq!(c.close_code, Some(1007));
        assert!(matches!(c.reason, DisconnectReason::ProtocolError(_)));
    }

    #[test]
    fn an_oversized_message_is_1009_with_its_size() {
        let e = tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
            size: 10,
            max_size: 5,
        });
        let c = classify(e, &config(), None);
        assert_eq!(c.close_code, Some(1009));
        assert!(matches!(
            c.error,
            Error::MessageTooLarge { size: 10, limit: 5 }
        ));
    }

    #[test]
    fn a_reset_after_the_peers_close_frame_is_a_close_by_the_peer() {
        let e = tungstenite::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let frame = CloseFrame {
            code: 4000,
            reason: "bye".into(),
        };
        let c = classify(e, &config(), Some(Some(frame)));
        assert_eq!(c.close_code, None, "nothing owed to a peer that left");
        assert_eq!(
            c.reason,
            DisconnectReason::ClosedByPeer {
                code: Some(4000),
                reason: "bye".into()
            }
        );
    }

    #[test]
    fn a_plain_reset_is_a_lost_connection_caused_by_the_io_error() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let readable = format!("connection lost: {io}");
        let c = classify(tungstenite::Error::Io(io), &config(), None);
        assert!(matches!(c.reason, DisconnectReason::ConnectionLost(_)));
        assert!(matches!(c.error, Error::ConnectionLost { .. }));
        assert_eq!(c.error.to_string(), readable);
        assert_eq!(c.error.kind(), "connection_lost");
        // The cause is kept: source() is the io::Error itself, so callers match its kind.
        let source = std::error::Error::source(&c.error);
        let io = source.and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(
            io.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        assert_eq!(
            c.error.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn a_protocol_violation_keeps_the_websocket_error_as_its_source() {
        let e =
            tungstenite::Error::Protocol(tungstenite::error::ProtocolError::NonZeroReservedBits);
        let c = classify(e, &config(), None);
        assert_eq!(c.close_code, Some(1002));
        assert_eq!(c.error.kind(), "protocol");
        assert!(
            c.error
                .to_string()
                .starts_with("protocol violation by the peer: "),
            "{}",
            c.error
        );
        let source = std::error::Error::source(&c.error).map(ToString::to_string);
        assert_eq!(
            source,
            Some(tungstenite::error::ProtocolError::NonZeroReservedBits.to_string())
        );
        let e = tungstenite::Error::Utf8("bad".into());
        let c = classify(e, &config(), None);
        assert!(std::error::Error::source(&c.error).is_some());
    }
}
