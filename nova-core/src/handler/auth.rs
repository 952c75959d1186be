//! `AuthHandler`: credentials on every connect, and refresh before they expire.

use super::Context;
use crate::error::HandlerError;
use crate::message::Message;

/// The verdict on an authentication response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Accepted: the connection is authenticated.
    Authenticated,
    /// Not an answer to the authentication request; keep waiting.
    NotAuthResponse,
    /// Refused, with the platform's reason.
    Rejected(String),
}

/// Authentication (the seed's `AuthHandler`).
///
/// On every connect the runtime sends `generate_auth_data`'s message right after
/// `handle_connect`, before any subscription is restored or any buffered message is sent. Until
/// the verdict, every data message is first offered to `handle_auth_response`. While
/// authenticated, `needs_reauthentication` is checked every `auth_check_interval`; when it says
/// so, `generate_auth_data` is called again and its message (a token refresh) sent on the same
/// connection. A rejection goes to the `ErrorHandler` (by default: the client stops with the
/// platform's reason); a missing answer within `request_timeout` reconnects with backoff.
///
/// ```
/// use nova_core::{AuthHandler, AuthOutcome, Context, HandlerError, Message, MessageType, RequestId};
///
/// struct TokenAuth { token: String, pending: Option<RequestId> }
///
/// impl AuthHandler for TokenAuth {
///     fn generate_auth_data(&mut self, ctx: &mut Context<'_>) -> Result<Option<Message>, HandlerError> {
///         let id = ctx.next_request_id();
///         let message = serde_json::json!({"id": id.to_string(), "op": "auth", "token": self.token});
///         self.pending = Some(id);
///         Ok(Some(Message::json_of(&message)?))
///     }
///     fn handle_auth_response(&mut self, response: &Message, _ctx: &mut Context<'_>) -> AuthOutcome {
///         let Ok(v) = response.json::<serde_json::Value>() else { return AuthOutcome::NotAuthResponse };
///         if v["op"] != "auth" {
///             return AuthOutcome::NotAuthResponse;
///         }
///         match v["success"].as_bool() {
///             Some(true) => AuthOutcome::Authenticated,
///             _ => AuthOutcome::Rejected(v["error"].as_str().unwrap_or("refused").to_owned()),
///         }
///     }
/// }
/// ```
pub trait AuthHandler {
    /// The authentication message to send, or `None` (the default) when the platform needs none.
    ///
    /// # Errors
    /// When credentials are missing or cannot be signed; the client stops with this error.
    fn generate_auth_data(
        &mut self,
        ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let _ = ctx;
        Ok(None)
    }

    /// Judges a message received while authentication is pending.
    fn handle_auth_response(&mut self, response: &Message, ctx: &mut Context<'_>) -> AuthOutcome {
        let _ = (response, ctx);
        AuthOutcome::Authenticated
    }

    /// Whether credentials must be refreshed now (checked periodically while connected).
    fn needs_reauthentication(&self, ctx: &Context<'_>) -> bool {
        let _ = ctx;
        false
    }
}
