//! Happy Eyeballs (RFC 8305) in the transport's TCP connect step: the address ordering, the
//! staggered race driven on tokio's paused clock with scripted connect attempts, and real
//! sockets on loopback (IPv6 `::1` with nothing listening beside a server on 127.0.0.1).

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use nova_core::__happy_eyeballs::{connect_addrs, interleave, race};
use nova_core::{Frame, Message, ProxyConfig, Transport, TransportConfig, TransportError};
use nova_testkit::{ConnectProxy, TestServer};
use tokio::{net::TcpListener, time::Instant};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const DELAY: Duration = Duration::from_millis(250);
/// Stands in for the transport's `connect_timeout` around the race.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn v6(last: u16, port: u16) -> SocketAddr {
    SocketAddr::new(
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last).into(),
        port,
    )
}

fn v4(last: u8, port: u16) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::new(192, 0, 2, last).into(), port)
}

// ---- (a) ordering -------------------------------------------------------------------------

#[test]
fn interleaves_families_starting_with_ipv6_from_the_resolver() {
    let resolved = [v6(1, 443), v6(2, 443), v6(3, 443), v4(1, 443), v4(2, 443)];
    assert_eq!(
        interleave(&resolved),
        [v6(1, 443), v4(1, 443), v6(2, 443), v4(2, 443), v6(3, 443)]
    );
}

#[test]
fn the_resolvers_first_family_goes_first() {
    // RFC 6724 sorting put IPv4 first (say, a host without global IPv6): keep that.
    let resolved = [v4(1, 80), v4(2, 80), v6(1, 80)];
    assert_eq!(interleave(&resolved), [v4(1, 80), v6(1, 80), v4(2, 80)]);
}

#[test]
fn one_family_keeps_its_order_and_duplicates_go() {
    assert_eq!(
        interleave(&[v4(3, 80), v4(1, 80), v4(2, 80)]),
        [v4(3, 80), v4(1, 80), v4(2, 80)]
    );
    assert_eq!(
        interleave(&[v6(1, 80), v4(1, 80), v6(1, 80), v4(1, 80), v4(2, 80)]),
        [v6(1, 80), v4(1, 80), v4(2, 80)]
    );
    // Same IP, different ports: different addresses.
    assert_eq!(interleave(&[v4(1, 80), v4(1, 81)]), [v4(1, 80), v4(1, 81)]);
    assert_eq!(interleave(&[]), []);
    assert_eq!(interleave(&[v6(9, 1)]), [v6(9, 1)]);
}

// ---- (b) the race, on the paused clock ----------------------------------------------------

/// What each scripted address does when connected to.
#[derive(Clone, Copy)]
enum Script {
    /// Never answers (a black-holed route).
    Hang,
    /// Connects after this long.
    ConnectAfter(Duration),
    /// Fails with this kind after this long.
    FailAfter(Duration, io::ErrorKind),
}

/// Runs the race over `plan` with `delay`, bounded by [`CONNECT_TIMEOUT`]. Returns the outcome
/// (`None` on timeout) and when each attempt started, relative to the start.
async fn run(
    plan: &[(SocketAddr, Script)],
    delay: Option<Duration>,
) -> (
    Option<Result<(SocketAddr, SocketAddr), Vec<(SocketAddr, io::Error)>>>,
    Vec<(SocketAddr, Duration)>,
) {
    let t0 = Instant::now();
    let started = Arc::new(Mutex::new(Vec::new()));
    let addrs: Vec<SocketAddr> = plan.iter().map(|(a, _)| *a).collect();
    let log = Arc::clone(&started);
    let connect = move |addr: SocketAddr| {
        if let Ok(mut log) = log.lock() {
            log.push((addr, t0.elapsed()));
        }
        let script = plan
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, s)| *s)
            .unwrap_or(Script::Hang);
        async move {
            match script {
                Script::Hang => std::future::pending().await,
                Script::ConnectAfter(d) => {
                    tokio::time::sleep(d).await;
                    Ok(addr)
                }
                Script::FailAfter(d, kind) => {
                    tokio::time::sleep(d).await;
                    Err(io::Error::new(kind, format!("scripted {kind:?}")))
                }
            }
        }
    };
    let outcome = tokio::time::timeout(CONNECT_TIMEOUT, race(&addrs, delay, connect))
        .await
        .ok();
    let started = started.lock().map(|s| s.clone()).unwrap_or_default();
    (outcome, started)
}

