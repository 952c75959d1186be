//! [`DiscordHandle`]: the faults a test injects and what it reads back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::connection::Command;
use super::{ConnectionInfo, Counters, SessionInfo, SessionStartLimit, Shared, lock};

/// A handle on a running [`DiscordSim`](super::DiscordSim): fault injection and counters. Cheap to clone; it does
/// not keep the simulator running.
#[derive(Clone)]
pub struct DiscordHandle {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for DiscordHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordHandle")
            .field("addr", &self.shared.addr)
            .field("resume_addr", &self.shared.resume_addr)
            .finish_non_exhaustive()
    }
}

impl DiscordHandle {
    /// The main listener's address (HTTP and gateway).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The resume listener's address (READY's `resume_gateway_url`).
    #[must_use]
    pub fn resume_addr(&self) -> SocketAddr {
        self.shared.resume_addr
    }

    /// The REST base: `http://127.0.0.1:PORT/api/v10`.
    #[must_use]
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v10", self.shared.addr)
    }

    /// The gateway URL `/gateway/bot` answers: `ws://127.0.0.1:PORT` (no query, like Discord's).
    #[must_use]
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url()
    }

    /// READY's `resume_gateway_url`: `ws://127.0.0.1:RESUME_PORT`.
    #[must_use]
    pub fn resume_gateway_url(&self) -> String {
        self.shared.resume_url()
    }

    /// The URL to connect to: `ws://127.0.0.1:PORT/?v=10&encoding=json`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("{}/?v=10&encoding=json", self.gateway_url())
    }

    /// The counters so far.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.shared.counters.snapshot()
    }

    /// Every connection accepted (the last 1024 closed ones, and all open ones), in accept
    /// order.
    #[must_use]
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        lock(&self.shared.connections)
            .values()
            .map(|e| e.info.clone())
            .collect()
    }

    /// The connections open now.
    #[must_use]
    pub fn open_connections(&self) -> Vec<ConnectionInfo> {
        self.connections().into_iter().filter(|c| c.open).collect()
    }

    /// Every session, in creation order.
    #[must_use]
    pub fn sessions(&self) -> Vec<SessionInfo> {
        lock(&self.shared.sessions).infos()
    }

    /// The `session_start_limit` `/gateway/bot` would answer now.
    #[must_use]
    pub fn session_start_limit(&self) -> SessionStartLimit {
        lock(&self.shared.identify).limit(&self.shared.options, tokio::time::Instant::now())
    }

    /// Drops every open connection abruptly: SO_LINGER 0, so the peer sees a TCP reset and no
    /// close frame. Sessions stay resumable.
    pub async fn drop_all(&self) {
        self.command_all(Command::Drop).await;
    }

    /// Closes every open connection with a close frame carrying `code` and `reason`.
    pub async fn close_all(&self, code: u16, reason: &str) {
        self.command_all(Command::Close(code, reason.to_owned()))
            .await;
    }

    /// Sends a heartbeat request (`{"op":1,"d":null}`) on every open connection.
    pub async fn request_heartbeat(&self) {
        self.command_all(Command::RequestHeartbeat).await;
    }

    /// Sends Reconnect (`{"op":7,"d":null}`) on every open connection; each is closed with 4000
    /// after [`reconnect_grace`](super::DiscordSimOptions::reconnect_grace) unless the client closes
    /// first.
    pub async fn reconnect_all(&self) {
        self.command_all(Command::Reconnect).await;
    }

    /// Sends Invalid Session (`{"op":9,"d":resumable}`) on every identified connection. With
    /// `resumable: false`, their sessions end first (a Resume of them fails).
    pub async fn invalidate_sessions(&self, resumable: bool) {
        if !resumable {
            lock(&self.shared.sessions).invalidate_attached();
        }
        self.command_all(Command::InvalidSession(resumable)).await;
    }

    /// Zombie (`true`): heartbeats are no longer ACKed (dispatches go on). `false` ACKs again.
    pub fn set_zombie(&self, zombie: bool) {
        self.shared.zombie.store(zombie, Ordering::Relaxed);
    }

    /// Paused (`true`): the ticker adds no dispatches. [`emit`](Self::emit) still works.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }

    /// The next `connections` gateway connections get no Hello: the server stays silent (it
    /// still reads, ACKs heartbeats and closes for the usual reasons). Counted in
    /// [`Counters::hellos_withheld`].
    pub fn withhold_hello(&self, connections: u64) {
        self.shared
            .withhold_hello
            .store(connections, Ordering::Relaxed);
    }

    /// Appends a dispatch named `t` with data `d` (JSON text) to every live session, connected
    /// or not. Returns how many sessions got it.
    pub fn emit(&self, t: &str, d: &str) -> usize {
        lock(&self.shared.sessions).emit_all(t, d, &self.shared.options)
    }

    /// Waits up to `timeout` for `condition` on the counters; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, condition: impl Fn(&Counters) -> bool) -> bool {
        crate::wait_until(|| condition(&self.counters()), timeout).await
    }

    /// Waits up to `timeout` until `count` connections are open; returns whether they were.
    pub async fn wait_for_open_connections(&self, count: usize, timeout: Duration) -> bool {
        crate::wait_until(|| self.open_connections().len() == count, timeout).await
    }

    async fn command_all(&self, command: Command) {
        let senders: Vec<_> = lock(&self.shared.connections)
            .values()
            .filter(|e| e.info.open)
            .filter_map(|e| e.commands.clone())
            .collect();
        for sender in senders {
            // A connection that ended meanwhile has nothing left to do.
            let _ = sender.send(command.clone()).await;
        }
    }
}
