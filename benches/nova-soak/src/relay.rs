//! A TCP relay in front of a simulator, one per client, with the transport faults the test kit's
//! simulators do not have: reset (`SO_LINGER` 0), FIN without a close frame, a stall (nothing
//! forwarded either way, sockets open: a half-open peer), refused handshakes (an HTTP 503 with
//! `Retry-After` written by the relay), bad frames slipped in at a frame boundary
//! ([`BadFrame`]), and a server that is down (every connection reset at once; the relay's port
//! stays, so the server can come back behind it at a new address).
//!
//! Because a relay serves one client, it also sees that client's reconnect spacing from outside:
//! the time from the end of one connection (or refused attempt) to the next accept.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::frame::{BadFrame, FrameCursor};

/// What a connection's pumps do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forward both ways.
    Run,
    /// Forward nothing; keep both sockets open.
    Stall,
    /// Reset the client's socket.
    Rst,
    /// Send the client a FIN (no close frame), drop the server side.
    Fin,
}

/// The first sign that a connection is ending: a fault the relay injected, a close frame in
/// either direction, or the socket closing. The client may decide to reconnect at that moment,
/// before the TCP connection is gone (while it waits for a close reply, say).
type Hint = Arc<Mutex<Option<Instant>>>;

fn hint(h: &Hint) {
    lock(h).get_or_insert_with(Instant::now);
}

/// One open connection, as the fault injector sees it.
#[derive(Debug)]
struct Conn {
    mode: watch::Sender<Mode>,
    inject: Arc<Mutex<Vec<BadFrame>>>,
    hint: Hint,
}

/// The client's connections over time, for the spacing of its reconnects. Only the latest
/// connection counts: an older one still closing (a zombie the client gave up on) says nothing
/// about when the client decided to connect again.
#[derive(Debug, Default)]
struct Timeline {
    /// The number the next accepted connection gets.
    next: u64,
    /// When the latest connection ended (its first sign of ending), once it has.
    latest_end: Option<Instant>,
}

impl Timeline {
    /// A connection was accepted: its number, and the spacing since the latest one ended (if it
    /// had; a connect while the latest is still open measures nothing).
    fn accept(&mut self) -> (u64, Option<Duration>) {
        let id = self.next;
        self.next += 1;
        (id, self.latest_end.take().map(|end| end.elapsed()))
    }

    /// Connection `id` ended at `end`.
    fn end(&mut self, id: u64, end: Instant) {
        if id + 1 == self.next {
            self.latest_end = Some(end);
        }
    }
}

/// State shared by a relay's accept loop, its connections and its handle.
#[derive(Debug)]
struct Shared {
    upstream: Mutex<Option<SocketAddr>>,
    refuse: AtomicU32,
    conns: Mutex<Vec<Conn>>,
    timeline: Mutex<Timeline>,
    /// Gaps from an end to the next accept.
    gaps: Mutex<Vec<Duration>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A relay for one client. Dropping it stops accepting (open connections end with their peers).
#[derive(Debug)]
pub(crate) struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    /// A relay on `127.0.0.1:0` forwarding to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(Some(upstream)),
            refuse: AtomicU32::new(0),
            conns: Mutex::new(Vec::new()),
            timeline: Mutex::default(),
            gaps: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// The address clients connect to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where to forward from now on; `None`: the server is down (connections are reset).
    pub(crate) fn set_upstream(&self, upstream: Option<SocketAddr>) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Refuses the next `n` handshakes with `503 Service Unavailable` and `Retry-After: 1`.
    pub(crate) fn refuse_next(&self, n: u32) {
        self.shared.refuse.store(n, Ordering::Relaxed);
    }

    fn set_mode(&self, mode: Mode) -> usize {
        let mut conns = lock(&self.shared.conns);
        conns.retain(|c| !c.mode.is_closed());
        for c in conns.iter() {
            if mode != Mode::Stall {
                hint(&c.hint);
            }
            c.mode.send_replace(mode);
        }
        conns.len()
    }

    /// Resets the open connections; returns how many there were.
    pub(crate) fn rst(&self) -> usize {
        self.set_mode(Mode::Rst)
    }

    /// Ends the open connections with a FIN and no close frame.
    pub(crate) fn fin(&self) -> usize {
        self.set_mode(Mode::Fin)
    }

    /// Stalls the open connections for `for_`, then lets them run again.
    pub(crate) fn stall(&self, for_: Duration) -> usize {
        let n = self.set_mode(Mode::Stall);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(for_).await;
            for c in lock(&shared.conns).iter() {
                c.mode.send_if_modified(|m| {
                    let stalled = *m == Mode::Stall;
                    if stalled {
                        *m = Mode::Run;
                    }
                    stalled
                });
            }
        });
        n
    }

    /// Slips `bad` into the open connections at their next frame boundary.
    pub(crate) fn inject(&self, bad: BadFrame) -> usize {
        let mut conns = lock(&self.shared.conns);
        conns.retain(|c| !c.mode.is_closed());
        for c in conns.iter() {
            hint(&c.hint);
            lock(&c.inject).push(bad);
        }
        conns.len()
    }

    /// The gaps seen so far between the end of a connection and the next accept, taken out.
    pub(crate) fn take_gaps(&self) -> Vec<Duration> {
        std::mem::take(&mut *lock(&self.shared.gaps))
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (id, gap) = lock(&shared.timeline).accept();
        if let Some(gap) = gap {
            lock(&shared.gaps).push(gap);
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let h = Hint::default();
            serve(client, &shared, &h).await;
            let end = lock(&h).unwrap_or_else(Instant::now);
            lock(&shared.timeline).end(id, end);
        });
    }
}

