//! Happy Eyeballs (RFC 8305): when a host resolves to several addresses, race TCP connects to
//! them, staggered, and keep the first that answers.
//!
//! A host with both IPv6 and IPv4 addresses where one family is broken (a black-holed IPv6
//! route is the classic case) would otherwise spend the whole connect timeout on the dead
//! address before trying the live one. The algorithm, as nova implements it:
//!
//! 1. **Order** ([`interleave`], RFC 8305 §4). The resolver's list is already sorted by
//!    destination address selection (RFC 6724: the system resolver puts IPv6 first on a host
//!    with working IPv6). Duplicates are dropped and the families are interleaved, starting
//!    with the family of the first address and keeping each family's own order: `v6₁ v4₁ v6₂
//!    v4₂ ...` (a "First Address Family Count" of 1).
//! 2. **Race** ([`race`], RFC 8305 §5). The first attempt starts at once. Each further attempt
//!    starts when the *Connection Attempt Delay* has passed since the previous one started
//!    (default 250 ms, the RFC's recommendation; values under the RFC's 10 ms floor are raised
//!    to it), or at once when an attempt fails, whichever comes first. Earlier attempts keep
//!    running. The first connection established wins; the attempts still running are dropped,
//!    which closes their sockets.
//! 3. **Fail** when every address has failed, with each address and its error, in the order
//!    tried.
//!
//! Nothing here has a timeout of its own: the transport's `connect_timeout` bounds the whole
//! connect, this step included. A delay of `None` turns the race off: one address at a time,
//! the next only after the previous failed. An IP literal or a host with a single address never
//! gets here (the transport connects to it directly).
//!
//! Each attempt is logged at DEBUG with its address and outcome.
//!
//! This module is `#[doc(hidden)]` outside the crate (as `nova_core::__happy_eyeballs`) so its
//! tests can drive the algorithm; it is not part of nova's API.

use std::{
    fmt,
    future::{Future, poll_fn},
    io,
    net::SocketAddr,
    pin::pin,
    task::Poll,
    time::Duration,
};

use futures_util::{FutureExt as _, StreamExt as _, stream::FuturesUnordered};
use tokio::time::Instant;

use super::{Connected, Transport, TransportError};

/// The Connection Attempt Delay nova uses unless configured otherwise (RFC 8305 §8: 250 ms).
pub const DEFAULT_DELAY: Duration = Duration::from_millis(250);

/// The smallest Connection Attempt Delay (RFC 8305 §5: "MUST NOT be less than 10 ms").
pub const MIN_DELAY: Duration = Duration::from_millis(10);

/// Orders addresses for connection attempts (RFC 8305 §4): duplicates removed, address
/// families interleaved starting with the family of the first address, each family keeping
/// its order.
///
/// ```
/// # use std::net::SocketAddr;
/// # use nova_core::__happy_eyeballs::interleave;
/// let a = |s: &str| s.parse::<SocketAddr>().unwrap();
/// let resolved = [a("[::1]:80"), a("[::2]:80"), a("10.0.0.1:80"), a("[::1]:80")];
/// assert_eq!(interleave(&resolved), [a("[::1]:80"), a("10.0.0.1:80"), a("[::2]:80")]);
/// ```
#[must_use]
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let first_is_v6 = first.is_ipv6();
    let mut unique: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(addr) {
            unique.push(*addr);
        }
    }
    let (first_family, other_family): (Vec<SocketAddr>, Vec<SocketAddr>) = unique
        .iter()
        .partition(|addr| addr.is_ipv6() == first_is_v6);
    let mut ordered = Vec::with_capacity(unique.len());
    let mut first_family = first_family.into_iter();
    let mut other_family = other_family.into_iter();
    loop {
        let a = first_family.next();
        let b = other_family.next();
        if a.is_none() && b.is_none() {
            return ordered;
        }
        ordered.extend(a);
        ordered.extend(b);
    }
}

