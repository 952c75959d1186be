//! Scenario: the soak. Clients of several platforms, each behind its own relay, subscribe to
//! sequenced book channels while a seeded schedule injects faults from the whole repertoire
//! ([`FaultKind`]). Checked continuously: every stream's sequence ([`StreamCheck`]), every
//! client's reconnect policy ([`ReconnectCheck`], and the relay's view of reconnect spacing),
//! memory and task counts ([`crate::resources`]), the send queues' depth, panics. After the
//! run, the faults stop and the clients get a settle period to reconnect and close their gaps;
//! then the final checks, and a summary.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use nova_core::{OverflowPolicy, SubscriptionEvent, SubscriptionStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::checker::{GAP_DEADLINE, StreamCheck};
use crate::faults::{Fault, FaultKind, Schedule};
use crate::frame::BadFrame;
use crate::platform::{Platform, PlatformClient, Sim};
use crate::reconnect::ReconnectCheck;
use crate::recorder::Metrics;
use crate::relay::Relay;
use crate::resources::{self, Sample};
use crate::{BoxError, PANICS};

/// The soak's settings.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// Seed of the fault schedule.
    pub(crate) seed: u64,
    /// How long faults are injected.
    pub(crate) duration: Duration,
    /// Clients, spread over the platforms in turn.
    pub(crate) clients: usize,
    /// The platforms.
    pub(crate) platforms: Vec<Platform>,
    /// The mean time between faults.
    pub(crate) fault_every: Duration,
    /// The simulators' market tick.
    pub(crate) tick: Duration,
    /// After the faults stop: time to reconnect and close gaps before the final checks.
    pub(crate) settle: Duration,
}

/// Each client's send queue and inbound queue capacities.
const SEND_BUFFER: usize = 256;
const INBOUND_BUFFER: usize = 256;
/// Slack on the relay's view of reconnect spacing (its timestamps are taken by tasks too).
const SPACING_SLACK: Duration = Duration::from_millis(50);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One client and everything the soak keeps about it.
struct Slot {
    platform: Platform,
    config: nova_core::ClientConfig,
    relay: Relay,
    client: PlatformClient,
    /// Until when the application does not read (a slow consumer).
    pause: Arc<Mutex<Option<Instant>>>,
    streams: Vec<Arc<Mutex<StreamCheck>>>,
    reconnect: Arc<Mutex<ReconnectCheck>>,
    tasks: Vec<JoinHandle<()>>,
}

/// A platform's simulator, replaced on a restart.
struct SimSlot {
    platform: Platform,
    sim: tokio::sync::Mutex<Option<Sim>>,
    /// Notifications sent by simulators already replaced.
    notifications_before: AtomicU64,
}

/// Everything shared by the scheduler, the fault tasks and the monitor.
struct World {
    slots: Vec<Slot>,
    sims: Vec<Arc<SimSlot>>,
    injected: Mutex<BTreeMap<FaultKind, u64>>,
    /// Faults that found nothing to act on (no open connection, simulator restarting).
    missed: AtomicU64,
    /// Reconnects the relays saw, and the shortest spacing.
    spacings: AtomicU64,
    min_spacing_ms: AtomicU64,
    /// Violations outside a stream or a client's events.
    violations: Mutex<Vec<String>>,
    min_spacing: Duration,
}

impl World {
    fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        let mut v = lock(&self.violations);
        if v.len() < 100 {
            v.push(what);
        }
    }

    fn sim_of(&self, platform: Platform) -> Option<&Arc<SimSlot>> {
        self.sims.iter().find(|s| s.platform == platform)
    }
}

/// Reads a stream as a consumer would, pausing when told, checking every event.
async fn read(
    platform: Platform,
    mut stream: SubscriptionStream,
    check: Arc<Mutex<StreamCheck>>,
    pause: Arc<Mutex<Option<Instant>>>,
) {
    loop {
        let resume = *lock(&pause);
        if let Some(at) = resume {
            tokio::time::sleep_until(at).await;
        }
        let Some(event) = stream.next().await else {
            lock(&check).violation("the stream ended".to_owned());
            return;
        };
        let now = Instant::now();
        let mut c = lock(&check);
        match &event {
            SubscriptionEvent::Message(m) => c.data(platform.position(m), now),
            other => c.event(other, now),
        }
    }
}

