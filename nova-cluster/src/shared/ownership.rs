//! Ownership of shared channels: the coordinator (interest, claims, renewals, releases) and
//! the owner task of each channel this node holds (the upstream subscription, the fenced
//! publishing, the give-up when the lease can no longer be trusted).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nova_core::SequenceCheck;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backend::{
    Acquire, EntryKind, EntrySequence, FeedEntry, PreviousLease, Publish, resource,
};
use crate::error::ClusterError;
use crate::telemetry::ClusterEventKind;
use crate::upstream::{UpstreamEvent, UpstreamSubscription};

use super::{Feeds, PUBLISH_BATCH, UNWANTED_SCANS, lock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OwnerCmd {
    Run,
    Resnapshot(u64),
    Release,
    Lost(&'static str),
}

struct Owned {
    token: u64,
    /// Until when the lease is trusted locally.
    trusted_until: Instant,
    cmd: watch::Sender<OwnerCmd>,
    /// Set by the owner task when it has ended (and reported why).
    done: Arc<AtomicBool>,
    unwanted: u32,
    resnapshots: u64,
}

/// Runs the coordinator of `feeds` until the node shuts down.
pub(super) async fn run_coordinator(feeds: Arc<Feeds>) {
    let node = feeds.node.clone();
    let config = node.config.clone();
    let mut shutdown = node.shutdown.subscribe();
    let mut owned: BTreeMap<String, Owned> = BTreeMap::new();
    let mut free_since: BTreeMap<String, Instant> = BTreeMap::new();
    let mut floors: BTreeMap<String, u64> = BTreeMap::new();
    let mut next_renew = Instant::now();
    let mut next_interest = Instant::now();
    let mut ticker = tokio::time::interval(config.claim_every());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let region = config.region_of(&feeds.scope).map(str::to_owned);
    let grace = config.renew_every();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = feeds.interest_changed.notified() => { next_interest = Instant::now(); }
            _ = shut_down(&mut shutdown) => {
                goodbye(&feeds, owned).await;
                return;
            }
        }
        let now = Instant::now();
        owned.retain(|_, o| !o.done.load(Ordering::Acquire));

        if now >= next_interest {
            next_interest = now + config.renew_every();
            if feeds.write_interest().await.is_err() {
                node.telemetry.backend_error();
                next_interest = now + config.claim_every();
            }
        }

        if now >= next_renew && !owned.is_empty() {
            next_renew = now + config.renew_every();
            let list: Vec<(String, u64)> = owned
                .iter()
                .map(|(ch, o)| (resource(&feeds.scope, ch), o.token))
                .collect();
            let sent = Instant::now();
            match node.backend.renew(&list, &node.holder, config.ttl()).await {
                Ok(renewals) => {
                    for ((channel, o), r) in owned.iter_mut().zip(renewals) {
                        if r.held {
                            o.trusted_until = sent + config.trust_for();
                            if r.resnapshot {
                                o.resnapshots += 1;
                                o.cmd.send_replace(OwnerCmd::Resnapshot(o.resnapshots));
                            }
                        } else {
                            lose(&feeds, channel, o, "taken");
                        }
                    }
                }
                Err(_) => node.telemetry.backend_error(),
            }
        }
        let now = Instant::now();
        for (channel, o) in owned.iter_mut() {
            if now >= o.trusted_until {
                lose(&feeds, channel, o, "expired");
            }
        }
        owned.retain(|_, o| !o.done.load(Ordering::Acquire));

        let wanted = match node.backend.wanted(&feeds.scope).await {
            Ok(w) => w,
            Err(_) => {
                node.telemetry.backend_error();
                continue;
            }
        };
        let wanted_names: BTreeSet<&str> = wanted.iter().map(|w| w.channel.as_str()).collect();
        for (channel, o) in owned.iter_mut() {
            if wanted_names.contains(channel.as_str()) {
                o.unwanted = 0;
            } else {
                o.unwanted += 1;
                if o.unwanted >= UNWANTED_SCANS {
                    // The owner task unsubscribes, releases and ends.
                    o.cmd.send_replace(OwnerCmd::Release);
                    o.done.store(true, Ordering::Release);
                }
            }
        }
        owned.retain(|_, o| !o.done.load(Ordering::Acquire));
        free_since.retain(|ch, _| wanted_names.contains(ch.as_str()));
        let members = node.members();
        for w in &wanted {
            if owned.contains_key(&w.channel) {
                continue;
            }
            if let Some(lease) = &w.lease {
                free_since.remove(&w.channel);
                let floor = floors.entry(w.channel.clone()).or_default();
                *floor = (*floor).max(lease.token);
                continue;
            }
            let since = *free_since.entry(w.channel.clone()).or_insert(now);
            let preferred = config
                .router()
                .pick(region.as_deref(), &members)
                .is_some_and(|n| n.id == node.holder.node && n.instance == node.holder.instance);
            if !preferred && now.saturating_duration_since(since) < grace {
                continue;
            }
            let floor = floors.get(&w.channel).copied().unwrap_or_default();
            let res = resource(&feeds.scope, &w.channel);
            let granted_at = Instant::now();
            match node
                .backend
                .acquire(&res, &node.holder, config.ttl(), floor)
                .await
            {
                Ok(Acquire::Granted { token, previous }) => {
                    free_since.remove(&w.channel);
                    floors.insert(w.channel.clone(), token);
                    node.telemetry.emit(ClusterEventKind::LeaseAcquired {
                        channel: res,
                        token,
                    });
                    let o = start_owner(
                        &feeds,
                        &w.channel,
                        w.options.clone(),
                        token,
                        granted_at,
                        previous,
                    );
                    owned.insert(
                        w.channel.clone(),
                        Owned {
                            token,
                            trusted_until: granted_at + config.trust_for(),
                            cmd: o.0,
                            done: o.1,
                            unwanted: 0,
                            resnapshots: 0,
                        },
                    );
                }
                Ok(Acquire::Held(lease)) => {
                    free_since.remove(&w.channel);
                    let floor = floors.entry(w.channel.clone()).or_default();
                    *floor = (*floor).max(lease.token);
                }
                Err(_) => node.telemetry.backend_error(),
            }
        }
        *lock(&feeds.owned) = owned.keys().cloned().collect();
        node.owned.store(
            u64::try_from(owned.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        node.telemetry.owned(owned.len());
    }
}

/// Resolves once the node shuts down.
pub(crate) async fn shut_down(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn stop_wanted(rx: &mut watch::Receiver<OwnerCmd>) {
    let _ = rx
        .wait_for(|c| matches!(c, OwnerCmd::Release | OwnerCmd::Lost(_)))
        .await;
}

fn lose(feeds: &Feeds, channel: &str, o: &mut Owned, reason: &'static str) {
    if o.done.swap(true, Ordering::AcqRel) {
        return;
    }
    o.cmd.send_replace(OwnerCmd::Lost(reason));
    feeds.node.telemetry.emit(ClusterEventKind::LeaseLost {
        channel: resource(&feeds.scope, channel),
        token: o.token,
        reason,
    });
}

/// Leaving: every owner unsubscribes upstream and releases; the interest is withdrawn.
async fn goodbye(feeds: &Arc<Feeds>, owned: BTreeMap<String, Owned>) {
    let mut waits = Vec::new();
    for o in owned.values() {
        o.cmd.send_replace(OwnerCmd::Release);
        waits.push(o.cmd.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    for cmd in waits {
        // The owner task drops its receiver when it ends.
        while cmd.receiver_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let _ = feeds.write_interest().await;
    lock(&feeds.owned).clear();
}

// ---------------------------------------------------------------------------------------------
// The owner of one channel: subscribes upstream and publishes what comes.

fn start_owner(
    feeds: &Arc<Feeds>,
    channel: &str,
    options: Value,
    token: u64,
    granted_at: Instant,
    previous: Option<PreviousLease>,
) -> (watch::Sender<OwnerCmd>, Arc<AtomicBool>) {
    let (tx, rx) = watch::channel(OwnerCmd::Run);
    let done = Arc::new(AtomicBool::new(false));
    let owner = Owner {
        feeds: feeds.clone(),
        channel: channel.to_owned(),
        options,
        token,
        n: 0,
        cmd: rx,
        done: done.clone(),
    };
    feeds.node.spawn(owner.run(granted_at, previous));
    (tx, done)
}

struct Owner {
    feeds: Arc<Feeds>,
    channel: String,
    options: Value,
    token: u64,
    n: u64,
    cmd: watch::Receiver<OwnerCmd>,
    done: Arc<AtomicBool>,
}

/// Why an owner stops.
enum Stop {
    Release,
    Lost,
    Fenced,
    UpstreamStopped,
}

impl Owner {
    fn entry(&mut self, kind: EntryKind, payload: bytes::Bytes) -> FeedEntry {
        self.n += 1;
        FeedEntry::new(
            &self.feeds.node.holder.node,
            self.token,
            self.n,
            kind,
            payload,
        )
    }

    fn stop_requested(&self) -> Option<Stop> {
        match *self.cmd.borrow() {
            OwnerCmd::Release => Some(Stop::Release),
            OwnerCmd::Lost(_) => Some(Stop::Lost),
            _ => None,
        }
    }

    /// Appends entries, retrying failures (the backend skips what a retry repeats), until written,
    /// fenced, or told to stop.
    async fn publish(&mut self, entries: &[FeedEntry]) -> Result<(), Stop> {
        let mut backoff = Duration::from_millis(20);
        loop {
            let f = &self.feeds;
            match f
                .node
                .backend
                .publish(&f.scope, &self.channel, &f.node.holder, entries)
                .await
            {
                Ok(Publish::Written) => return Ok(()),
                Ok(Publish::Fenced) => return Err(Stop::Fenced),
                Err(e) => {
                    f.node.telemetry.backend_error();
                    tracing::debug!(channel = %self.channel, error = %e, "publish failed; retrying");
                }
            }
            if let Some(stop) = self.stop_requested() {
                return Err(stop);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.cmd.changed() => {}
            }
            backoff = (backoff * 2).min(Duration::from_millis(200));
        }
    }

    fn entries_of(&mut self, event: UpstreamEvent) -> Vec<FeedEntry> {
        match event {
            UpstreamEvent::Message(m) => {
                let sequence =
                    self.feeds
                        .upstream
                        .sequence(&self.channel, &m)
                        .map(|s| EntrySequence {
                            value: s.value,
                            snapshot: s.check == SequenceCheck::Snapshot,
                        });
                let kind = EntryKind::Data {
                    binary: !m.is_text(),
                    sequence,
                };
                let payload = bytes::Bytes::copy_from_slice(m.as_bytes());
                vec![self.entry(kind, payload)]
            }
            UpstreamEvent::Lagged(n) => {
                let gap = self.entry(
                    EntryKind::Gap {
                        action: "report".to_owned(),
                    },
                    bytes::Bytes::new(),
                );
                let reason = format!("the owner's client dropped {n} messages");
                let not_closed =
                    self.entry(EntryKind::GapNotClosed { reason }, bytes::Bytes::new());
                vec![gap, not_closed]
            }
            UpstreamEvent::Restored => vec![self.entry(EntryKind::Restored, bytes::Bytes::new())],
            UpstreamEvent::Gap { action } => {
                vec![self.entry(EntryKind::Gap { action }, bytes::Bytes::new())]
            }
            UpstreamEvent::GapClosed { value } => {
                vec![self.entry(EntryKind::GapClosed { value }, bytes::Bytes::new())]
            }
            UpstreamEvent::GapNotClosed { reason } => {
                vec![self.entry(EntryKind::GapNotClosed { reason }, bytes::Bytes::new())]
            }
            UpstreamEvent::Other(what) => {
                tracing::debug!(channel = %self.channel, %what, "upstream event not forwarded");
                Vec::new()
            }
        }
    }

    async fn run(mut self, granted_at: Instant, previous: Option<PreviousLease>) {
        let stop = self.serve(granted_at, previous).await;
        self.finish(stop).await;
    }

    async fn serve(&mut self, granted_at: Instant, previous: Option<PreviousLease>) -> Stop {
        let claimed = self.entry(EntryKind::Claimed, bytes::Bytes::new());
        if let Err(stop) = self.publish(&[claimed]).await {
            return stop;
        }
        let mut first = true;
        let mut resnapshots_seen = 0;
        let mut retry = Duration::from_millis(250);
        loop {
            let upstream = self.feeds.upstream.clone();
            let subscribed = tokio::select! {
                r = upstream.subscribe(&self.channel, &self.options) => Some(r),
                _ = stop_wanted(&mut self.cmd) => None,
            };
            let Some(subscribed) = subscribed else {
                return self.stop_requested().unwrap_or(Stop::Lost);
            };
            let mut sub = match subscribed {
                Ok(sub) => sub,
                Err(e) => {
                    let failed = self.entry(
                        EntryKind::Failed {
                            reason: e.to_string(),
                        },
                        bytes::Bytes::new(),
                    );
                    if let Err(stop) = self.publish(&[failed]).await {
                        return stop;
                    }
                    if matches!(e, ClusterError::Upstream(nova_core::Error::Stopped(_))) {
                        return Stop::UpstreamStopped;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = self.cmd.changed() => {}
                    }
                    retry = (retry * 2).min(Duration::from_secs(10));
                    if let Some(stop) = self.stop_requested() {
                        return stop;
                    }
                    continue;
                }
            };
            if first {
                first = false;
                let res = resource(&self.feeds.scope, &self.channel);
                let subscribed_in = granted_at.elapsed();
                let telemetry = &self.feeds.node.telemetry;
                telemetry.emit(ClusterEventKind::UpstreamSubscribed {
                    channel: res.clone(),
                    duration: subscribed_in,
                });
                if let Some(prev) = previous
                    .as_ref()
                    .filter(|p| p.holder != self.feeds.node.holder)
                {
                    telemetry.emit(ClusterEventKind::Failover {
                        channel: res,
                        from: prev.holder.node.clone(),
                        duration: prev.since_renewal + subscribed_in,
                    });
                }
            }
            let outcome = self.pump(&mut sub, &mut resnapshots_seen).await;
            match outcome {
                Pumped::Resnapshot => {
                    let gap = self.entry(
                        EntryKind::Gap {
                            action: "resnapshot".to_owned(),
                        },
                        bytes::Bytes::new(),
                    );
                    let _ = tokio::time::timeout(Duration::from_secs(2), sub.unsubscribe()).await;
                    if let Err(stop) = self.publish(&[gap]).await {
                        return stop;
                    }
                }
                Pumped::Stop(stop) => {
                    // Unsubscribe upstream in every case: the lease is gone or given up.
                    let _ = tokio::time::timeout(Duration::from_secs(2), sub.unsubscribe()).await;
                    return stop;
                }
            }
        }
    }

    async fn pump(&mut self, sub: &mut UpstreamSubscription, resnapshots_seen: &mut u64) -> Pumped {
        loop {
            let event = tokio::select! {
                e = sub.next() => e,
                _ = self.cmd.changed() => {
                    match *self.cmd.borrow() {
                        OwnerCmd::Release => return Pumped::Stop(Stop::Release),
                        OwnerCmd::Lost(_) => return Pumped::Stop(Stop::Lost),
                        OwnerCmd::Resnapshot(k) if k > *resnapshots_seen => {
                            *resnapshots_seen = k;
                            return Pumped::Resnapshot;
                        }
                        _ => continue,
                    }
                }
            };
            let Some(event) = event else {
                return Pumped::Stop(Stop::UpstreamStopped);
            };
            let mut entries = self.entries_of(event);
            while entries.len() < PUBLISH_BATCH {
                match sub.try_next() {
                    Some(Some(event)) => entries.extend(self.entries_of(event)),
                    _ => break,
                }
            }
            if let Err(stop) = self.publish(&entries).await {
                return Pumped::Stop(stop);
            }
        }
    }

    async fn finish(self, stop: Stop) {
        let f = &self.feeds;
        let res = resource(&f.scope, &self.channel);
        match stop {
            Stop::Release => {
                if let Ok(true) = f
                    .node
                    .backend
                    .release(&res, &f.node.holder, self.token)
                    .await
                {
                    f.node.telemetry.emit(ClusterEventKind::LeaseReleased {
                        channel: res,
                        token: self.token,
                    });
                }
            }
            Stop::Lost => {}
            Stop::Fenced | Stop::UpstreamStopped => {
                let reason = if matches!(stop, Stop::Fenced) {
                    "fenced"
                } else {
                    "upstream_stopped"
                };
                if !self.done.swap(true, Ordering::AcqRel) {
                    f.node.telemetry.emit(ClusterEventKind::LeaseLost {
                        channel: res.clone(),
                        token: self.token,
                        reason,
                    });
                }
                if matches!(stop, Stop::UpstreamStopped) {
                    let _ = f
                        .node
                        .backend
                        .release(&res, &f.node.holder, self.token)
                        .await;
                }
            }
        }
        self.done.store(true, Ordering::Release);
    }
}

enum Pumped {
    Resnapshot,
    Stop(Stop),
}