#[allow(deprecated)] // `set_linger`: a zero linger does not block on drop.
fn reset(stream: &TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// Reads an HTTP request head (bounded) and answers 503.
async fn refuse(mut client: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let answer = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let _ = client.write_all(answer).await;
    let _ = client.shutdown().await;
}

async fn serve(client: TcpStream, shared: &Shared, h: &Hint) {
    let _ = client.set_nodelay(true);
    let upstream = *lock(&shared.upstream);
    let refused = shared
        .refuse
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok();
    let Some(upstream) = upstream else {
        reset(&client);
        return;
    };
    if refused {
        refuse(client).await;
        return;
    }
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(_) => {
            reset(&client);
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let (mode_tx, mode_rx) = watch::channel(Mode::Run);
    let inject = Arc::new(Mutex::new(Vec::new()));
    lock(&shared.conns).push(Conn {
        mode: mode_tx,
        inject: Arc::clone(&inject),
        hint: Arc::clone(h),
    });
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        () = up(cr, sw, mode_rx.clone(), h) => {}
        () = down(sr, cw, mode_rx, inject, h) => {}
    }
    hint(h);
}

/// Waits while stalled; returns the mode to act on.
async fn mode_now(mode: &mut watch::Receiver<Mode>) -> Option<Mode> {
    loop {
        let m = *mode.borrow_and_update();
        if m != Mode::Stall {
            return Some(m);
        }
        mode.changed().await.ok()?;
    }
}

/// Client to server. Owns the client's read half, so it is the one that resets the client.
/// While stalled it reads nothing but still notices the client going away.
async fn up(
    mut cr: OwnedReadHalf,
    mut sw: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    h: &Hint,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut cursor = FrameCursor::default();
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Fin => return,
            Mode::Rst => {
                reset(cr.as_ref());
                return;
            }
            Mode::Stall => {
                tokio::select! {
                    changed = mode.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(Duration::from_millis(20)) => {
                        let peeked = tokio::time::timeout(Duration::ZERO, cr.peek(&mut buf)).await;
                        match peeked {
                            Ok(Ok(0) | Err(_)) => return,
                            // Unread bytes: a close frame among them is the client leaving.
                            Ok(Ok(n)) => {
                                let mut ahead = cursor.clone();
                                ahead.advance(&buf[..n]);
                                if ahead.closes() > cursor.closes() {
                                    hint(h);
                                }
                            }
                            Err(_elapsed) => {}
                        }
                    }
                }
                continue;
            }
            Mode::Run => {}
        }
        tokio::select! {
            read = cr.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    cursor.advance(&buf[..n]);
                    if cursor.closes() > 0 {
                        hint(h);
                    }
                    if sw.write_all(&buf[..n]).await.is_err() { return }
                }
            },
            _ = mode.changed() => {}
        }
    }
}

/// Server to client, with injections at frame boundaries.
async fn down(
    mut sr: OwnedReadHalf,
    mut cw: OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    inject: Arc<Mutex<Vec<BadFrame>>>,
    h: &Hint,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut cursor = FrameCursor::default();
    // After an oversized header nothing is a frame boundary: stop forwarding, keep the socket.
    let mut poisoned = false;
    loop {
        match mode_now(&mut mode).await {
            None => return,
            Some(Mode::Fin) => {
                let _ = cw.shutdown().await;
                return;
            }
            Some(Mode::Rst) => {
                // `up` resets; wait to be dropped.
                std::future::pending::<()>().await;
            }
            Some(Mode::Run | Mode::Stall) => {}
        }
        tokio::select! {
            read = sr.read(&mut buf), if !poisoned => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let chunk = &buf[..n];
                    let at = cursor.advance(chunk);
                    if cursor.closes() > 0 {
                        hint(h);
                    }
                    let pending: Vec<BadFrame> = match at {
                        Some(_) => std::mem::take(&mut *lock(&inject)),
                        None => Vec::new(),
                    };
                    let split = at.unwrap_or(n);
                    if cw.write_all(&chunk[..split]).await.is_err() { return }
                    for bad in &pending {
                        if cw.write_all(&bad.bytes()).await.is_err() { return }
                        if *bad == BadFrame::Oversized {
                            poisoned = true;
                            break;
                        }
                    }
                    if !poisoned && cw.write_all(&chunk[split..]).await.is_err() { return }
                }
            },
            _ = mode.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_latest_connection_measures_a_reconnect() {
        let mut t = Timeline::default();
        let (a, gap) = t.accept();
        assert_eq!(gap, None);
        // The client connects again while `a` is still open: nothing measured.
        let (b, gap) = t.accept();
        assert_eq!(gap, None);
        t.end(b, Instant::now());
        // `a`, a zombie, ends later: it does not move the end the next connect is measured from.
        let zombie_end = Instant::now() + Duration::from_secs(1);
        t.end(a, zombie_end);
        let (_, gap) = t.accept();
        assert!(gap.is_some());
        let (_, gap) = t.accept();
        assert_eq!(gap, None);
    }
}
