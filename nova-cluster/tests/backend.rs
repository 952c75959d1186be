//! The two backends behave the same: every test runs on the in-process store and on a real
//! redis-server started by nova-testkit.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use nova_cluster::{
    Acquire, Backend, Bucket, EntryKind, EntrySequence, FeedEntry, FeedId, Holder, MemoryBackend,
    NodeInfo, Publish, RedisBackend, Take,
};
use nova_testkit::RedisServer;

async fn both(test: impl AsyncFn(Arc<dyn Backend>)) {
    test(Arc::new(MemoryBackend::new("t"))).await;
    let redis = RedisServer::start_new().await.unwrap();
    test(Arc::new(RedisBackend::connect(&redis.url(), "t").unwrap())).await;
}

fn holder(node: &str) -> Holder {
    NodeInfo::new(node, format!("{node}-1"), "eu-west", 0).holder()
}

fn data(owner: &str, token: u64, n: u64, snapshot: bool) -> FeedEntry {
    let kind = EntryKind::Data {
        binary: false,
        sequence: Some(EntrySequence { value: n, snapshot }),
    };
    FeedEntry::new(
        owner,
        token,
        n,
        kind,
        bytes::Bytes::from(format!("{{\"n\":{n}}}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_expires_and_leaving_is_told_apart() {
    both(async |b| {
        let a = NodeInfo::new("a", "a-1", "eu-west", 0);
        let c = NodeInfo::new("c", "c-1", "us-east", 3);
        b.heartbeat(&a, Duration::from_millis(300)).await.unwrap();
        b.heartbeat(&c, Duration::from_secs(30)).await.unwrap();
        let m = b.members().await.unwrap();
        assert_eq!(m.live.len(), 2);
        tokio::time::sleep(Duration::from_millis(450)).await;
        let m = b.members().await.unwrap();
        assert_eq!(m.live, vec![c.clone()]);
        b.leave(&c).await.unwrap();
        let m = b.members().await.unwrap();
        assert!(m.live.is_empty());
        assert_eq!(m.left, vec![("c".to_owned(), "c-1".to_owned())]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_exclusive_fenced_and_expire() {
    both(async |b| {
        let (a, c) = (holder("a"), holder("c"));
        let ttl = Duration::from_millis(300);
        let Acquire::Granted { token: t1, .. } = b.acquire("s/x", &a, ttl, 0).await.unwrap() else {
            panic!("free lease not granted");
        };
        let Acquire::Held(info) = b.acquire("s/x", &c, ttl, 0).await.unwrap() else {
            panic!("held lease granted twice");
        };
        assert_eq!((info.holder, info.token), (a.clone(), t1));
        let renewed = b.renew(&[("s/x".to_owned(), t1)], &a, ttl).await.unwrap();
        assert!(renewed[0].held);
        let not_ours = b.renew(&[("s/x".to_owned(), t1)], &c, ttl).await.unwrap();
        assert!(!not_ours[0].held);
        tokio::time::sleep(Duration::from_millis(450)).await;
        let Acquire::Granted {
            token: t2,
            previous,
        } = b.acquire("s/x", &c, ttl, t1 + 1000).await.unwrap()
        else {
            panic!("expired lease not granted");
        };
        assert!(t2 > t1 + 1000, "{t2} {t1}");
        assert_eq!(previous.unwrap().holder, a);
        // The old holder can neither renew nor publish.
        assert!(!b.renew(&[("s/x".to_owned(), t1)], &a, ttl).await.unwrap()[0].held);
        let stale = data("a", t1, 1, false);
        assert_eq!(
            b.publish("s", "x", &a, &[stale]).await.unwrap(),
            Publish::Fenced
        );
        assert!(b.release("s/x", &c, t2).await.unwrap());
        assert!(b.leases().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_skip_retries_trim_at_snapshots_and_block() {
    both(async |b| {
        let a = holder("a");
        let Acquire::Granted { token, .. } = b
            .acquire("s/x", &a, Duration::from_secs(10), 0)
            .await
            .unwrap()
        else {
            panic!()
        };
        let batch = [data("a", token, 1, false), data("a", token, 2, true)];
        assert_eq!(
            b.publish("s", "x", &a, &batch).await.unwrap(),
            Publish::Written
        );
        // A retry of the same entries writes nothing twice.
        let retry = [data("a", token, 2, true), data("a", token, 3, false)];
        b.publish("s", "x", &a, &retry).await.unwrap();
        let head = b.head("s", "x").await.unwrap();
        let snap = head.snapshot.unwrap();
        let all = b.range("s", "x", FeedId::ZERO, 100).await.unwrap();
        let ns: Vec<u64> = all.iter().map(|(_, e)| e.n).collect();
        assert_eq!(ns, vec![2, 3], "entries before the snapshot are trimmed");
        assert_eq!(all[0].0, snap);
        assert_eq!(head.last, Some(all[1].0));
        let cursors = vec![("x".to_owned(), all[1].0)];
        let b2 = b.clone();
        let reader = tokio::spawn(async move {
            b2.read("s", &cursors, 10, Duration::from_secs(5))
                .await
                .unwrap()
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.publish("s", "x", &a, &[data("a", token, 4, false)])
            .await
            .unwrap();
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1[0].1.n, 4);
        assert_eq!(got[0].1[0].1, data("a", token, 4, false));
        b.request_resnapshot("s", "x").await.unwrap();
        let r = b
            .renew(&[("s/x".to_owned(), token)], &a, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(r[0].held && r[0].resnapshot);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interest_makes_channels_wanted_while_the_node_lives() {
    both(async |b| {
        let n = NodeInfo::new("a", "a-1", "eu-west", 0);
        b.heartbeat(&n, Duration::from_secs(10)).await.unwrap();
        let chans = vec![("x".to_owned(), serde_json::json!({"k": 1}))];
        b.set_interest("s", "a", &chans, Duration::from_secs(10))
            .await
            .unwrap();
        b.set_interest("s", "ghost", &chans, Duration::from_secs(10))
            .await
            .unwrap();
        let w = b.wanted("s").await.unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].wanted_by,
            vec!["a".to_owned()],
            "a node without presence wants nothing"
        );
        assert_eq!(w[0].options["k"], 1);
        b.set_interest("s", "a", &[], Duration::from_secs(10))
            .await
            .unwrap();
        assert!(b.wanted("s").await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_start_empty_and_refill() {
    both(async |b| {
        let bucket = Bucket {
            capacity: 10,
            refill_per_second: 100.0,
        };
        let Take::Wait(w) = b.take("k", bucket, 5, 0, false).await.unwrap() else {
            panic!("a new bucket is empty");
        };
        assert!(w <= Duration::from_millis(60), "{w:?}");
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            b.take("k", bucket, 5, 0, false).await.unwrap(),
            Take::Granted
        );
        assert_eq!(
            b.take("k", bucket, 5, 0, false).await.unwrap(),
            Take::Granted
        );
        assert!(matches!(
            b.take("k", bucket, 5, 0, false).await.unwrap(),
            Take::Wait(_)
        ));
        assert_eq!(
            b.take("k", bucket, 5, 0, true).await.unwrap(),
            Take::Granted
        );
    })
    .await;
}
