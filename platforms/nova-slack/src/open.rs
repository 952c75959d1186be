//! `apps.connections.open`: the HTTP call that hands out a single-use WebSocket URL, made
//! before every Socket Mode connection.
//!
//! `POST {api}/apps.connections.open` with the app-level token (`xapp-…`, scope
//! `connections:write`) in `Authorization: Bearer`; Slack answers
//! `{"ok":true,"url":"wss://wss-primary.slack.com/link/?ticket=…&app_id=…"}`, or
//! `{"ok":false,"error":"invalid_auth"}` and the like, or `429 Too Many Requests` with
//! `Retry-After: N` seconds (PROTOCOLS.md 4.1).
//!
//! The call goes through reqwest (HTTP/1.1, no proxy from the environment, no redirects) over
//! rustls with the *ring* provider and Mozilla's root certificates, the same provider the rest
//! of nova uses: reqwest's `rustls` feature would bring aws-lc-rs, so the crate uses
//! `rustls-no-provider` and hands reqwest a ready rustls config. The token is a
//! [`Secret`]: it is only exposed to build the header, which is marked sensitive, and never
//! appears in `Debug` output, errors or logs. The answer is read up to [`MAX_BODY`] bytes.
//!
//! Errors are typed for a retry policy: [`OpenError::RateLimited`] carries the `Retry-After`
//! delay, [`OpenError::is_fatal`] tells which ones no retry will fix (a bad token).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use nova_core::Secret;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use url::Url;

/// Slack's Web API base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";
/// The delay assumed when a `429` has no usable `Retry-After` (the official Python SDK's
/// default).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The largest answer read from `apps.connections.open`.
pub const MAX_BODY: usize = 64 * 1024;
/// The default time limit of one call (connect, TLS, request and answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why `apps.connections.open` gave no URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// `invalid_auth`: the token is not a valid app-level token.
    #[error("apps.connections.open: invalid_auth (the app-level token was refused)")]
    InvalidAuth,
    /// `429` (or `ratelimited`): try again after `retry_after`.
    #[error("apps.connections.open: rate limited, retry after {retry_after:?}")]
    RateLimited {
        /// `Retry-After`, or [`DEFAULT_RETRY_AFTER`] when the answer had none.
        retry_after: Duration,
    },
    /// `{"ok": false, "error": ..}` with another error (`not_authed`, `missing_scope`,
    /// `not_allowed_token_type`, `internal_error`, ...).
    #[error("apps.connections.open: {error}")]
    Api {
        /// Slack's error string.
        error: String,
    },
    /// An HTTP status other than 2xx and 429, without a Slack error in the body.
    #[error("apps.connections.open: HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// The request failed: DNS, connect, TLS, timeout, or the connection dropped. The source
    /// is the HTTP client's error (kept opaque, so the HTTP client is not part of the API).
    #[error("apps.connections.open: {0}")]
    Transport(#[source] nova_core::BoxError),
    /// The answer was not what Slack sends (not JSON, no `url`, not a `ws(s)://` URL, too large).
    #[error("apps.connections.open: unexpected answer: {0}")]
    InvalidResponse(String),
}

impl OpenError {
    /// The delay Slack asked for, for [`OpenError::RateLimited`].
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OpenError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether retrying cannot help: the token is refused or lacks what it needs. Everything
    /// else (rate limits, transport failures, server errors) is worth a retry after a backoff.
    #[must_use]
    pub fn is_fatal(&self) -> bool {
        match self {
            OpenError::InvalidAuth => true,
            OpenError::Api { error } => matches!(
                error.as_str(),
                "not_authed"
                    | "account_inactive"
                    | "token_revoked"
                    | "token_expired"
                    | "no_permission"
                    | "missing_scope"
                    | "not_allowed_token_type"
                    | "invalid_arguments"
                    | "missing_args"
                    | "forbidden_team"
                    | "insecure_request"
            ),
            _ => false,
        }
    }
}

fn transport_error(e: reqwest::Error) -> OpenError {
    OpenError::Transport(Box::new(e))
}

/// Why a [`SocketModeApi`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The API base URL is not an `http(s)://` URL.
    #[error("invalid Slack API URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// The HTTP client could not be built (its error, kept opaque, is the source).
    #[error("HTTP client: {0}")]
    Client(#[source] nova_core::BoxError),
}

/// Makes `apps.connections.open` calls for one app.
///
/// ```
/// use nova_core::Secret;
/// use nova_slack::SocketModeApi;
///
/// let api = SocketModeApi::builder(Secret::new("xapp-1-A1-1-abc"))
///     .api_url("http://127.0.0.1:9/api")
///     .build()?;
/// assert_eq!(api.endpoint().as_str(), "http://127.0.0.1:9/api/apps.connections.open");
/// assert!(!format!("{api:?}").contains("xapp-1-A1-1-abc"));
/// # Ok::<(), nova_slack::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SocketModeApi {
    http: reqwest::Client,
    endpoint: Url,
    token: Secret,
}

impl fmt::Debug for SocketModeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketModeApi")
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SocketModeApi`].
#[derive(Debug)]
#[must_use]
pub struct SocketModeApiBuilder {
    token: Secret,
    api_url: String,
    timeout: Duration,
}

impl SocketModeApiBuilder {
    /// The Web API base URL. Default [`DEFAULT_API_URL`]; a local simulator's in tests.
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = url.into();
        self
    }

    /// The time limit of one call. Default [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// When the API URL is not `http(s)://`, or the HTTP client cannot be built.
    pub fn build(self) -> Result<SocketModeApi, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidUrl {
            url: self.api_url.clone(),
            reason,
        };
        let mut base = Url::parse(&self.api_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http:// or https:// URL".to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let endpoint = base
            .join("apps.connections.open")
            .map_err(|e| invalid(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config()?)
            .http1_only()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .build()
            .map_err(|e| ConfigError::Client(Box::new(e)))?;
        Ok(SocketModeApi {
            http,
            endpoint,
            token: self.token,
        })
    }
}