/// Races `connect` over `addrs`, in the order given, staggered by `delay` (RFC 8305 §5; see
/// the [module docs](self)); `None` tries one address at a time.
///
/// Returns the winning address and its connection. The attempts still running when one wins
/// are dropped. When every attempt fails, returns each address with its error, in the order
/// given (empty when `addrs` is).
pub async fn race<T, F, Fut>(
    addrs: &[SocketAddr],
    delay: Option<Duration>,
    mut connect: F,
) -> Result<(SocketAddr, T), Vec<(SocketAddr, io::Error)>>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let delay = delay.map(|d| d.max(MIN_DELAY));
    let mut running = FuturesUnordered::new();
    // (index in `addrs`, address, error), sorted by index at the end.
    let mut failures: Vec<(usize, SocketAddr, io::Error)> = Vec::new();
    let mut next = 0;
    let mut start_next = true;
    let mut timer = pin!(tokio::time::sleep(Duration::ZERO));

    poll_fn(move |cx| {
        loop {
            if start_next {
                start_next = false;
                if let Some(&addr) = addrs.get(next) {
                    let index = next;
                    next += 1;
                    tracing::debug!(%addr, "TCP connect attempt started");
                    running.push(connect(addr).map(move |result| (index, addr, result)));
                    if let Some(delay) = delay {
                        timer.as_mut().reset(Instant::now() + delay);
                    }
                }
            }
            match running.poll_next_unpin(cx) {
                Poll::Ready(Some((_, addr, Ok(connection)))) => {
                    tracing::debug!(%addr, "TCP connect attempt succeeded");
                    if !running.is_empty() {
                        tracing::debug!(
                            cancelled = running.len(),
                            "TCP connect attempts still running are cancelled"
                        );
                    }
                    return Poll::Ready(Ok((addr, connection)));
                }
                Poll::Ready(Some((index, addr, Err(error)))) => {
                    tracing::debug!(%addr, %error, "TCP connect attempt failed");
                    failures.push((index, addr, error));
                    start_next = true;
                    continue;
                }
                Poll::Ready(None) if next >= addrs.len() => {
                    let mut all = std::mem::take(&mut failures);
                    all.sort_by_key(|(index, ..)| *index);
                    let all = all.into_iter().map(|(_, addr, e)| (addr, e)).collect();
                    return Poll::Ready(Err(all));
                }
                // Nothing running but addresses left: cannot happen (a failure starts the next
                // one), handled anyway.
                Poll::Ready(None) => {
                    start_next = true;
                    continue;
                }
                Poll::Pending => {}
            }
            if delay.is_some() && next < addrs.len() && timer.as_mut().poll(cx).is_ready() {
                start_next = true;
                continue;
            }
            return Poll::Pending;
        }
    })
    .await
}

/// Every attempt failed: the addresses and errors in the order tried. The `source` is the
/// error of the address tried last.
#[derive(Debug)]
pub(crate) struct AllFailed(Vec<(SocketAddr, io::Error)>);

impl fmt::Display for AllFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} addresses failed: ", self.0.len())?;
        for (i, (addr, error)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{addr}: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AllFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .last()
            .map(|(_, e)| e as &(dyn std::error::Error + 'static))
    }
}

/// The transport error for failed attempts: [`TransportError::Connect`] with the address tried
/// last; with several, its source is an `io::Error` (of the last error's kind) listing every
/// address and its error, whose own source is the last error.
pub(crate) fn connect_error(mut failures: Vec<(SocketAddr, io::Error)>) -> TransportError {
    if failures.len() > 1 {
        if let Some((addr, error)) = failures.last() {
            let (addr, kind) = (addr.to_string(), error.kind());
            return TransportError::Connect {
                addr,
                source: io::Error::new(kind, AllFailed(failures)),
            };
        }
    }
    match failures.pop() {
        Some((addr, source)) => TransportError::Connect {
            addr: addr.to_string(),
            source,
        },
        None => TransportError::Connect {
            addr: String::new(),
            source: io::Error::new(io::ErrorKind::NotFound, "no address to connect to"),
        },
    }
}

/// Connects like [`Transport::connect`], but to `addrs` instead of what the URL's host (or,
/// with a proxy, the proxy's host) resolves to: for tests of the address race with real
/// sockets. The addresses are ordered with [`interleave`] as resolved ones are.
///
/// # Errors
/// As [`Transport::connect`].
pub async fn connect_addrs(
    transport: &Transport,
    url: &str,
    addrs: Vec<SocketAddr>,
) -> Result<Connected, TransportError> {
    transport.connect_resolved(url, &[], Some(addrs)).await
}
