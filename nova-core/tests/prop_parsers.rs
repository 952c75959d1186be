//! Property tests of nova-core's parsers of data from outside: the `Retry-After` of a refused
//! handshake (served by the test kit's server, over a real socket), the replies of an HTTP
//! `CONNECT` or SOCKS5 proxy (a hostile proxy on loopback), and settings files
//! ([`Settings::from_toml`], against a model of the documented format and environment rules).
//!
//! Inputs: `Retry-After` as delay-seconds at the limits, HTTP-dates of every year the format
//! allows, both mutated, and arbitrary header text; proxy replies well-formed, cut short,
//! mutated, oversized or arbitrary; settings as arbitrary text, as generated documents of every
//! value type, and as a valid file mutated. Property: no panic, a typed error, and the value the
//! input calls for.
//!
//! Cases per property: 1,000 by default (500 for proxies; each one a connection over loopback);
//! `NOVA_PROPTEST_CASES=N` runs N.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nova_core::{ConfigError, ProxyConfig, Settings, TransportConfig, TransportError, connect};
use nova_testkit::TestServer;
use nova_testkit::hostile::strategy::config;
use nova_testkit::hostile::{mutate, mutate_bytes};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Retry-After

/// The last second an IMF-fixdate can name (9999-12-31 23:59:59).
const LAST_DATE: u64 = 253_402_300_799;

/// `secs` since the epoch as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), by the civil
/// calendar (the inverse of what the parser computes, written independently).
fn imf_fixdate(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap();
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday =
        ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][usize::try_from(days % 7).unwrap()];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][usize::try_from(month - 1).unwrap()];
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A `Retry-After` value, and what it must parse to (`None`: no delay; the seconds of a date
/// are checked against the clock separately).
#[derive(Clone, Debug)]
enum RetryAfter {
    Seconds(String, u64),
    Date(String, u64),
    /// Anything else: no panic, and a delay no later than the last date there is.
    Other(String),
}

impl RetryAfter {
    fn text(&self) -> &str {
        match self {
            RetryAfter::Seconds(t, _) | RetryAfter::Date(t, _) | RetryAfter::Other(t) => t,
        }
    }
}

/// Only what an HTTP header value may hold (visible ASCII and spaces).
fn header_safe(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect()
}

fn retry_after() -> impl Strategy<Value = RetryAfter> {
    let limits = prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u64::from(u32::MAX) + 1),
        any::<u64>(),
        0u64..100_000,
    ];
    let dates = prop_oneof![
        0..=LAST_DATE,
        Just(0),
        Just(LAST_DATE),
        Just(951_782_400),
        Just(4_107_542_400)
    ];
    prop_oneof![
        (limits, " {0,3}", " {0,3}").prop_map(|(n, a, b)| RetryAfter::Seconds(format!("{a}{n}{b}"), n)),
        dates.clone().prop_map(|t| RetryAfter::Date(imf_fixdate(t), t)),
        (dates, proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(t, b)| {
            let bad = mutate_bytes(imf_fixdate(t).as_bytes(), &b);
            RetryAfter::Other(header_safe(&String::from_utf8_lossy(&bad)))
        }),
        prop_oneof![
            "[ -~]{0,40}",
            "-[0-9]{1,5}",
            "[0-9]{20,30}",
            "[0-9]+\\.[0-9]+",
            "(Mon|Foo), [0-9]{1,3} (Jan|Feb|Xyz) [0-9]{1,5} [0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3} (GMT|UTC)",
        ]
        .prop_map(|s| RetryAfter::Other(header_safe(&s))),
    ]
}

