//! Authentication on one connection, as a state machine: nothing asked, a verdict awaited (for
//! the first credentials or a refresh), accepted, or failed. The session sends what
//! `AuthHandler::generate_auth_data` builds and feeds the verdicts in; this says what the state is
//! and when the awaited verdict times out.

use tokio::time::Instant;

use crate::handler::RequestId;

/// Where authentication stands on the open connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthState {
    /// No credentials were sent on this connection (the platform needs none, or not yet).
    Unused,
    /// Credentials were sent with request id `id`; the verdict is awaited until `deadline`.
    Pending {
        /// The id the authentication message carried: its answer must be judged.
        id: RequestId,
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
    /// Credentials were sent with request id `id`, at connect (`refresh: false`) or to refresh
    /// them.
    pub(crate) fn sent(&mut self, id: RequestId, deadline: Instant, refresh: bool) {
        *self = Self::Pending {
            id,
            deadline,
            refresh,
        };
    }

    /// A new authentication message (id `id`) replaces the one awaited.
    pub(crate) fn retrying(&mut self, id: RequestId, deadline: Instant) {
        let refresh = matches!(self, Self::Pending { refresh: true, .. });
        self.sent(id, deadline, refresh);
    }

    /// The id of the authentication request awaiting its verdict.
    pub(crate) fn pending_id(&self) -> Option<&RequestId> {
        match self {
            Self::Pending { id, .. } => Some(id),
            _ => None,
        }
    }

    /// When the awaited verdict times out.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Self::Pending { deadline, .. } => Some(*deadline),
            _ => None,
        }
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
        auth.sent(RequestId::Num(1), t, false);
        assert_eq!(auth.deadline(), Some(t));
        assert_eq!(auth.pending_id(), Some(&RequestId::Num(1)));
        assert!(
            !auth.checks_refresh(),
            "no refresh while a verdict is awaited"
        );
        assert!(!auth.accepted(), "the first verdict is not a refresh");
        assert!(auth.checks_refresh());
        auth.sent(RequestId::Num(2), t, true);
        assert!(auth.pending_id().is_some());
        auth.retrying(RequestId::Num(3), t);
        assert_eq!(auth.pending_id(), Some(&RequestId::Num(3)));
        assert!(auth.accepted(), "the second is, whatever the tries");
    }

    #[test]
    fn a_failure_keeps_refresh_checks_and_clears_the_deadline() {
        let mut auth = AuthState::Unused;
        auth.sent(RequestId::Num(1), Instant::now(), false);
        auth.failed();
        assert_eq!(auth.deadline(), None);
        assert_eq!(auth.pending_id(), None);
        assert!(auth.checks_refresh());
    }
}
