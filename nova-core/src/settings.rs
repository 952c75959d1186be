//! Global settings (the seed's application config): reconnect defaults, connect timeout and one
//! section per platform, loaded from a TOML file (with the `settings` feature, on by default)
//! and the environment.
//!
//! ```toml
//! default_reconnect_delay = 1000   # milliseconds, as in the seed
//! max_reconnect_delay = 30000
//! max_reconnect_attempts = 10
//! connection_timeout = 10000
//!
//! [platforms.deribit]
//! endpoint = "wss://www.deribit.com/ws/api/v2"
//! api_key = { env = "DERIBIT_API_KEY" }
//! api_secret = { env = "DERIBIT_API_SECRET" }
//! ```
//!
//! Environment variables override the file: `NOVA_DEFAULT_RECONNECT_DELAY`,
//! `NOVA_MAX_RECONNECT_DELAY`, `NOVA_MAX_RECONNECT_ATTEMPTS`, `NOVA_CONNECTION_TIMEOUT`
//! (milliseconds or a count). A platform section without credentials takes them from
//! `<PLATFORM>_API_KEY` and `<PLATFORM>_API_SECRET`. Credentials are held as [`Secret`]s, so a
//! `Debug` of the settings never shows them.

use std::collections::BTreeMap;
#[cfg(feature = "settings")]
use std::path::Path;
use std::time::Duration;

#[cfg(feature = "settings")]
use serde::Deserialize;

use crate::error::ConfigError;
use crate::secret::Secret;

/// Global settings shared by every client of an application.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// First reconnect delay (the builder's `backoff_initial`).
    pub default_reconnect_delay: Option<Duration>,
    /// Largest reconnect delay (the builder's `backoff_max`).
    pub max_reconnect_delay: Option<Duration>,
    /// Consecutive reconnect attempts before giving up.
    pub max_reconnect_attempts: Option<u32>,
    /// Time allowed for one connect.
    pub connection_timeout: Option<Duration>,
    /// One section per platform, by name (`deribit`, `bybit`, ...).
    pub platforms: BTreeMap<String, PlatformSettings>,
}

/// The settings of one platform.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PlatformSettings {
    /// The WebSocket endpoint.
    pub endpoint: Option<String>,
    /// The API key or client id.
    pub api_key: Option<Secret>,
    /// The API secret.
    pub api_secret: Option<Secret>,
    /// Every other key of the section, for the platform adapter to read, as JSON values (a
    /// TOML date-time becomes its RFC 3339 string), so the TOML parser's types are not part of
    /// nova's API.
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[cfg(feature = "settings")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    default_reconnect_delay: Option<u64>,
    max_reconnect_delay: Option<u64>,
    max_reconnect_attempts: Option<u32>,
    connection_timeout: Option<u64>,
    #[serde(default)]
    platforms: BTreeMap<String, RawPlatform>,
}

#[cfg(feature = "settings")]
#[derive(Deserialize)]
struct RawPlatform {
    endpoint: Option<String>,
    api_key: Option<RawSecret>,
    api_secret: Option<RawSecret>,
    #[serde(flatten)]
    extra: BTreeMap<String, toml::Value>,
}

#[cfg(feature = "settings")]
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSecret {
    Env { env: String },
    Literal(String),
}

impl Settings {
    /// Loads a TOML file, then applies the process environment.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a named environment variable is missing.
    #[cfg(feature = "settings")]
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string(), |k| {
            std::env::var(k).ok()
        })
    }

    /// Parses TOML text, resolving environment variables through `env`; `origin` names the
    /// source in error messages.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nova_core::Settings;
    ///
    /// let toml = r#"
    ///     max_reconnect_attempts = 10
    ///     [platforms.deribit]
    ///     api_key = { env = "DERIBIT_API_KEY" }
    /// "#;
    /// let env = |k: &str| match k {
    ///     "DERIBIT_API_KEY" => Some("my-id".to_owned()),
    ///     "DERIBIT_API_SECRET" => Some("my-secret".to_owned()),
    ///     "NOVA_CONNECTION_TIMEOUT" => Some("5000".to_owned()),
    ///     _ => None,
    /// };
    /// let s = Settings::from_toml(toml, "example", env)?;
    /// assert_eq!(s.max_reconnect_attempts, Some(10));
    /// assert_eq!(s.connection_timeout, Some(Duration::from_secs(5)));
    /// let deribit = &s.platforms["deribit"];
    /// assert_eq!(deribit.api_secret.as_ref().unwrap().expose(), "my-secret");
    /// assert!(!format!("{s:?}").contains("my-secret"));
    /// # Ok::<(), nova_core::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// When the text is not valid settings TOML, or a named environment variable is missing or
    /// not a number where one is needed.
    #[cfg(feature = "settings")]
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawSettings = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: origin.to_owned(),
            source: Box::new(source),
        })?;
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        let mut settings = Settings {
            default_reconnect_delay: ms(raw.default_reconnect_delay),
            max_reconnect_delay: ms(raw.max_reconnect_delay),
            max_reconnect_attempts: raw.max_reconnect_attempts,
            connection_timeout: ms(raw.connection_timeout),
            platforms: BTreeMap::new(),
        };
        for (name, p) in raw.platforms {
            let upper = name.to_ascii_uppercase().replace('-', "_");
            let api_key = resolve(p.api_key, &format!("{upper}_API_KEY"), &env)?;
            let api_secret = resolve(p.api_secret, &format!("{upper}_API_SECRET"), &env)?;
            let platform = PlatformSettings {
                endpoint: p.endpoint,
                api_key,
                api_secret,
                extra: p.extra.into_iter().map(|(k, v)| (k, to_json(v))).collect(),
            };
            settings.platforms.insert(name, platform);
        }
        settings.apply_env(env)?;
        Ok(settings)
    }

    /// Settings from the environment alone (no file).
    ///
    /// # Errors
    /// When a `NOVA_*` variable is set but not a number.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut s = Self::default();
        s.apply_env(|k| std::env::var(k).ok())?;
        Ok(s)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let number = |name: &str| -> Result<Option<u64>, ConfigError> {
            env(name)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| ConfigError::Env {
                        name: name.to_owned(),
                        reason: format!("expected a whole number, got {v:?}"),
                    })
                })
                .transpose()
        };
        if let Some(v) = number("NOVA_DEFAULT_RECONNECT_DELAY")? {
            self.default_reconnect_delay = Some(Duration::from_millis(v));
        }
        if let Some(v) = number("NOVA_MAX_RECONNECT_DELAY")? {
            self.max_reconnect_delay = Some(Duration::from_millis(v));
        }
        if let Some(v) = number("NOVA_MAX_RECONNECT_ATTEMPTS")? {
            let v = u32::try_from(v).map_err(|_| ConfigError::Env {
                name: "NOVA_MAX_RECONNECT_ATTEMPTS".to_owned(),
                reason: "too large".to_owned(),
            })?;
            self.max_reconnect_attempts = Some(v);
        }
        if let Some(v) = number("NOVA_CONNECTION_TIMEOUT")? {
            self.connection_timeout = Some(Duration::from_millis(v));
        }
        Ok(())
    }
}