/// A handshake refused with any `Retry-After`: a `HandshakeRejected` with the status, and the
/// delay the value calls for (delay-seconds, or the time until the date, zero once past).
#[test]
fn retry_after_of_a_refused_handshake() {
    let rt = runtime();
    let server = rt.block_on(TestServer::start()).unwrap();
    let transport = TransportConfig::default();
    let mut runner = TestRunner::new(config(1_000));
    runner
        .run(
            &(
                retry_after(),
                prop_oneof![Just(429u16), Just(503), 400u16..600],
            ),
            |(value, status)| {
                server.refuse_next_handshakes(
                    1,
                    status,
                    vec![("retry-after".to_owned(), value.text().to_owned())],
                );
                let before = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let result = rt.block_on(connect(&server.url(), &transport));
                let after = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let error = match result {
                    Ok(_) => return Err(TestCaseError::fail("a refused handshake connected")),
                    Err(e) => e,
                };
                let TransportError::HandshakeRejected {
                    status: got,
                    retry_after,
                    ..
                } = &error
                else {
                    return Err(TestCaseError::fail(format!(
                        "not HandshakeRejected: {error:?}"
                    )));
                };
                prop_assert_eq!(*got, status);
                prop_assert_eq!(error.retry_after(), *retry_after);
                prop_assert!(!error.to_string().is_empty());
                match value {
                    RetryAfter::Seconds(_, n) => {
                        prop_assert_eq!(*retry_after, Some(Duration::from_secs(n)))
                    }
                    RetryAfter::Date(_, t) => {
                        let Some(delay) = retry_after else {
                            return Err(TestCaseError::fail(format!(
                                "date {} not read",
                                value.text()
                            )));
                        };
                        let secs = delay.as_secs();
                        prop_assert!(
                            // Whole seconds on both sides: the delay is truncated, so it may be
                            // one less than the bound taken after the answer.
                            t.saturating_sub(after).saturating_sub(1) <= secs
                                && secs <= t.saturating_sub(before),
                            "{}: {secs} s, expected {} s",
                            value.text(),
                            t.saturating_sub(before)
                        );
                    }
                    RetryAfter::Other(text) => {
                        if let Some(delay) = retry_after {
                            let as_number = text.trim().parse::<u64>().ok();
                            prop_assert!(
                                as_number == Some(delay.as_secs())
                                    || delay.as_secs() <= (LAST_DATE + 1).saturating_sub(before),
                                "{text:?} read as {delay:?}"
                            );
                        }
                    }
                }
                Ok(())
            },
        )
        .unwrap();
    rt.block_on(server.shutdown());
}

// ---------------------------------------------------------------------------------------------
// Proxy replies

/// What a reply to `CONNECT` calls for, read by the same rules the client follows.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// A whole head, refusing the tunnel with this status.
    Refused(u16),
    /// A whole 2xx head: the tunnel is open (the handshake through it then fails, the fake proxy
    /// having closed), or, when bytes follow the head in the same read, refused as unexpected.
    Open(u16),
    /// A head cut short, or malformed: no status.
    Broken,
    /// Too large to say which (the 8 KiB cap meets the read boundaries).
    Unknown,
}

fn verdict(reply: &[u8]) -> Verdict {
    if reply.len() > 7 * 1024 {
        return Verdict::Unknown;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(reply) {
        Ok(httparse::Status::Complete(_)) => {
            let status = response.code.unwrap_or(0);
            if (200..300).contains(&status) {
                Verdict::Open(status)
            } else {
                Verdict::Refused(status)
            }
        }
        Ok(httparse::Status::Partial) | Err(_) => Verdict::Broken,
    }
}

fn connect_reply() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![
        Just(200u16),
        Just(204),
        Just(299),
        Just(301),
        Just(403),
        Just(407),
        Just(502),
        Just(100),
        Just(999),
        100u16..1000,
    ];
    let header = (
        prop_oneof![
            Just("Proxy-Agent".to_owned()),
            Just("Content-Length".to_owned()),
            "[A-Za-z-]{1,12}"
        ],
        prop_oneof!["[ -~]{0,20}", (1usize..9000).prop_map(|n| "v".repeat(n))],
    );
    let head = (
        prop_oneof![
            Just("HTTP/1.1"),
            Just("HTTP/1.0"),
            Just("HTTP/2"),
            Just("ICY")
        ],
        status,
        prop_oneof![
            Just("Connection established".to_owned()),
            Just(String::new()),
            "[ -~]{0,20}"
        ],
        proptest::collection::vec(header, 0..4),
        prop_oneof![Just("\r\n"), Just("\n")],
        prop_oneof![4 => Just(Vec::new()), 1 => proptest::collection::vec(any::<u8>(), 1..20)],
    )
        .prop_map(|(version, status, reason, headers, eol, extra)| {
            let mut text = format!("{version} {status} {reason}{eol}");
            for (name, value) in headers {
                text.push_str(&format!("{name}: {value}{eol}"));
            }
            text.push_str(eol);
            let mut bytes = text.into_bytes();
            bytes.extend(extra);
            bytes
        });
    prop_oneof![
        3 => head.clone(),
        2 => (head, proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(h, b)| mutate_bytes(&h, &b)),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        1 => Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        1 => Just(Vec::new()),
    ]
}

