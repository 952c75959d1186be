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

/// Authentication (the seed's `AuthHandler`). The runtime sends `generate_auth_data`'s message
/// after `handle_connect` on every connect, before any subscription, and checks
/// `needs_reauthentication` on a timer to refresh credentials without dropping the connection.
pub trait AuthHandler {
    /// The authentication message to send, or `None` (the default) when the platform needs none.
    ///
    /// # Errors
    /// When credentials are missing or cannot be signed; the client stops with this error.
    fn generate_auth_data(&mut self, ctx: &Context<'_>) -> Result<Option<Message>, HandlerError> {
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
