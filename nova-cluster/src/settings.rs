//! The `[cluster]` section of nova's settings file, and its `NOVA_CLUSTER_*` overrides.
//!
//! ```toml
//! [cluster]
//! enabled = true
//! name = "prod"                       # namespaces every backend key
//! node_id = "fra-1"                   # default: NOVA_CLUSTER_NODE_ID, else host name + pid
//! region = "eu-west"
//! backend_url = { env = "REDIS_URL" } # or a literal "redis://…"; absent: in-process backend
//! lease_ttl = 1000                    # milliseconds (presence uses the same TTL)
//!
//! [cluster.regions.eu-west]           # distances, any unit, used both ways
//! eu-central = 10
//! us-east = 80
//!
//! [platforms.deribit]                 # nova-core's platform section; the region is read here
//! region = "eu-west"
//! ```
//!
//! Environment variables override the file: `NOVA_CLUSTER_ENABLED` (`true`/`false`/`1`/`0`),
//! `NOVA_CLUSTER_NAME`, `NOVA_CLUSTER_NODE_ID`, `NOVA_CLUSTER_REGION`,
//! `NOVA_CLUSTER_BACKEND_URL`, `NOVA_CLUSTER_LEASE_TTL` (milliseconds).
//!
//! The backend URL can carry a password, so it is held as a [`Secret`]: a `Debug` of the
//! settings never shows it.
//!
//! nova-core's `Settings` rejects unknown top-level keys, so while it does not know the
//! `[cluster]` table, a file with one is read by [`ClusterSettings::load`] here and by
//! `nova_core::Settings` only without that table.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use nova_core::Secret;
use serde::Deserialize;

use crate::error::ClusterError;
use crate::geo::DistanceTable;

/// The default lease (and presence) TTL: with renewals every quarter of it and claims checked
/// every 100 ms, a dead owner's channels are taken over in well under two seconds.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_millis(1000);

/// The cluster settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClusterSettings {
    /// Whether clustering is on (default `false`: one process, nothing shared).
    pub enabled: bool,
    /// The cluster's name, which namespaces its keys (default `nova`).
    pub name: String,
    /// This node's id (default: the host name and the process id).
    pub node_id: String,
    /// This node's region (default `default`).
    pub region: String,
    /// The backend URL (`redis://…`); `None`: the in-process backend.
    pub backend_url: Option<Secret>,
    /// The lease and presence TTL (default [`DEFAULT_LEASE_TTL`]).
    pub lease_ttl: Duration,
    /// Distances between regions, for placement.
    pub regions: DistanceTable,
    /// The region of each platform (`[platforms.NAME] region = "…"`).
    pub platform_regions: BTreeMap<String, String>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            name: "nova".to_owned(),
            node_id: default_node_id(),
            region: "default".to_owned(),
            backend_url: None,
            lease_ttl: DEFAULT_LEASE_TTL,
            regions: DistanceTable::new(),
            platform_regions: BTreeMap::new(),
        }
    }
}

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}

#[derive(Deserialize, Default)]
struct RawFile {
    #[serde(default)]
    cluster: Option<RawCluster>,
    #[serde(default)]
    platforms: BTreeMap<String, RawPlatform>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    enabled: Option<bool>,
    name: Option<String>,
    node_id: Option<String>,
    region: Option<String>,
    backend_url: Option<RawSecret>,
    lease_ttl: Option<u64>,
    #[serde(default)]
    regions: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Deserialize, Default)]