/// A fake proxy that answers the next client with `reply`, then closes.
async fn serve_reply(listener: &TcpListener, reply: &[u8], socks: bool) {
    let Ok((mut socket, _)) = listener.accept().await else {
        return;
    };
    let mut buf = vec![0u8; 4096];
    if socks {
        // The greeting: version, count, methods.
        let _ = socket.read(&mut buf).await;
    } else {
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    }
    let _ = socket.write_all(reply).await;
    let _ = socket.shutdown().await;
    // Drain what the client sends next (a handshake through a tunnel it thinks open) so that
    // the close is an orderly one.
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf)).await;
}

/// Whatever an HTTP proxy answers to `CONNECT`, the connect fails with the typed error the
/// answer calls for, never a panic and never a connection.
#[test]
fn http_connect_replies_map_to_typed_errors() {
    let rt = runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut runner = TestRunner::new(config(500));
    runner
        .run(&(connect_reply(), any::<bool>()), |(reply, auth)| {
            let mut proxy = ProxyConfig::http_connect(addr.clone());
            if auth {
                proxy = proxy.with_auth("user", "pass");
            }
            let transport = TransportConfig::default()
                .with_proxy(proxy)
                .with_connect_timeout(Duration::from_secs(20));
            let (result, ()) = rt.block_on(async {
                tokio::join!(
                    connect("ws://target.invalid:80/", &transport),
                    serve_reply(&listener, &reply, false)
                )
            });
            let Err(error) = result else {
                return Err(TestCaseError::fail("connected through a fake proxy"));
            };
            prop_assert!(!error.to_string().is_empty());
            let proxy_status = match &error {
                TransportError::Proxy { status, .. } => Some(*status),
                _ => None,
            };
            match verdict(&reply) {
                Verdict::Refused(status) => {
                    prop_assert_eq!(proxy_status, Some(Some(status)), "{:?}", error)
                }
                Verdict::Broken => prop_assert_eq!(proxy_status, Some(None), "{:?}", error),
                Verdict::Open(status) => prop_assert!(
                    proxy_status == Some(Some(status))
                        || matches!(error.kind(), "handshake" | "io"),
                    "{:?}",
                    error
                ),
                Verdict::Unknown => prop_assert!(
                    matches!(error.kind(), "proxy" | "handshake" | "io"),
                    "{:?}",
                    error
                ),
            }
            Ok(())
        })
        .unwrap();
}