/// A TOML value as JSON: tables become objects, date-times their RFC 3339 text; a float that
/// JSON cannot hold (NaN, infinity) becomes `null`.
#[cfg(feature = "settings")]
fn to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        toml::Value::String(s) => Json::String(s),
        toml::Value::Integer(i) => Json::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.into_iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Json::Object(t.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
    }
}

#[cfg(feature = "settings")]
fn resolve(
    raw: Option<RawSecret>,
    default_env: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    match raw {
        Some(RawSecret::Literal(v)) => Ok(Some(Secret::new(v))),
        Some(RawSecret::Env { env: name }) => match env(&name) {
            Some(v) => Ok(Some(Secret::new(v))),
            None => Err(ConfigError::Env {
                name,
                reason: "not set".to_owned(),
            }),
        },
        None => Ok(env(default_env).map(Secret::new)),
    }
}

#[cfg(all(test, feature = "settings"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_named_env_is_a_clear_error() {
        let toml = "[platforms.bybit]\napi_secret = { env = \"BYBIT_SECRET_X\" }\n";
        let err = Settings::from_toml(toml, "t.toml", |_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable BYBIT_SECRET_X: not set"
        );
    }

    #[test]
    fn unknown_top_level_keys_are_rejected_with_position() {
        let err = Settings::from_toml("max_reconect_attempts = 3\n", "t.toml", |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.toml") && err.contains("max_reconect_attempts"),
            "{err}"
        );
    }

    #[test]
    fn env_overrides_file_and_bad_numbers_are_named() {
        let env = |k: &str| (k == "NOVA_MAX_RECONNECT_ATTEMPTS").then(|| "3".to_owned());
        let s = Settings::from_toml("max_reconnect_attempts = 10\n", "t", env).unwrap();
        assert_eq!(s.max_reconnect_attempts, Some(3));
        let env = |k: &str| (k == "NOVA_CONNECTION_TIMEOUT").then(|| "soon".to_owned());
        let err = Settings::from_toml("", "t", env).unwrap_err().to_string();
        assert!(err.contains("NOVA_CONNECTION_TIMEOUT"), "{err}");
    }

    #[test]
    fn extra_platform_keys_are_kept_and_literal_secrets_hidden() {
        let toml = "[platforms.slack]\napi_secret = \"xapp-123\"\ncurrency = \"BTC\"\n";
        let s = Settings::from_toml(toml, "t", |_| None).unwrap();
        assert_eq!(s.platforms["slack"].extra["currency"].as_str(), Some("BTC"));
        assert!(!format!("{s:?}").contains("xapp-123"));
    }

    #[test]
    fn extra_keys_of_every_toml_type_become_json() {
        let toml = r#"
            [platforms.deribit]
            depth = 10
            ratio = 0.5
            testnet = true
            since = 1979-05-27T07:32:00Z
            channels = ["book", "trades"]
            limits = { per_second = 20 }
        "#;
        let s = Settings::from_toml(toml, "t", |_| None).unwrap();
        let extra = &s.platforms["deribit"].extra;
        assert_eq!(extra["depth"], serde_json::json!(10));
        assert_eq!(extra["ratio"], serde_json::json!(0.5));
        assert_eq!(extra["testnet"], serde_json::json!(true));
        assert_eq!(extra["since"], serde_json::json!("1979-05-27T07:32:00Z"));
        assert_eq!(extra["channels"], serde_json::json!(["book", "trades"]));
        assert_eq!(extra["limits"], serde_json::json!({ "per_second": 20 }));
    }

    #[test]
    fn a_parse_error_keeps_the_toml_error_as_its_source() {
        let err = Settings::from_toml("max_reconnect_attempts = \"x\"\n", "t.toml", |_| None)
            .unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }));
        assert!(std::error::Error::source(&err).is_some());
    }
}