/// rustls with ring and Mozilla's roots, offering HTTP/1.1 only.
fn tls_config() -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The body of an `apps.connections.open` answer.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl SocketModeApi {
    /// A builder for the app-level `token`.
    pub fn builder(token: Secret) -> SocketModeApiBuilder {
        SocketModeApiBuilder {
            token,
            api_url: DEFAULT_API_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client for Slack's API with the app-level `token` and default settings.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(token: Secret) -> Result<Self, ConfigError> {
        Self::builder(token).build()
    }

    /// The URL called: `{api}/apps.connections.open`.
    #[must_use]
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Calls `apps.connections.open`; returns the single-use WebSocket URL.
    ///
    /// # Errors
    /// See [`OpenError`].
    pub async fn open_connection(&self) -> Result<Url, OpenError> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            .map_err(|_| {
            OpenError::InvalidResponse(
                "the token has characters an HTTP header cannot carry".to_owned(),
            )
        })?;
        authorization.set_sensitive(true);
        let mut response = self
            .http
            .post(self.endpoint.clone())
            .header(AUTHORIZATION, authorization)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body("")
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status.as_u16() == 429 {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
                .unwrap_or(DEFAULT_RETRY_AFTER);
            return Err(OpenError::RateLimited { retry_after });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(OpenError::InvalidResponse(format!(
                    "answer larger than {MAX_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer = match serde_json::from_slice(&body) {
            Ok(answer) => answer,
            Err(_) if !status.is_success() => {
                return Err(OpenError::Status {
                    status: status.as_u16(),
                });
            }
            Err(e) => return Err(OpenError::InvalidResponse(format!("not JSON: {e}"))),
        };
        interpret(answer)
    }
}

/// The URL of a successful answer, or the error it names.
fn interpret(answer: Answer) -> Result<Url, OpenError> {
    if !answer.ok {
        return Err(match answer.error.as_deref() {
            Some("invalid_auth") => OpenError::InvalidAuth,
            Some("ratelimited") => OpenError::RateLimited {
                retry_after: DEFAULT_RETRY_AFTER,
            },
            Some(error) => OpenError::Api {
                error: error.to_owned(),
            },
            None => OpenError::InvalidResponse("`ok: false` without an error".to_owned()),
        });
    }
    let url = answer
        .url
        .ok_or_else(|| OpenError::InvalidResponse("`ok: true` without a url".to_owned()))?;
    let url = Url::parse(&url).map_err(|e| OpenError::InvalidResponse(format!("url: {e}")))?;
    if !matches!(url.scheme(), "ws" | "wss") {
        return Err(OpenError::InvalidResponse(format!(
            "url scheme `{}`, expected ws or wss",
            url.scheme()
        )));
    }
    Ok(url)
}

/// `Retry-After` as delay-seconds. (Slack sends seconds; an HTTP date is not parsed and falls
/// back to [`DEFAULT_RETRY_AFTER`].)
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Answer {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn answers() {
        let ok = interpret(answer(
            r#"{"ok": true, "url": "wss:\/\/wss.slack.com\/link\/?ticket=1234-5678"}"#,
        ));
        assert_eq!(
            ok.ok().map(String::from).as_deref(),
            Some("wss://wss.slack.com/link/?ticket=1234-5678")
        );
        assert!(matches!(
            interpret(answer(r#"{"ok":false,"error":"invalid_auth"}"#)),
            Err(OpenError::InvalidAuth)
        ));
        let err = interpret(answer(r#"{"ok":false,"error":"not_authed"}"#));
        assert!(matches!(&err, Err(OpenError::Api { error }) if error == "not_authed"));
        assert!(err.is_err_and(|e| e.is_fatal()));
        let internal = interpret(answer(r#"{"ok":false,"error":"internal_error"}"#));
        assert!(internal.is_err_and(|e| !e.is_fatal()));
        assert_eq!(
            interpret(answer(r#"{"ok":false,"error":"ratelimited"}"#))
                .err()
                .and_then(|e| e.retry_after()),
            Some(DEFAULT_RETRY_AFTER)
        );
        for bad in [
            r#"{"ok":true}"#,
            r#"{"ok":true,"url":"https://example.com"}"#,
            r#"{"ok":true,"url":"not a url"}"#,
            r#"{"ok":false}"#,
        ] {
            assert!(
                matches!(interpret(answer(bad)), Err(OpenError::InvalidResponse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn bad_api_urls() {
        for url in ["ftp://x/api", "not a url", "mailto:a@b"] {
            let built = SocketModeApi::builder(Secret::new("xapp-1"))
                .api_url(url)
                .build();
            assert!(
                matches!(built, Err(ConfigError::InvalidUrl { .. })),
                "{url}"
            );
        }
        let api = SocketModeApi::builder(Secret::new("xapp-1"))
            .api_url("https://slack.com/api/")
            .build();
        assert_eq!(
            api.ok().map(|a| a.endpoint().to_string()).as_deref(),
            Some("https://slack.com/api/apps.connections.open")
        );
        assert!(SocketModeApi::new(Secret::new("xapp-1")).is_ok());
    }
}