/// Whatever a SOCKS5 proxy answers, the connect fails with a typed error.
#[test]
fn socks5_replies_map_to_typed_errors() {
    let rt = runtime();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let valid: Vec<u8> = vec![5, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 80];
    let reply = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..32),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(move |b| mutate_bytes(&valid, &b)),
        Just(vec![5, 0xFF]),
        Just(vec![5, 2, 1, 1]),
        Just(vec![5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
        Just(vec![5, 0, 5, 0, 0, 3, 255]),
    ];
    let mut runner = TestRunner::new(config(500));
    runner
        .run(&(reply, any::<bool>()), |(reply, auth)| {
            let mut proxy = ProxyConfig::socks5(addr.clone());
            if auth {
                proxy = proxy.with_auth("user", "pass");
            }
            let transport = TransportConfig::default()
                .with_proxy(proxy)
                .with_connect_timeout(Duration::from_secs(20));
            let (result, ()) = rt.block_on(async {
                tokio::join!(
                    connect("ws://target.invalid:80/", &transport),
                    serve_reply(&listener, &reply, true)
                )
            });
            let Err(error) = result else {
                return Err(TestCaseError::fail("connected through a fake proxy"));
            };
            prop_assert!(!error.to_string().is_empty());
            prop_assert!(
                matches!(error.kind(), "proxy" | "handshake" | "io"),
                "{:?}",
                error
            );
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Settings files

/// A value in a generated settings document.
#[derive(Clone, Debug)]
enum Val {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    Array(Vec<Val>),
    /// `{ env = "NAME" }`
    EnvRef(String),
    /// Another inline table.
    Table(BTreeMap<String, Val>),
}

impl Val {
    fn to_toml(&self) -> toml::Value {
        match self {
            Val::Int(i) => toml::Value::Integer(*i),
            Val::Float(f) => toml::Value::Float(*f),
            Val::Str(s) => toml::Value::String(s.clone()),
            Val::Bool(b) => toml::Value::Boolean(*b),
            Val::Array(items) => toml::Value::Array(items.iter().map(Val::to_toml).collect()),
            Val::EnvRef(name) => {
                let mut t = toml::Table::new();
                t.insert("env".to_owned(), toml::Value::String(name.clone()));
                toml::Value::Table(t)
            }
            Val::Table(map) => {
                toml::Value::Table(map.iter().map(|(k, v)| (k.clone(), v.to_toml())).collect())
            }
        }
    }
}

const ENV_NAMES: &[&str] = &[
    "NOVA_DEFAULT_RECONNECT_DELAY",
    "NOVA_MAX_RECONNECT_DELAY",
    "NOVA_MAX_RECONNECT_ATTEMPTS",
    "NOVA_CONNECTION_TIMEOUT",
    "DERIBIT_API_KEY",
    "DERIBIT_API_SECRET",
    "BYBIT_V5_API_KEY",
    "MY_SECRET",
];
const TOP_KEYS: &[&str] = &[
    "default_reconnect_delay",
    "max_reconnect_delay",
    "max_reconnect_attempts",
    "connection_timeout",
    "max_reconect_attempts",
];
const PLATFORM_NAMES: &[&str] = &["deribit", "bybit-v5", "x", "Ünï", "a b"];
const PLATFORM_KEYS: &[&str] = &["endpoint", "api_key", "api_secret", "currency", "testnet"];

fn val() -> impl Strategy<Value = Val> {
    let leaf = prop_oneof![
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(i64::MAX),
            Just(i64::MIN),
            Just(i64::from(u32::MAX)),
            Just(i64::from(u32::MAX) + 1),
            any::<i64>(),
            0i64..100_000
        ]
        .prop_map(Val::Int),
        prop_oneof![
            Just(1.0f64),
            Just(-0.5),
            Just(1e300),
            Just(f64::NAN),
            Just(f64::INFINITY)
        ]
        .prop_map(Val::Float),
        prop_oneof![
            "[ -~]{0,12}",
            Just("wss://www.deribit.com/ws/api/v2".to_owned()),
            any::<String>()
        ]
        .prop_map(Val::Str),
        any::<bool>().prop_map(Val::Bool),
        proptest::sample::select(ENV_NAMES).prop_map(|n| Val::EnvRef(n.to_owned())),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Val::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..3).prop_map(Val::Table),
        ]
    })
}

/// A generated settings document and environment.
#[derive(Clone, Debug)]
struct Doc {
    top: BTreeMap<String, Val>,
    platforms: Option<BTreeMap<String, BTreeMap<String, Val>>>,
    env: BTreeMap<String, String>,
}

fn doc() -> impl Strategy<Value = Doc> {
    let env_value = prop_oneof![
        (0u64..100_000).prop_map(|n| n.to_string()),
        Just(" 42 ".to_owned()),
        Just("-1".to_owned()),
        Just("abc".to_owned()),
        Just(String::new()),
        Just("4294967296".to_owned()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_owned()),
    ];
    (
        proptest::collection::btree_map(
            proptest::sample::select(TOP_KEYS).prop_map(str::to_owned),
            val(),
            0..4,
        ),
        proptest::option::of(proptest::collection::btree_map(
            proptest::sample::select(PLATFORM_NAMES).prop_map(str::to_owned),
            proptest::collection::btree_map(
                proptest::sample::select(PLATFORM_KEYS).prop_map(str::to_owned),
                val(),
                0..4,
            ),
            0..3,
        )),
        proptest::collection::btree_map(
            proptest::sample::select(ENV_NAMES).prop_map(str::to_owned),
            env_value,
            0..4,
        ),
    )
        .prop_map(|(top, platforms, env)| Doc {
            top,
            platforms,
            env,
        })
}

