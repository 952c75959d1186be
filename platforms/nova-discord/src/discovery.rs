//! Gateway discovery: `GET /gateway/bot` over HTTPS with reqwest and rustls.
//!
//! The answer gives the gateway URL to connect to, the recommended shard count and
//! `session_start_limit` (Identify budget and `max_concurrency`, see [`crate::IdentifyLimiter`]).
//! The token goes in `Authorization: Bot TOKEN`, marked sensitive so HTTP tooling does not
//! print it; it is held as a [`Secret`]. TLS is rustls with the ring provider and the
//! webpki root certificates, handed to reqwest preconfigured, so the workspace has one crypto
//! provider. 401 and 429 have their own errors (401 is not worth retrying; 429 says how long to
//! wait). Bodies are read up to 64 KiB.

use std::sync::Arc;
use std::time::Duration;

use nova_core::Secret;
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER, USER_AGENT};
use serde::Deserialize;

use crate::error::DiscoveryError;

/// Discord's REST base for API v10.
pub const DEFAULT_API_URL: &str = "https://discord.com/api/v10";

/// The largest response body read.
const MAX_BODY: usize = 64 * 1024;
/// Connect and whole-request timeouts.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `session_start_limit` of `/gateway/bot`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub struct SessionStartLimit {
    /// Identifies allowed per period (1000 for most bots).
    pub total: u32,
    /// Identifies left in this period.
    pub remaining: u32,
    /// Milliseconds until `remaining` is back to `total`.
    pub reset_after: u64,
    /// Identify buckets per 5 seconds.
    pub max_concurrency: u32,
}

/// The answer of `/gateway/bot`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayBot {
    /// The gateway URL, without query (`wss://gateway.discord.gg`).
    pub url: String,
    /// The recommended number of shards.
    pub shards: u32,
    /// The Identify budget.
    pub session_start_limit: SessionStartLimit,
}

/// A discovery client for one REST base. Cheap to clone (reqwest's client is shared).
///
/// ```no_run
/// use nova_core::Secret;
/// use nova_discord::{DEFAULT_API_URL, Discovery};
///
/// # async fn run() -> Result<(), nova_discord::DiscoveryError> {
/// let discovery = Discovery::new(DEFAULT_API_URL)?;
/// let token = Secret::new(std::env::var("DISCORD_TOKEN").unwrap_or_default());
/// let gateway = discovery.gateway_bot(&token).await?;
/// println!("{} with {} shards", gateway.url, gateway.shards);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Discovery {
    client: reqwest::Client,
    api_url: String,
}

impl Discovery {
    /// A client for `api_url` (`https://discord.com/api/v10`, or a simulator's
    /// `http://127.0.0.1:PORT/api/v10`).
    ///
    /// # Errors
    /// [`DiscoveryError::Client`] when the HTTP client cannot be built.
    pub fn new(api_url: impl Into<String>) -> Result<Self, DiscoveryError> {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        // The ring provider always supports the default protocol versions; if it ever did not,
        // plain http still works and https fails with a clear error at request time.
        if let Ok(tls) = tls {
            builder = builder.tls_backend_preconfigured(tls);
        }
        let client = builder
            .build()
            .map_err(|e| DiscoveryError::Client(Box::new(e)))?;
        Ok(Self {
            client,
            api_url: api_url.into().trim_end_matches('/').to_owned(),
        })
    }

    /// The REST base.
    #[must_use]
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// `GET {api_url}/gateway/bot` with `token`.
    ///
    /// # Errors
    /// [`DiscoveryError`]: the request failed, 401, 429, another status, or a body that is not
    /// the documented JSON.
    pub async fn gateway_bot(&self, token: &Secret) -> Result<GatewayBot, DiscoveryError> {
        let mut authorization = HeaderValue::try_from(format!("Bot {}", token.expose()))
            .map_err(|_| DiscoveryError::InvalidToken)?;
        authorization.set_sensitive(true);
        let url = format!("{}/gateway/bot", self.api_url);
        let mut response = self
            .client
            .get(url)
            .header(AUTHORIZATION, authorization)
            .header(
                USER_AGENT,
                concat!(
                    "DiscordBot (https://example.invalid/nova, ",
                    env!("CARGO_PKG_VERSION"),
                    ")"
                ),
            )
            .send()
            .await
            .map_err(|e| DiscoveryError::Request(Box::new(e)))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| DiscoveryError::Request(Box::new(e)))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(DiscoveryError::TooLarge { limit: MAX_BODY });
            }
            body.extend_from_slice(&chunk);
        }
        match status {
            200..=299 => serde_json::from_slice(&body).map_err(DiscoveryError::Decode),
            401 => Err(DiscoveryError::Unauthorized),
            429 => Err(DiscoveryError::RateLimited {
                retry_after: retry_after.or_else(|| body_retry_after(&body)),
            }),
            status => Err(DiscoveryError::Status { status }),
        }
    }
}

/// The `retry_after` (seconds) of a 429 body.
fn body_retry_after(body: &[u8]) -> Option<Duration> {
    #[derive(Deserialize)]
    struct RateLimited {
        retry_after: f64,
    }
    let parsed: RateLimited = serde_json::from_slice(body).ok()?;
    Duration::try_from_secs_f64(parsed.retry_after).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer() {
        let body = r#"{"url":"wss://gateway.discord.gg/","shards":9,"session_start_limit":{"total":1000,"remaining":999,"reset_after":14400000,"max_concurrency":1}}"#;
        let parsed: Result<GatewayBot, _> = serde_json::from_str(body);
        let Ok(parsed) = parsed else {
            panic!("{parsed:?}")
        };
        assert_eq!(parsed.shards, 9);
        assert_eq!(parsed.session_start_limit.reset_after, 14_400_000);
    }

    #[test]
    fn retry_after_from_the_body() {
        let body = br#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#;
        assert_eq!(body_retry_after(body), Some(Duration::from_millis(1500)));
        assert_eq!(body_retry_after(b"nope"), None);
    }

    #[test]
    fn debug_has_no_token() {
        let discovery = Discovery::new("http://127.0.0.1:1/api/v10/");
        let Ok(discovery) = discovery else {
            panic!("client")
        };
        assert_eq!(discovery.api_url(), "http://127.0.0.1:1/api/v10");
    }
}