struct RawPlatform {
    region: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSecret {
    Env { env: String },
    Literal(String),
}

impl ClusterSettings {
    /// Loads the `[cluster]` section (and the platforms' regions) from a TOML file, then applies
    /// the environment.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a variable is missing or malformed.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ClusterError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClusterError::Config(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text, &path.display().to_string(), |k| {
            std::env::var(k).ok()
        })
    }

    /// Settings from the environment alone.
    ///
    /// # Errors
    /// When a `NOVA_CLUSTER_*` variable is malformed.
    pub fn from_env() -> Result<Self, ClusterError> {
        Self::from_toml("", "environment", |k| std::env::var(k).ok())
    }

    /// Parses TOML text, resolving variables through `env`; `origin` names the source in errors.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nova_cluster::ClusterSettings;
    ///
    /// let toml = r#"
    ///     [cluster]
    ///     enabled = true
    ///     name = "prod"
    ///     region = "eu-west"
    ///     backend_url = { env = "REDIS_URL" }
    ///     [cluster.regions.eu-west]
    ///     us-east = 80
    ///     [platforms.deribit]
    ///     region = "eu-west"
    /// "#;
    /// let env = |k: &str| match k {
    ///     "REDIS_URL" => Some("redis://:hunter2@127.0.0.1:6379".to_owned()),
    ///     "NOVA_CLUSTER_NODE_ID" => Some("fra-1".to_owned()),
    ///     "NOVA_CLUSTER_LEASE_TTL" => Some("1500".to_owned()),
    ///     _ => None,
    /// };
    /// let s = ClusterSettings::from_toml(toml, "nova.toml", env)?;
    /// assert!(s.enabled);
    /// assert_eq!(s.node_id, "fra-1");
    /// assert_eq!(s.lease_ttl, Duration::from_millis(1500));
    /// assert_eq!(s.regions.distance("us-east", "eu-west"), Some(80));
    /// assert_eq!(s.platform_regions["deribit"], "eu-west");
    /// assert!(!format!("{s:?}").contains("hunter2"));
    /// # Ok::<(), nova_cluster::ClusterError>(())
    /// ```
    ///
    /// # Errors
    /// When the text is not valid, or a variable is missing or malformed.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ClusterError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| ClusterError::Config(format!("{origin}: {e}")))?;
        let mut s = Self::default();
        let cluster = raw.cluster.unwrap_or_default();
        if let Some(v) = cluster.enabled {
            s.enabled = v;
        }
        if let Some(v) = cluster.name {
            s.name = v;
        }
        if let Some(v) = cluster.node_id {
            s.node_id = v;
        }
        if let Some(v) = cluster.region {
            s.region = v;
        }
        s.backend_url = match cluster.backend_url {
            Some(RawSecret::Literal(v)) => Some(Secret::new(v)),
            Some(RawSecret::Env { env: name }) => match env(&name) {
                Some(v) => Some(Secret::new(v)),
                None => {
                    return Err(ClusterError::Config(format!(
                        "{origin}: environment variable {name} (cluster.backend_url) is not set"
                    )));
                }
            },
            None => None,
        };
        if let Some(ms) = cluster.lease_ttl {
            s.lease_ttl = Duration::from_millis(ms);
        }
        for (a, row) in &cluster.regions {
            for (b, d) in row {
                s.regions.set(a, b, *d);
            }
        }
        for (name, p) in raw.platforms {
            if let Some(region) = p.region {
                s.platform_regions.insert(name, region);
            }
        }
        s.apply_env(env)?;
        s.validate()?;
        Ok(s)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ClusterError> {
        if let Some(v) = env("NOVA_CLUSTER_ENABLED") {
            self.enabled = match v.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                other => {
                    return Err(ClusterError::Config(format!(
                        "NOVA_CLUSTER_ENABLED: expected true or false, got {other:?}"
                    )));
                }
            };
        }
        if let Some(v) = env("NOVA_CLUSTER_NAME") {
            self.name = v;
        }
        if let Some(v) = env("NOVA_CLUSTER_NODE_ID") {
            self.node_id = v;
        }
        if let Some(v) = env("NOVA_CLUSTER_REGION") {
            self.region = v;
        }
        if let Some(v) = env("NOVA_CLUSTER_BACKEND_URL") {
            self.backend_url = (!v.is_empty()).then(|| Secret::new(v));
        }
        if let Some(v) = env("NOVA_CLUSTER_LEASE_TTL") {
            let ms: u64 = v.trim().parse().map_err(|_| {
                ClusterError::Config(format!(
                    "NOVA_CLUSTER_LEASE_TTL: expected milliseconds, got {v:?}"
                ))
            })?;
            self.lease_ttl = Duration::from_millis(ms);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ClusterError> {
        if self.lease_ttl < Duration::from_millis(100) {
            return Err(ClusterError::Config(format!(
                "lease_ttl {:?} is below 100 ms",
                self.lease_ttl
            )));
        }
        let bad = |s: &str| s.is_empty() || s.contains(['|', '\t', '{', '}']);
        if bad(&self.name) || bad(&self.node_id) {
            return Err(ClusterError::Config(
                "cluster name and node id must be non-empty, without `|`, tabs or braces"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_section_and_env_overrides() {
        let s = ClusterSettings::from_toml("", "t", |_| None).unwrap();
        assert!(!s.enabled && s.backend_url.is_none());
        assert_eq!(s.lease_ttl, DEFAULT_LEASE_TTL);
        let env = |k: &str| (k == "NOVA_CLUSTER_ENABLED").then(|| "maybe".to_owned());
        let err = ClusterSettings::from_toml("", "t", env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("NOVA_CLUSTER_ENABLED"), "{err}");
    }

    #[test]
    fn unknown_cluster_keys_and_bad_values_are_errors() {
        let err = ClusterSettings::from_toml("[cluster]\nlease_tll = 5\n", "t.toml", |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lease_tll"), "{err}");
        let err = ClusterSettings::from_toml("[cluster]\nlease_ttl = 5\n", "t.toml", |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("below 100 ms"), "{err}");
        let err = ClusterSettings::from_toml("[cluster]\nname = \"a|b\"\n", "t", |_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("without"), "{err}");
    }
}