impl Doc {
    fn text(&self) -> Option<String> {
        let mut table = toml::Table::new();
        for (k, v) in &self.top {
            table.insert(k.clone(), v.to_toml());
        }
        if let Some(platforms) = &self.platforms {
            let mut p = toml::Table::new();
            for (name, keys) in platforms {
                p.insert(
                    name.clone(),
                    toml::Value::Table(
                        keys.iter().map(|(k, v)| (k.clone(), v.to_toml())).collect(),
                    ),
                );
            }
            table.insert("platforms".to_owned(), toml::Value::Table(p));
        }
        toml::to_string(&table).ok()
    }

    /// What `Settings::from_toml` must make of it: the settings, or an error.
    fn expected(&self) -> Option<Expected> {
        let ms = |key: &str| -> Result<Option<u64>, ()> {
            match self.top.get(key) {
                None => Ok(None),
                Some(Val::Int(i)) => u64::try_from(*i).map(Some).map_err(drop),
                Some(_) => Err(()),
            }
        };
        if self.top.contains_key("max_reconect_attempts") {
            return None;
        }
        let mut e = Expected {
            default_reconnect_delay: ms("default_reconnect_delay").ok()?,
            max_reconnect_delay: ms("max_reconnect_delay").ok()?,
            max_reconnect_attempts: match ms("max_reconnect_attempts").ok()? {
                Some(n) => Some(u32::try_from(n).ok()?),
                None => None,
            },
            connection_timeout: ms("connection_timeout").ok()?,
            platforms: BTreeMap::new(),
        };
        for (name, keys) in self.platforms.iter().flatten() {
            let endpoint = match keys.get("endpoint") {
                None => None,
                Some(Val::Str(s)) => Some(s.clone()),
                Some(_) => return None,
            };
            let upper = name.to_ascii_uppercase().replace('-', "_");
            let secret = |key: &str, default_env: String| -> Option<Option<String>> {
                match keys.get(key) {
                    None => Some(self.env.get(&default_env).cloned()),
                    Some(Val::Str(s)) => Some(Some(s.clone())),
                    Some(Val::EnvRef(n)) => Some(Some(self.env.get(n)?.clone())),
                    Some(Val::Table(t)) => match t.get("env") {
                        Some(Val::Str(n)) => Some(Some(self.env.get(n)?.clone())),
                        _ => None,
                    },
                    Some(_) => None,
                }
            };
            let api_key = secret("api_key", format!("{upper}_API_KEY"))?;
            let api_secret = secret("api_secret", format!("{upper}_API_SECRET"))?;
            e.platforms
                .insert(name.clone(), (endpoint, api_key, api_secret));
        }
        let number = |name: &str| -> Result<Option<u64>, ()> {
            self.env
                .get(name)
                .map(|v| v.trim().parse::<u64>().map_err(drop))
                .transpose()
        };
        if let Some(v) = number("NOVA_DEFAULT_RECONNECT_DELAY").ok()? {
            e.default_reconnect_delay = Some(v);
        }
        if let Some(v) = number("NOVA_MAX_RECONNECT_DELAY").ok()? {
            e.max_reconnect_delay = Some(v);
        }
        if let Some(v) = number("NOVA_MAX_RECONNECT_ATTEMPTS").ok()? {
            e.max_reconnect_attempts = Some(u32::try_from(v).ok()?);
        }
        if let Some(v) = number("NOVA_CONNECTION_TIMEOUT").ok()? {
            e.connection_timeout = Some(v);
        }
        Some(e)
    }
}

/// A platform section as read: endpoint, api_key, api_secret.
type Platform = (Option<String>, Option<String>, Option<String>);

