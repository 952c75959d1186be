//! `AuthHandler`: credentials on every connect, and refresh before they expire.

use super::{Context, RequestId};
use crate::error::HandlerError;
use crate::message::Message;

/// What the runtime asks credentials for: the request id the authentication message must carry
/// (its answer is recognised by it), and whether this is a refresh on an authenticated
/// connection or the first credentials of a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthRequest {
    /// The id to put in the authentication message.
    pub id: RequestId,
    /// A refresh on a connection that is authenticated already (not a new connection).
    pub refresh: bool,
}

impl AuthRequest {
    /// A request for credentials (for tests of an `AuthHandler`).
    #[must_use]
    pub fn new(id: RequestId, refresh: bool) -> Self {
        Self { id, refresh }
    }
}

/// The verdict on an authentication response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthOutcome {
    /// Accepted: the connection is authenticated.
    Authenticated,
    /// Not an answer to the authentication request; keep waiting.
    NotAuthResponse,
    /// The answer asked for another try: a new authentication message was queued on the
    /// context with this id (from [`Context::next_request_id`]), whose answer is awaited now
    /// (e.g. a refused token refresh followed by a full grant).
    Retrying {
        /// The id the new authentication message carries.
        id: RequestId,
    },
    /// Refused, with the platform's reason.
    Rejected(String),
}

/// Authentication (the seed's `AuthHandler`).
///
/// On every connect the runtime sends `generate_auth_data`'s message right after
/// `handle_connect`, before any subscription is restored or any buffered message is sent. The
/// message carries [`AuthRequest::id`]; until the verdict, every data message is offered to
/// `handle_auth_response`: the answer to that id (classified by `MessageHandler::message_type`
/// as a response to it) must be judged, `Authenticated` or `Rejected` (an answer left unjudged
/// is a rejection, so an adapter that forgets to override this callback fails at its first
/// connect instead of being "authenticated" by whatever arrives first); any other message may
/// be judged too (platforms whose verdict carries no id) or passed on with `NotAuthResponse`.
///
/// While authenticated, `needs_reauthentication` is checked every `auth_check_interval`; when it
/// says so, `generate_auth_data` is called again with [`AuthRequest::refresh`] set and its
/// message sent on the same connection. A rejection goes to the `ErrorHandler` (by default: the
/// client stops with the platform's reason); a missing answer within `request_timeout`
/// reconnects with backoff.
///
/// ```
/// use nova_core::{AuthHandler, AuthOutcome, AuthRequest, Context, HandlerError, Message};
///
/// struct TokenAuth { token: String }
///
/// impl AuthHandler for TokenAuth {
///     fn generate_auth_data(&mut self, request: &AuthRequest, _ctx: &mut Context<'_>) -> Result<Option<Message>, HandlerError> {
///         let message = serde_json::json!({"id": request.id.to_string(), "op": "auth", "token": self.token});
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
        request: &AuthRequest,
        ctx: &mut Context<'_>,
    ) -> Result<Option<Message>, HandlerError> {
        let _ = (request, ctx);
        Ok(None)
    }

    /// Judges a message received while authentication is pending. The default judges nothing
    /// (`NotAuthResponse`): a handler that sends credentials must override it.
    fn handle_auth_response(&mut self, response: &Message, ctx: &mut Context<'_>) -> AuthOutcome {
        let _ = (response, ctx);
        AuthOutcome::NotAuthResponse
    }

    /// Whether the runtime asks for credentials right after `handle_connect` (`true`, the
    /// default). When `false`, the connection waits in its authenticating phase (the
    /// application's sends held, messages flowing to the callbacks as usual) until a callback
    /// calls [`Context::begin_authentication`], typically on the server's greeting; then it
    /// goes on as above. Messages that arrive while the verdict is pending and are judged
    /// `NotAuthResponse` go on to their callbacks in order (a resumed session's replay).
    fn authenticates_on_connect(&self) -> bool {
        true
    }

    /// Whether credentials must be refreshed now (checked periodically while connected).
    fn needs_reauthentication(&self, ctx: &Context<'_>) -> bool {
        let _ = ctx;
        false
    }
}
