//! Authentication on one connection, as a state machine: nothing asked, a verdict awaited (for
//! the first credentials or a refresh), accepted, or failed. The session sends what
//! `AuthHandler::generate_auth_data` builds and feeds the verdicts in; this says what the state is
//! and when the awaited verdict times out.

use tokio::time::Instant;

/// Where authentication stands on the open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthState {
    /// No credentials were sent on this connection (the platform needs none, or not yet).
    Unused,
    /// Credentials were sent; the verdict is awaited until `deadline`.
    Pending {
        /// When a missing verdict becomes an error.
        deadline: Instant,
        /// A refresh on an authenticated connection, not the first credentials.
        refresh: bool,
    },
    /// The platform accepted the credentials.
    Authenticated,
    /// The last verdict was a refusal or never came (and the error policy kept the connection).
    Failed,
}

impl AuthState {
    /// Credentials were sent at connect (`refresh: false`) or to refresh them.
    pub(crate) fn sent(&mut self, deadline: Instant, refresh: bool) {
        *self = Self::Pending { deadline, refresh };
    }

    /// When the awaited verdict times out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Pending { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// Whether a verdict is awaited.
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self, Self::Pending { .. })
    }

    /// Whether `needs_reauthentication` is to be checked now: credentials were used on this
    /// connection and no verdict is awaited.
    pub(crate) fn checks_refresh(&self) -> bool {
        matches!(self, Self::Authenticated | Self::Failed)
    }

    /// The platform accepted; returns whether it was a refresh.
    pub(crate) fn accepted(&mut self) -> bool {
        let refresh = matches!(self, Self::Pending { refresh: true, .. });
        *self = Self::Authenticated;
        refresh
    }

    /// The platform refused, or the verdict did not come in time.
    pub(crate) fn failed(&mut self) {
        *self = Self::Failed;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn first_credentials_then_a_refresh() {
        let t = Instant::now() + Duration::from_secs(5);
        let mut auth = AuthState::Unused;
        assert!(
            !auth.checks_refresh(),
            "nothing to refresh without credentials"
        );
        auth.sent(t, false);
        assert_eq!(auth.deadline(), Some(t));
        assert!(
            !auth.checks_refresh(),
            "no refresh while a verdict is awaited"
        );
        assert!(!auth.accepted(), "the first verdict is not a refresh");
        assert!(auth.checks_refresh());
        auth.sent(t, true);
        assert!(auth.is_pending());
        assert!(auth.accepted(), "the second is");
    }

    #[test]
    fn a_failure_keeps_refresh_checks_and_clears_the_deadline() {
        let mut auth = AuthState::Unused;
        auth.sent(Instant::now(), false);
        auth.failed();
        assert_eq!(auth.deadline(), None);
        assert!(auth.checks_refresh());
    }
}