#[derive(Debug, PartialEq)]
struct Expected {
    default_reconnect_delay: Option<u64>,
    max_reconnect_delay: Option<u64>,
    max_reconnect_attempts: Option<u32>,
    connection_timeout: Option<u64>,
    platforms: BTreeMap<String, Platform>,
}

fn observed(s: &Settings) -> Expected {
    let ms = |d: Option<Duration>| d.map(|d| u64::try_from(d.as_millis()).unwrap());
    Expected {
        default_reconnect_delay: ms(s.default_reconnect_delay),
        max_reconnect_delay: ms(s.max_reconnect_delay),
        max_reconnect_attempts: s.max_reconnect_attempts,
        connection_timeout: ms(s.connection_timeout),
        platforms: s
            .platforms
            .iter()
            .map(|(name, p)| {
                let expose =
                    |s: &Option<nova_core::Secret>| s.as_ref().map(|s| s.expose().to_owned());
                (
                    name.clone(),
                    (
                        p.endpoint.clone(),
                        expose(&p.api_key),
                        expose(&p.api_secret),
                    ),
                )
            })
            .collect(),
    }
}

const VALID_SETTINGS: &str = r#"
default_reconnect_delay = 1000
max_reconnect_delay = 30000
max_reconnect_attempts = 10
connection_timeout = 10000

[platforms.deribit]
endpoint = "wss://www.deribit.com/ws/api/v2"
api_key = { env = "DERIBIT_API_KEY" }
api_secret = "literal"
currency = "BTC"
"#;

proptest! {
    #![proptest_config(config(1_000))]

    /// Generated documents of every value type, with any environment: exactly the settings the
    /// format and the environment rules call for, or an error.
    #[test]
    fn settings_follow_the_model(doc in doc()) {
        let Some(text) = doc.text() else {
            return Ok(());
        };
        let env = |k: &str| doc.env.get(k).cloned();
        match (Settings::from_toml(&text, "gen.toml", env), doc.expected()) {
            (Ok(settings), Some(expected)) => prop_assert_eq!(observed(&settings), expected, "{}", text),
            (Err(e), None) => prop_assert!(matches!(e, ConfigError::Parse { .. } | ConfigError::Env { .. }), "{e:?}"),
            (Ok(settings), None) => prop_assert!(false, "accepted {text} as {settings:?}"),
            (Err(e), Some(expected)) => prop_assert!(false, "refused {text}: {e}; expected {expected:?}"),
        }
    }

    /// Arbitrary text, and a valid file mutated: settings or a typed error, never a panic; a
    /// `Debug` of the result never shows a secret.
    #[test]
    fn settings_files_never_panic(
        text in prop_oneof![any::<String>(), "[a-z_=\\[\\]{}\". 0-9\n]{0,80}"],
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let env = |k: &str| (k == "DERIBIT_API_KEY").then(|| "env-secret-value".to_owned());
        if let Err(e) = Settings::from_toml(&text, "any.toml", env) {
            prop_assert!(!e.to_string().is_empty());
        }
        let valid: toml::Table = toml::from_str(VALID_SETTINGS).unwrap();
        let json = serde_json::to_value(&valid).unwrap();
        let mutated = mutate(&json, &bytes, &["default_reconnect_delay", "platforms", "deribit", "api_key", "env", "endpoint"]);
        let toml_text = toml::Value::try_from(&mutated).ok().and_then(|v| toml::to_string(&v).ok());
        let byte_mutated = String::from_utf8(mutate_bytes(VALID_SETTINGS.as_bytes(), &bytes)).ok();
        for text in toml_text.into_iter().chain(byte_mutated) {
            match Settings::from_toml(&text, "mutated.toml", env) {
                Ok(settings) => {
                    let debug = format!("{settings:?}");
                    for p in settings.platforms.values() {
                        for secret in [&p.api_key, &p.api_secret].into_iter().flatten() {
                            // The planted secrets (a mutation may make any other text a secret).
                            let value = secret.expose();
                            if ["env-secret-value", "literal"].contains(&value) {
                                prop_assert!(!debug.contains(value), "{value:?} in {debug}");
                            }
                        }
                    }
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}
