//! Geo-aware placement: which node should own a new upstream subscription.
//!
//! [`GeoRouter::pick`] takes the platform's region (configured per platform, e.g. Deribit in
//! `eu-west`) and the live nodes, and picks, in this order:
//!
//! 1. the least-loaded live node **in the platform's region**;
//! 2. else the least-loaded node of the **nearest region** that has live nodes, by the
//!    configured [`DistanceTable`] (regions without an entry are not "near");
//! 3. else the **least-loaded** live node anywhere.
//!
//! Ties go to the smallest node id, so every node computes the same answer from the same view.
//! Placement is decided when a channel is claimed; a better-placed node that joins later does
//! not take channels over (a move would cost the consumers a gap).

use std::collections::BTreeMap;

use crate::backend::NodeInfo;

/// Distances between regions (any unit: milliseconds of round trip, kilometres), symmetric.
///
/// ```
/// use nova_cluster::DistanceTable;
///
/// let table = DistanceTable::new().with("eu-west", "us-east", 80).with("eu-west", "ap-south", 150);
/// assert_eq!(table.distance("us-east", "eu-west"), Some(80));
/// assert_eq!(table.distance("eu-west", "eu-west"), Some(0));
/// assert_eq!(table.distance("us-east", "ap-south"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistanceTable {
    distances: BTreeMap<(String, String), u64>,
}

impl DistanceTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the distance between `a` and `b` (both ways).
    #[must_use]
    pub fn with(mut self, a: &str, b: &str, distance: u64) -> Self {
        self.set(a, b, distance);
        self
    }

    /// Sets the distance between `a` and `b` (both ways).
    pub fn set(&mut self, a: &str, b: &str, distance: u64) {
        self.distances.insert(key(a, b), distance);
    }

    /// The distance between `a` and `b`: 0 for the same region, `None` when not configured.
    #[must_use]
    pub fn distance(&self, a: &str, b: &str) -> Option<u64> {
        if a == b {
            return Some(0);
        }
        self.distances.get(&key(a, b)).copied()
    }

    /// Whether the table has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.distances.is_empty()
    }
}

fn key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

/// Picks the owner of a new subscription (see the module docs for the rule).
///
/// ```
/// use nova_cluster::{DistanceTable, GeoRouter, NodeInfo};
///
/// let router = GeoRouter::new(DistanceTable::new().with("eu-west", "eu-central", 10).with("eu-west", "us-east", 80));
/// let nodes = vec![
///     NodeInfo::new("a", "1", "us-east", 0),
///     NodeInfo::new("b", "1", "eu-central", 5),
///     NodeInfo::new("c", "1", "eu-central", 2),
/// ];
/// // Nobody in eu-west: the nearest region with nodes is eu-central, and c is less loaded there.
/// assert_eq!(router.pick(Some("eu-west"), &nodes).unwrap().id, "c");
/// // No region for the platform: the least-loaded node anywhere.
/// assert_eq!(router.pick(None, &nodes).unwrap().id, "a");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GeoRouter {
    distances: DistanceTable,
}

impl GeoRouter {
    /// A router with this distance table.
    #[must_use]
    pub fn new(distances: DistanceTable) -> Self {
        Self { distances }
    }

    /// The distance table.
    #[must_use]
    pub fn distances(&self) -> &DistanceTable {
        &self.distances
    }

    /// The node that should own a subscription to a platform in `platform_region`, among `nodes`.
    #[must_use]
    pub fn pick<'a>(
        &self,
        platform_region: Option<&str>,
        nodes: &'a [NodeInfo],
    ) -> Option<&'a NodeInfo> {
        let least = |it: &mut dyn Iterator<Item = &'a NodeInfo>| {
            it.min_by(|a, b| a.load.cmp(&b.load).then_with(|| a.id.cmp(&b.id)))
        };
        if let Some(region) = platform_region {
            if let Some(n) = least(&mut nodes.iter().filter(|n| n.region == region)) {
                return Some(n);
            }
            let nearest = nodes
                .iter()
                .filter_map(|n| {
                    self.distances
                        .distance(region, &n.region)
                        .map(|d| (d, &n.region))
                })
                .min();
            if let Some((_, near)) = nearest {
                return least(&mut nodes.iter().filter(|n| &n.region == near));
            }
        }
        least(&mut nodes.iter())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(id: &str, region: &str, load: u64) -> NodeInfo {
        NodeInfo::new(id, "i", region, load)
    }

    #[test]
    fn same_region_first_least_loaded_and_ties_by_id() {
        let r = GeoRouter::default();
        let nodes = [
            node("b", "eu-west", 1),
            node("a", "eu-west", 1),
            node("c", "us-east", 0),
        ];
        assert_eq!(r.pick(Some("eu-west"), &nodes).unwrap().id, "a");
        assert_eq!(r.pick(Some("us-east"), &nodes).unwrap().id, "c");
    }

    #[test]
    fn nearest_region_then_anywhere() {
        let t = DistanceTable::new()
            .with("ap-south", "eu-west", 120)
            .with("ap-south", "us-east", 200);
        let r = GeoRouter::new(t);
        let nodes = [node("a", "eu-west", 9), node("b", "us-east", 0)];
        assert_eq!(r.pick(Some("ap-south"), &nodes).unwrap().id, "a");
        // A region the table does not know: least loaded anywhere.
        assert_eq!(r.pick(Some("sa-east"), &nodes).unwrap().id, "b");
        assert!(r.pick(Some("eu-west"), &[]).is_none());
    }
}
