//! [`ClusterRegistry`]: nova-core's [`SubscriptionRegistry`], shared through the cluster.
//!
//! A client built with `Client::connect_with(config, handler, Box::new(cluster.registry(name)), …)`
//! records its subscriptions here as usual; the registry keeps them locally (what `list`
//! returns: this client's subscriptions, which are what the runtime may restore) and publishes
//! them to the backend under the node's id, so every node sees every node's subscriptions
//! ([`Cluster::registries`](crate::Cluster::registries)). The runtime calls the registry
//! synchronously from its connection task, so writes go through a one-slot signal to a
//! background task that publishes the whole table (coalescing bursts); the table is published
//! again every quarter TTL, so it comes back after a backend restart, and it expires with the
//! node.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nova_core::{Subscription, SubscriptionRegistry, SubscriptionStatus};
use tokio::sync::mpsc;

use crate::backend::{NodeRegistry, RegistryEntry};
use crate::cluster::{Cluster, Node};

type Table = BTreeMap<String, (Subscription, serde_json::Value)>;

/// A subscription registry shared through the cluster (see the module docs).
///
/// ```no_run
/// use nova_cluster::{Cluster, ClusterConfig, MemoryBackend};
/// use nova_core::{Client, ClientConfig, DefaultHandler};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = Cluster::join(ClusterConfig::new("a", "eu-west"), MemoryBackend::new("demo")).await?;
/// let config = ClientConfig::builder("ws://127.0.0.1:9000").name("feed").build()?;
/// let registry = Box::new(cluster.registry("feed"));
/// let (client, _messages) = Client::connect_with(config, DefaultHandler, registry, None);
/// let everyone = cluster.registries().await?; // every node's clients and their subscriptions
/// # let _ = (client, everyone); Ok(()) }
/// ```
pub struct ClusterRegistry {
    client: String,
    table: Arc<Mutex<Table>>,
    changed: mpsc::Sender<()>,
}

impl std::fmt::Debug for ClusterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRegistry")
            .field("client", &self.client)
            .field("subscriptions", &lock(&self.table).len())
            .finish()
    }
}

fn lock(m: &Mutex<Table>) -> MutexGuard<'_, Table> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Cluster {
    /// A shared registry for the client named `client` on this node.
    #[must_use]
    pub fn registry(&self, client: impl Into<String>) -> ClusterRegistry {
        let client = client.into();
        let table = Arc::new(Mutex::new(Table::new()));
        let (changed, rx) = mpsc::channel(1);
        self.node.spawn(publish_loop(
            Arc::downgrade(&self.node),
            client.clone(),
            table.clone(),
            rx,
        ));
        ClusterRegistry {
            client,
            table,
            changed,
        }
    }
}

impl ClusterRegistry {
    fn changed(&self) {
        // A full slot already says "publish": nothing is lost by not adding another.
        let _ = self.changed.try_send(());
    }
}

impl SubscriptionRegistry for ClusterRegistry {
    fn insert(&mut self, subscription: Subscription, options: serde_json::Value) {
        lock(&self.table).insert(subscription.id.clone(), (subscription, options));
        self.changed();
    }

    fn set_status(&mut self, id: &str, status: SubscriptionStatus, error: Option<String>) {
        if let Some((s, _)) = lock(&self.table).get_mut(id) {
            s.status = status;
            s.error = error;
        }
        self.changed();
    }

    fn remove(&mut self, id: &str) {
        lock(&self.table).remove(id);
        self.changed();
    }

    fn list(&self) -> Vec<(Subscription, serde_json::Value)> {
        lock(&self.table).values().cloned().collect()
    }
}

async fn publish_loop(
    node: std::sync::Weak<Node>,
    client: String,
    table: Arc<Mutex<Table>>,
    mut changed: mpsc::Receiver<()>,
) {
    let Some((every, mut shutdown)) = node
        .upgrade()
        .map(|n| (n.config.renew_every(), n.shutdown.subscribe()))
    else {
        return;
    };
    loop {
        tokio::select! {
            c = changed.recv() => if c.is_none() { return },
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let Some(node) = node.upgrade() else { return };
        let entries = lock(&table)
            .values()
            .map(|(s, options)| RegistryEntry {
                id: s.id.clone(),
                channel: s.channel.clone(),
                status: s.status.as_str().to_owned(),
                error: s.error.clone(),
                options: options.clone(),
            })
            .collect();
        let registry = NodeRegistry {
            node: node.holder.node.clone(),
            client: client.clone(),
            entries,
        };
        // Registries live as long as a few presence TTLs without renewal.
        if node
            .backend
            .put_registry(&registry, node.config.ttl() * 4)
            .await
            .is_err()
        {
            node.telemetry.backend_error();
        }
    }
}