#[tokio::test(start_paused = true)]
async fn a_hanging_first_address_costs_the_delay_not_the_timeout() {
    let plan = [
        (v6(1, 443), Script::Hang),
        (v4(1, 443), Script::ConnectAfter(Duration::from_millis(20))),
    ];
    let (outcome, started) = run(&plan, Some(DELAY)).await;
    let winner = outcome.and_then(Result::ok).map(|(addr, _)| addr);
    assert_eq!(winner, Some(v4(1, 443)));
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(started.first(), Some(&(v6(1, 443), Duration::ZERO)));
    let second = started.get(1).map(|(_, at)| *at).unwrap_or_default();
    // Started when the delay ran out (the clock is paused: no scheduling noise), long
    // before the connect timeout.
    assert!(
        second >= DELAY && second < DELAY + Duration::from_millis(5),
        "{started:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn attempts_are_staggered_and_earlier_ones_keep_running() {
    // The first answers slowly (after 600 ms): the second and third have started meanwhile,
    // but the first is still the first to connect, so it wins.
    let plan = [
        (v6(1, 443), Script::ConnectAfter(Duration::from_millis(600))),
        (v4(1, 443), Script::Hang),
        (v6(2, 443), Script::Hang),
    ];
    let (outcome, started) = run(&plan, Some(DELAY)).await;
    let winner = outcome.and_then(Result::ok).map(|(addr, _)| addr);
    assert_eq!(winner, Some(v6(1, 443)));
    let at: Vec<Duration> = started.iter().map(|(_, at)| *at).collect();
    assert_eq!(at.len(), 3, "{started:?}");
    assert!(
        at.windows(2)
            .all(|w| w[1] >= w[0] + DELAY && w[1] < w[0] + DELAY + Duration::from_millis(5)),
        "{started:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_failure_starts_the_next_attempt_at_once() {
    let fail_after = Duration::from_millis(30);
    let plan = [
        (
            v6(1, 443),
            Script::FailAfter(fail_after, io::ErrorKind::ConnectionRefused),
        ),
        (v4(1, 443), Script::ConnectAfter(Duration::from_millis(20))),
    ];
    let (outcome, started) = run(&plan, Some(DELAY)).await;
    let winner = outcome.and_then(Result::ok).map(|(addr, _)| addr);
    assert_eq!(winner, Some(v4(1, 443)));
    assert_eq!(
        started.get(1),
        Some(&(v4(1, 443), fail_after)),
        "{started:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_starts_the_next_attempt_at_once_while_others_still_run() {
    // The first hangs; the second (started at 250 ms) fails 10 ms later: the third starts
    // then, not at 500 ms, with the first still running.
    let plan = [
        (v6(1, 443), Script::Hang),
        (
            v4(1, 443),
            Script::FailAfter(Duration::from_millis(10), io::ErrorKind::ConnectionRefused),
        ),
        (v6(2, 443), Script::ConnectAfter(Duration::from_millis(20))),
    ];
    let (outcome, started) = run(&plan, Some(DELAY)).await;
    let winner = outcome.and_then(Result::ok).map(|(addr, _)| addr);
    assert_eq!(winner, Some(v6(2, 443)));
    let third = started.get(2).map(|(_, at)| *at).unwrap_or_default();
    let second = started.get(1).map(|(_, at)| *at).unwrap_or_default();
    assert_eq!(third, second + Duration::from_millis(10), "{started:?}");
}

#[tokio::test(start_paused = true)]
async fn when_all_fail_every_address_and_error_is_returned_in_the_order_tried() {
    // The last address fails first; the report is still in the order tried.
    let plan = [
        (
            v6(1, 443),
            Script::FailAfter(Duration::from_millis(900), io::ErrorKind::TimedOut),
        ),
        (
            v4(1, 443),
            Script::FailAfter(Duration::from_millis(400), io::ErrorKind::ConnectionReset),
        ),
        (
            v6(2, 443),
            Script::FailAfter(Duration::from_millis(5), io::ErrorKind::ConnectionRefused),
        ),
    ];
    let (outcome, started) = run(&plan, Some(DELAY)).await;
    assert_eq!(started.len(), 3);
    let failures = match outcome {
        Some(Err(failures)) => failures,
        other => panic!("expected every attempt to fail, got {other:?}"),
    };
    let seen: Vec<(SocketAddr, io::ErrorKind)> =
        failures.iter().map(|(a, e)| (*a, e.kind())).collect();
    assert_eq!(
        seen,
        [
            (v6(1, 443), io::ErrorKind::TimedOut),
            (v4(1, 443), io::ErrorKind::ConnectionReset),
            (v6(2, 443), io::ErrorKind::ConnectionRefused),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_winner_cancels_the_attempts_still_running() {
    /// Counts the attempt futures dropped.
    struct OnDrop(Arc<AtomicUsize>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let addrs = [v6(1, 443), v4(1, 443), v6(2, 443)];
    let counter = Arc::clone(&dropped);
    let winner = race(&addrs, Some(DELAY), move |addr| {
        let guard = OnDrop(Arc::clone(&counter));
        async move {
            let _guard = guard;
            if addr == v4(1, 443) {
                Ok(addr)
            } else {
                std::future::pending().await
            }
        }
    })
    .await
    .ok()
    .map(|(addr, _)| addr);
    assert_eq!(winner, Some(v4(1, 443)));
    // The first (hanging) attempt and the winner's own future are gone; the third was never
    // started.
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn without_a_delay_attempts_run_one_after_the_other() {
    let plan = [
        (
            v6(1, 443),
            Script::FailAfter(Duration::from_secs(3), io::ErrorKind::TimedOut),
        ),
        (v4(1, 443), Script::ConnectAfter(Duration::from_millis(20))),
    ];
    let (outcome, started) = run(&plan, None).await;
    let winner = outcome.and_then(Result::ok).map(|(addr, _)| addr);
    assert_eq!(winner, Some(v4(1, 443)));
    assert_eq!(
        started,
        [
            (v6(1, 443), Duration::ZERO),
            (v4(1, 443), Duration::from_secs(3))
        ]
    );

    // Sequential, a hanging first address holds the connect until the timeout.
    let plan = [
        (v6(1, 443), Script::Hang),
        (v4(1, 443), Script::ConnectAfter(Duration::ZERO)),
    ];
    let (outcome, started) = run(&plan, None).await;
    assert!(outcome.is_none(), "expected the timeout");
    assert_eq!(started.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_delay_under_ten_ms_counts_as_ten() {
    let plan = [
        (v6(1, 443), Script::Hang),
        (v4(1, 443), Script::ConnectAfter(Duration::ZERO)),
    ];
    let (outcome, started) = run(&plan, Some(Duration::ZERO)).await;
    assert!(matches!(outcome, Some(Ok(_))));
    let second = started.get(1).map(|(_, at)| *at).unwrap_or_default();
    assert!(
        second >= Duration::from_millis(10) && second < Duration::from_millis(15),
        "{started:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn no_addresses_is_an_empty_failure() {
    let outcome = race(&[], Some(DELAY), |addr| async move { Ok(addr) }).await;
    assert!(matches!(outcome, Err(failures) if failures.is_empty()));
}

// ---- (c) real sockets on loopback ---------------------------------------------------------

/// A loopback port nothing listens on (bound, then closed).
async fn closed_port(ip: std::net::IpAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).await?;
    listener.local_addr()
}

/// `[::1]:port`, for a port the test server holds on 127.0.0.1 only. Without IPv6 on the
/// host, connecting to it fails at once, which the race treats the same way.
fn ipv6_twin(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
}

fn config() -> TransportConfig {
    TransportConfig::default().with_connect_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn connects_over_ipv4_when_ipv6_has_no_listener() -> TestResult {
    let server = TestServer::start().await?;
    let transport = Transport::new(config())?;
    let addrs = vec![ipv6_twin(server.addr()), server.addr()];
    let mut connected = connect_addrs(&transport, &server.url(), addrs).await?;
    assert_eq!(connected.peer_addr(), Some(server.addr()));
    assert_eq!(connected.response().status().as_u16(), 101);
    connected.send(Message::text("over v4")).await?;
    let reply = tokio::time::timeout(Duration::from_secs(5), connected.recv()).await?;
    assert!(
        matches!(&reply, Some(Ok(Frame::Text(t))) if t.as_str() == "over v4"),
        "{reply:?}"
    );
    assert_eq!(server.handshakes_attempted(), 1);
    Ok(())
}

#[tokio::test]
async fn every_refused_address_is_named_in_the_error() -> TestResult {
    let dead_v6 = closed_port(Ipv6Addr::LOCALHOST.into()).await;
    let dead_v4 = closed_port(Ipv4Addr::LOCALHOST.into()).await?;
    // Without IPv6 on the host, use a second IPv4 port.
    let first = match dead_v6 {
        Ok(addr) => addr,
        Err(_) => closed_port(Ipv4Addr::LOCALHOST.into()).await?,
    };
    let transport = Transport::new(config())?;
    let url = format!("ws://127.0.0.1:{}/", dead_v4.port());
    let err = connect_addrs(&transport, &url, vec![first, dead_v4])
        .await
        .err()
        .ok_or("connected to a closed port")?;
    assert!(matches!(&err, TransportError::Connect { .. }), "{err:?}");
    assert_eq!(err.kind(), "connect");
    let text = err.to_string();
    assert!(
        text.contains(&first.to_string()) && text.contains(&dead_v4.to_string()),
        "{text}"
    );
    // The chain: the summary io::Error, then the last attempt's own error.
    let summary = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<io::Error>())
        .ok_or("no io::Error source")?;
    assert_eq!(summary.kind(), io::ErrorKind::ConnectionRefused);
    let last = std::error::Error::source(summary)
        .and_then(|e| e.downcast_ref::<io::Error>())
        .ok_or("the summary has no source")?;
    assert_eq!(last.kind(), io::ErrorKind::ConnectionRefused);
    Ok(())
}

#[tokio::test]
async fn the_proxy_address_is_raced_the_same_way() -> TestResult {
    let server = TestServer::start().await?;
    let proxy = ConnectProxy::start(None).await?;
    let transport =
        Transport::new(config().with_proxy(ProxyConfig::http_connect(proxy.addr().to_string())))?;
    let addrs = vec![ipv6_twin(proxy.addr()), proxy.addr()];
    let connected = connect_addrs(&transport, &server.url(), addrs).await?;
    assert_eq!(connected.peer_addr(), None);
    assert_eq!(proxy.tunnels_opened(), 1);
    Ok(())
}

#[tokio::test]
async fn a_single_address_host_connects_directly() -> TestResult {
    // `localhost` resolves to one or both loopback addresses; either way the connect works.
    let server = TestServer::start().await?;
    let url = format!("ws://localhost:{}/", server.addr().port());
    let transport = Transport::new(config())?;
    let connected = transport.connect(&url).await?;
    assert_eq!(connected.peer_addr(), Some(server.addr()));
    Ok(())
}