/// Feeds a client's lifecycle events to its checker.
async fn watch_events(
    mut events: broadcast::Receiver<nova_core::LifecycleEvent>,
    check: Arc<Mutex<ReconnectCheck>>,
) {
    loop {
        match events.recv().await {
            Ok(e) => lock(&check).event(&e),
            Err(broadcast::error::RecvError::Lagged(n)) => lock(&check).lag(n),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Starts a client behind a new relay and subscribes its channels.
async fn start_client(i: usize, platform: Platform, sim: &Sim) -> Result<Slot, BoxError> {
    let relay = Relay::start(sim.addr()).await?;
    let tune = |b: nova_core::ClientConfigBuilder| {
        b.heartbeat_interval(Some(Duration::from_secs(2)))
            .pong_timeout(Duration::from_secs(2))
            .backoff(Duration::from_millis(250), Duration::from_secs(4))
            .jitter(0.2)
            .stable_after(Duration::from_secs(20))
            .max_sizes(1 << 20, 1 << 20)
            .send_buffer(SEND_BUFFER)
            .inbound(INBOUND_BUFFER, OverflowPolicy::Wait)
    };
    let (client, config) =
        PlatformClient::connect(platform, relay.addr(), &format!("soak-{i}"), tune)?;
    let reconnect = Arc::new(Mutex::new(ReconnectCheck::new(
        config.backoff(),
        config.stable_after(),
    )));
    let mut tasks = vec![tokio::spawn(watch_events(
        client.client().events(),
        Arc::clone(&reconnect),
    ))];
    client
        .client()
        .wait_connected(Duration::from_secs(30))
        .await?;
    let pause = Arc::new(Mutex::new(None));
    let mut streams = Vec::new();
    for channel in platform.channels() {
        let stream = client.subscribe(channel).await?;
        let check = Arc::new(Mutex::new(StreamCheck::new()));
        tasks.push(tokio::spawn(read(
            platform,
            stream,
            Arc::clone(&check),
            Arc::clone(&pause),
        )));
        streams.push(check);
    }
    Ok(Slot {
        platform,
        config,
        relay,
        client,
        pause,
        streams,
        reconnect,
        tasks,
    })
}

/// Carries out one fault.
fn inject(world: &Arc<World>, fault: Fault) {
    let slot = &world.slots[fault.client];
    *lock(&world.injected).entry(fault.kind).or_default() += 1;
    let hit = match fault.kind {
        FaultKind::Rst => slot.relay.rst(),
        FaultKind::Fin => slot.relay.fin(),
        FaultKind::Stall => slot.relay.stall(fault.length),
        FaultKind::Malformed => slot.relay.inject(BadFrame::ReservedOpcode),
        FaultKind::InvalidUtf8 => slot.relay.inject(BadFrame::InvalidUtf8),
        FaultKind::Oversized => slot.relay.inject(BadFrame::Oversized),
        FaultKind::RefusedHandshake => {
            slot.relay.refuse_next(fault.refusals);
            slot.relay.rst()
        }
        FaultKind::SlowConsumer => {
            *lock(&slot.pause) = Some(Instant::now() + fault.length);
            1
        }
        FaultKind::CloseCode
        | FaultKind::SequenceSkip
        | FaultKind::Silent
        | FaultKind::ServerRestart => {
            let Some(sim) = world.sim_of(slot.platform) else {
                return;
            };
            tokio::spawn(sim_fault(Arc::clone(world), Arc::clone(sim), fault));
            1
        }
    };
    if hit == 0 {
        world.missed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A fault of a whole simulator.
async fn sim_fault(world: Arc<World>, slot: Arc<SimSlot>, fault: Fault) {
    let Ok(mut guard) = slot.sim.try_lock() else {
        // A restart is under way.
        world.missed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Some(sim) = guard.as_ref() else { return };
    match fault.kind {
        FaultKind::CloseCode => sim.close_all(fault.code).await,
        FaultKind::SequenceSkip => sim.skip_update(),
        FaultKind::Silent => {
            sim.set_silent(true);
            drop(guard);
            tokio::time::sleep(fault.length).await;
            if let Some(sim) = slot.sim.lock().await.as_ref() {
                sim.set_silent(false);
            }
        }
        FaultKind::ServerRestart => {
            let relays: Vec<&Relay> = world
                .slots
                .iter()
                .filter(|s| s.platform == slot.platform)
                .map(|s| &s.relay)
                .collect();
            for r in &relays {
                r.set_upstream(None);
            }
            if let Some(old) = guard.take() {
                slot.notifications_before
                    .fetch_add(old.notifications(), Ordering::Relaxed);
                old.shutdown().await;
            }
            tokio::time::sleep(fault.length).await;
            let mut tries = 0;
            let fresh = loop {
                match Sim::start(slot.platform, tick_of(&world)).await {
                    Ok(sim) => break sim,
                    Err(e) if tries < 10 => {
                        tries += 1;
                        eprintln!("restarting the {} simulator: {e}", slot.platform.name());
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        world.violation(format!("the simulator did not restart: {e}"));
                        return;
                    }
                }
            };
            for r in &relays {
                r.set_upstream(Some(fresh.addr()));
            }
            *guard = Some(fresh);
        }
        _ => {}
    }
}

/// The simulators' tick (kept in a process-wide cell: restarts need it).
fn tick_of(_: &World) -> Duration {
    Duration::from_millis(TICK_MS.load(Ordering::Relaxed))
}

static TICK_MS: AtomicU64 = AtomicU64::new(50);

/// Totals over every stream and client.
#[derive(Debug, Default)]
struct Totals {
    checked: u64,
    gaps: u64,
    episodes: u64,
    closed: u64,
    unclosable: u64,
    open: u64,
    restored: u64,
    attempts: u64,
    connected: u64,
    lagged_events: u64,
    violations: Vec<String>,
}

fn totals(world: &World, now: Instant, deadline: Duration) -> Totals {
    let mut t = Totals::default();
    for (i, slot) in world.slots.iter().enumerate() {
        for (n, s) in slot.streams.iter().enumerate() {
            let mut s = lock(s);
            s.check_deadline(now, deadline);
            t.checked += s.checked;
            t.gaps += s.gaps;
            t.episodes += s.episodes;
            t.closed += s.closed;
            t.unclosable += s.unclosable;
            t.restored += s.restored;
            t.open += u64::from(s.gap_open());
            let channel = slot.platform.channels()[n];
            t.violations.extend(
                s.violations
                    .iter()
                    .map(|v| format!("client {i} ({channel}): {v}")),
            );
        }
        let r = lock(&slot.reconnect);
        t.attempts += r.attempts;
        t.connected += r.connected;
        t.lagged_events += r.lagged;
        t.violations
            .extend(r.violations.iter().map(|v| format!("client {i}: {v}")));
    }
    t.violations.extend(lock(&world.violations).iter().cloned());
    t
}

/// Takes the relays' reconnect spacings and checks them.
fn check_spacings(world: &World) {
    for (i, slot) in world.slots.iter().enumerate() {
        for gap in slot.relay.take_gaps() {
            world.spacings.fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(gap.as_millis()).unwrap_or(u64::MAX);
            world.min_spacing_ms.fetch_min(ms, Ordering::Relaxed);
            if gap + SPACING_SLACK < world.min_spacing {
                let recent: Vec<String> = lock(&slot.reconnect)
                    .recent
                    .iter()
                    .rev()
                    .take(4)
                    .rev()
                    .map(|(_, e)| e.clone())
                    .collect();
                world.violation(format!(
                    "client {i} connected again {gap:?} after its last connection ended; the policy's minimum is {:?} (its last events: {})",
                    world.min_spacing,
                    recent.join("; ")
                ));
            }
        }
    }
}

/// Runs the soak; `Ok(true)` when every invariant held.
pub(crate) async fn run(
    options: Options,
    metrics: Option<&'static Metrics>,
) -> Result<bool, BoxError> {
    TICK_MS.store(
        u64::try_from(options.tick.as_millis()).unwrap_or(50),
        Ordering::Relaxed,
    );
    println!(
        "== soak: seed {}, {} s, {} clients over {}, a fault every {} ms on average ==",
        options.seed,
        options.duration.as_secs(),
        options.clients,
        options
            .platforms
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", "),
        options.fault_every.as_millis()
    );
    let started = Instant::now();
    let mut sims = Vec::new();
    for &platform in &options.platforms {
        sims.push(Arc::new(SimSlot {
            platform,
            sim: tokio::sync::Mutex::new(Some(Sim::start(platform, options.tick).await?)),
            notifications_before: AtomicU64::new(0),
        }));
    }
    let mut slots = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        let platform = options.platforms[i % options.platforms.len()];
        let sim = sims[i % sims.len()].sim.lock().await;
        let sim = sim.as_ref().ok_or("no simulator")?;
        slots.push(start_client(i, platform, sim).await?);
    }
    let min_spacing = slots
        .first()
        .map(|s| s.config.backoff().min_delay(0))
        .unwrap_or_default();
    println!(
        "  {} clients connected and subscribed in {:.1} s; faults start",
        slots.len(),
        started.elapsed().as_secs_f64()
    );
    let world = Arc::new(World {
        slots,
        sims,
        injected: Mutex::default(),
        missed: AtomicU64::new(0),
        spacings: AtomicU64::new(0),
        min_spacing_ms: AtomicU64::new(u64::MAX),
        violations: Mutex::default(),
        min_spacing,
    });

    // The monitor: samples, deadlines, spacings, progress.
    let t0 = Instant::now();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let monitor = {
        let world = Arc::clone(&world);
        let samples = Arc::clone(&samples);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.changed() => return,
                }
                let s = resources::sample(t0.elapsed());
                lock(&samples).push(s);
                check_spacings(&world);
                n += 1;
                if n % 10 == 0 {
                    let t = totals(&world, Instant::now(), GAP_DEADLINE);
                    let faults: u64 = lock(&world.injected).values().sum();
                    println!(
                        "  t={:>4} s  faults {faults:>6}  checked {:>9}  gaps {:>5} (closed {}, open {})  connects {:>6}  rss {:>6} KiB  tasks {:>5}  violations {}",
                        s.at.as_secs(),
                        t.checked,
                        t.gaps,
                        t.closed,
                        t.open,
                        t.attempts,
                        s.rss_kib,
                        s.tasks,
                        t.violations.len()
                    );
                }
            }
        })
    };

    let mut schedule = Schedule::new(options.seed, world.slots.len(), options.fault_every);
    loop {
        let fault = schedule.next_fault();
        if fault.at >= options.duration {
            break;
        }
        tokio::time::sleep_until(t0 + fault.at).await;
        inject(&world, fault);
    }
    tokio::time::sleep_until(t0 + options.duration).await;
    println!(
        "  faults stopped at {} s; settling for {} s",
        t0.elapsed().as_secs(),
        options.settle.as_secs()
    );
    // Pending simulator faults finish (a restart holds its simulator's lock).
    for sim in &world.sims {
        if let Some(sim) = sim.sim.lock().await.as_ref() {
            sim.set_silent(false);
        }
    }
    tokio::time::sleep(options.settle).await;
    // A client whose last reconnects met refused handshakes may still be in its backoff (up to
    // the 4 s cap per attempt): give every client a little longer, then its restore.
    let mut late = 0;
    for slot in &world.slots {
        if !slot.client.client().current_state().status.is_open() {
            late += 1;
            let _ = slot
                .client
                .client()
                .wait_connected(Duration::from_secs(20))
                .await;
        }
    }
    if late > 0 {
        println!("  {late} clients were still reconnecting; waited for them");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = stop_tx.send(true);
    let _ = monitor.await;
    check_spacings(&world);
    let elapsed = t0.elapsed();

    // Final checks: every client connected, no gap open past the settle period.
    let now = Instant::now();
    for (i, slot) in world.slots.iter().enumerate() {
        let state = slot.client.client().current_state();
        if !state.status.is_open() {
            world.violation(format!(
                "client {i} is not connected after the settle period: {:?}, {} attempts, last disconnect {:?}, stopped {:?}",
                state.status, state.reconnection_attempts, state.disconnect_reason, state.stopped
            ));
            for (at, e) in &lock(&slot.reconnect).recent {
                println!(
                    "    client {i} at {:.3} s: {e}",
                    at.saturating_duration_since(t0).as_secs_f64()
                );
            }
        }
    }
    let t = totals(&world, now, options.settle);
    let samples = lock(&samples).clone();
    let run = options.duration;
    let rss = resources::plateau(&samples, run, |s| s.rss_kib, 8 * 1024);
    let tasks = resources::plateau(&samples, run, |s| s.tasks, 64);
    let mut violations = t.violations;
    for (what, p) in [("RSS (KiB)", rss), ("tokio tasks", tasks)] {
        if let Some(p) = p {
            if !p.holds() {
                violations.push(format!(
                    "{what} kept growing: {} late against {} early (bound {})",
                    p.late, p.early, p.bound
                ));
            }
        }
    }
    let send_max = metrics.map_or(0, |m| m.gauge_max("nova_send_queue_depth"));
    if send_max > SEND_BUFFER as u64 {
        violations.push(format!(
            "a send queue held {send_max}, over its capacity {SEND_BUFFER}"
        ));
    }
    let panics = PANICS.load(Ordering::Relaxed);
    if panics > 0 {
        violations.push(format!("{panics} panics"));
    }

    // The summary.
    let injected = lock(&world.injected).clone();
    let total_faults: u64 = injected.values().sum();
    let mut notifications = 0;
    for sim in &world.sims {
        notifications += sim.notifications_before.load(Ordering::Relaxed);
        if let Some(s) = sim.sim.lock().await.as_ref() {
            notifications += s.notifications();
        }
    }
    let first = samples.first().copied();
    let last = samples.last().copied();
    let max_queue = samples.iter().map(|s| s.global_queue).max().unwrap_or(0);
    println!("== soak summary (seed {}) ==", options.seed);
    println!(
        "  duration            {:.0} s of faults + {:.0} s settle ({:.0} s in all with set-up)",
        run.as_secs_f64(),
        options.settle.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "  clients             {} ({})",
        world.slots.len(),
        options
            .platforms
            .iter()
            .map(|p| format!(
                "{} {}",
                world.slots.iter().filter(|s| s.platform == *p).count(),
                p.name()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  connections         {} attempts, {} opened, {} reconnects seen by the relays (shortest {} ms; policy minimum {} ms)",
        t.attempts,
        t.connected,
        world.spacings.load(Ordering::Relaxed),
        match world.min_spacing_ms.load(Ordering::Relaxed) {
            u64::MAX => "-".to_owned(),
            ms => ms.to_string(),
        },
        world.min_spacing.as_millis()
    );
    println!(
        "  faults injected     {total_faults} ({} found nothing to act on): {}",
        world.missed.load(Ordering::Relaxed),
        injected
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  messages checked    {} book messages in sequence (Deribit's simulator sent {notifications} notifications)",
        t.checked
    );
    println!(
        "  gaps                {} reported ({} while none was open), {} closed, {} reported unclosable, {} open at the end; {} restores",
        t.gaps, t.episodes, t.closed, t.unclosable, t.open, t.restored
    );
    if let (Some(first), Some(last)) = (first, last) {
        println!(
            "  rss                 {} KiB at start, {} KiB at end, {} KiB peak{}",
            first.rss_kib,
            last.rss_kib,
            samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
            rss.map_or(String::new(), |p| format!(
                "; plateau check: {} late vs {} early, bound {}",
                p.late, p.early, p.bound
            ))
        );
        println!(
            "  tasks               {} at start, {} at end{}; tokio global queue at most {max_queue}",
            first.tasks,
            last.tasks,
            tasks.map_or(String::new(), |p| format!(
                "; plateau check: {} late vs {} early, bound {}",
                p.late, p.early, p.bound
            ))
        );
    }
    println!(
        "  queues              send queue depth at most {send_max} (capacity {SEND_BUFFER}); inbound queues bounded at {INBOUND_BUFFER} (Wait); lifecycle events lost to lag {}",
        t.lagged_events
    );
    if let Some(m) = metrics {
        println!(
            "  nova's counters     disconnects {}, gaps {}, gaps recovered {}, errors {}, inbound dropped {}",
            m.counter("nova_disconnects_total"),
            m.counter("nova_gaps_total"),
            m.counter("nova_gaps_recovered_total"),
            m.counter("nova_errors_total"),
            m.counter("nova_messages_dropped_total")
        );
    }
    println!("  panics              {panics}");
    println!("  elapsed             {:.0} s", elapsed.as_secs_f64());

    // Stop the checkers before closing: a client that stops on purpose is not a violation.
    for slot in &world.slots {
        for task in &slot.tasks {
            task.abort();
        }
    }
    for slot in &world.slots {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            slot.client.client().close(1000, "soak done"),
        )
        .await;
    }
    if violations.is_empty() {
        println!("  result              PASS: every invariant held");
        Ok(true)
    } else {
        println!(
            "  result              FAIL: {} violations",
            violations.len()
        );
        for v in violations.iter().take(50) {
            println!("    - {v}");
        }
        Ok(false)
    }
}
