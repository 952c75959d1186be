//! Secrets audited (issue 18 item 6): every platform's authentication runs against its
//! simulator — Deribit (`client_credentials`, `client_signature`, a token refresh), Bybit's
//! private auth, Discord's identify (and gateway discovery), Slack's app-level token through
//! `apps.connections.open`, HTTP CONNECT and SOCKS5 proxies with credentials, a client
//! certificate — plus each one refused with a wrong secret, with a `tracing` subscriber at TRACE
//! (and `log` records bridged into it) writing everything to a buffer. Then the `Debug` of every
//! config, client, adapter, error, event and state involved is added to that text, and the test
//! fails if any secret's text appears anywhere in it: API secrets, tokens, passwords (and their
//! Basic encoding), the client's private key, the access and refresh tokens the Deribit
//! simulator issues, and (in the logs) Slack's single-use connection tickets.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use nova_core::testing::TestContext;
use nova_core::{
    AuthHandler, AuthRequest, Client, ClientConfig, ClientIdentity, DefaultHandler, LifecycleEvent,
    Message, ProxyConfig, RequestId, Secret, Settings, TlsConfig, TransportConfig,
};
use nova_testkit::{ConnectProxy, ServerOptions, Socks5Proxy, TestCa, TestServer};
use tokio::sync::broadcast;
use tracing_subscriber::fmt::MakeWriter;

const WAIT: Duration = Duration::from_secs(20);

const DERIBIT_ID: &str = "audit-deribit-client";
const DERIBIT_SECRET: &str = "AUDIT-deribit-secret-7Qx2";
const DERIBIT_WRONG: &str = "AUDIT-deribit-wrong-secret-9Zk4";
const BYBIT_KEY: &str = "AUDIT-bybit-api-key-3Fh8";
const BYBIT_SECRET: &str = "AUDIT-bybit-api-secret-5Lm1";
const BYBIT_WRONG: &str = "AUDIT-bybit-wrong-secret-2Rt6";
const DISCORD_TOKEN: &str = "AUDIT-discord-bot-token-8Pw3";
const DISCORD_WRONG: &str = "AUDIT-discord-wrong-token-4Yd7";
const SLACK_TOKEN: &str = "xapp-1-AUDIT-slack-app-token-6Nc5";
const SLACK_WRONG: &str = "xapp-1-AUDIT-slack-wrong-token-1Bv9";
const PROXY_USER: &str = "audit-proxy-user";
const PROXY_PASS: &str = "AUDIT-proxy-password-0Gs2";
const PROXY_WRONG: &str = "AUDIT-proxy-wrong-password-3Hq8";
const SETTINGS_SECRET: &str = "AUDIT-settings-secret-6Jt4";
const REFRESH_TOKEN: &str = "AUDIT-refresh-token-in-the-adapter-2Kp9";

/// Everything written by the subscriber.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What the test looked at besides the logs: one `Debug` (or `Display`) per line.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn debug(&mut self, what: &str, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{what}: {value:?}"));
    }

    fn display(&mut self, what: &str, value: &dyn std::fmt::Display) {
        self.0.push(format!("{what}: {value}"));
    }
}

/// Lifecycle events seen so far.
fn drain(events: &mut broadcast::Receiver<LifecycleEvent>, seen: &mut Seen) {
    while let Ok(e) = events.try_recv() {
        seen.debug("event", &e);
    }
}

/// Lifecycle events until the client has reported an authentication error (each one looked
/// at), so that everything the refusal logs has been logged.
async fn until_auth_error(events: &mut broadcast::Receiver<LifecycleEvent>, seen: &mut Seen) {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(e) => {
                    seen.debug("event", &e);
                    if matches!(e, LifecycleEvent::Error { source: "auth", .. }) {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no authentication error reported");
}

/// Where `text` holds something shaped like a token of the Deribit simulator
/// (`{ms}.A…` or `{ms}.R…`, then `.` and 48 hex digits).
fn simulator_token(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, window) in bytes.windows(49).enumerate() {
        if window[0] == b'.'
            && window[1..]
                .iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            let next = bytes.get(i + 49);
            if next.is_none_or(|b| !b.is_ascii_hexdigit()) {
                let start = i.saturating_sub(24);
                return Some(
                    String::from_utf8_lossy(&bytes[start..(i + 49).min(bytes.len())]).into_owned(),
                );
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_or_debug_output() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(capture.clone())
        .try_init()
        .expect("the only subscriber of this test binary");
    let mut seen = Seen::default();

    // --- Deribit: client_credentials, client_signature, a refresh, a wrong secret.
    {
        use nova_deribit::{Credentials, DeribitAdapter, DeribitClient, DeribitConfig, Grant};
        use nova_testkit::deribit::{DeribitSim, DeribitSimOptions};
        let sim = DeribitSim::start_with(
            DeribitSimOptions::default()
                .with_client(DERIBIT_ID, DERIBIT_SECRET)
                .with_token_lifetime(Duration::from_secs(2)),
        )
        .await
        .unwrap();
        let handle = sim.handle();
        for grant in [Grant::ClientCredentials, Grant::ClientSignature] {
            let config = DeribitConfig::default()
                .credentials(Credentials::new(DERIBIT_ID, DERIBIT_SECRET))
                .grant(grant);
            seen.debug("DeribitConfig", &config);
            seen.debug(
                "ClientConfig",
                &DeribitClient::config_builder(sim.url(), &config)
                    .build()
                    .unwrap(),
            );
            let before = handle.counters();
            let (deribit, _messages) = DeribitClient::connect(sim.url(), config).unwrap();
            let mut events = deribit.client().events();
            let positions = deribit.get_positions("BTC", None).await;
            seen.debug("positions", &positions);
            // The token lives two seconds: wait for a refresh on this connection.
            assert!(
                handle
                    .wait_for(WAIT, |c| c.refreshes > before.refreshes)
                    .await,
                "no refresh with {grant:?}"
            );
            seen.debug("DeribitClient", &deribit);
            seen.debug("state", &deribit.client().current_state());
            drain(&mut events, &mut seen);
            deribit.close().await.unwrap();
        }
        let wrong =
            DeribitConfig::default().credentials(Credentials::new(DERIBIT_ID, DERIBIT_WRONG));
        let (deribit, _messages) = DeribitClient::connect(sim.url(), wrong).unwrap();
        let mut events = deribit.client().events();
        let refused = deribit.get_positions("BTC", None).await;
        assert!(refused.is_err(), "a wrong secret was accepted");
        seen.debug("refused", &refused);
        if let Err(e) = &refused {
            seen.display("refused", e);
        }
        until_auth_error(&mut events, &mut seen).await;
        drain(&mut events, &mut seen);
        seen.debug("state", &deribit.client().current_state());
        let _ = deribit.close().await;

        // The adapter holding a token: its Debug.
        let mut adapter = DeribitAdapter::new(
            DeribitConfig::default().credentials(Credentials::new(DERIBIT_ID, DERIBIT_SECRET)),
        );
        let mut t = TestContext::new();
        let request = t.run(|ctx| {
            adapter.generate_auth_data(&AuthRequest::new(RequestId::Num(1), false), ctx)
        });
        seen.debug("auth request id", &request.as_ref().map(|m| m.is_some()));
        let answer = Message::text(format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"access_token":"{REFRESH_TOKEN}-access","expires_in":900,"refresh_token":"{REFRESH_TOKEN}","scope":"connection","token_type":"bearer"}}}}"#
        ));
        let outcome = t.run(|ctx| adapter.handle_auth_response(&answer, ctx));
        seen.debug("outcome", &outcome);
        seen.debug("DeribitAdapter", &adapter);
        seen.debug("TestContext", &t);
        sim.shutdown().await;
    }

    // --- Bybit: private auth, and a wrong secret.
    {
        use nova_bybit::{BybitAdapter, BybitClient, BybitConfig, Credentials, Endpoint};
        use nova_testkit::bybit::{BybitSim, BybitSimOptions, Endpoint as SimEndpoint};
        let sim =
            BybitSim::start_with(BybitSimOptions::default().with_account(BYBIT_KEY, BYBIT_SECRET))
                .await
                .unwrap();
        let handle = sim.handle();
        let url = handle.endpoint_url(SimEndpoint::Private);
        for (secret, ok) in [(BYBIT_SECRET, true), (BYBIT_WRONG, false)] {
            let config = BybitConfig::new(Endpoint::Private)
                .credentials(Credentials::new(BYBIT_KEY, secret));
            seen.debug("BybitConfig", &config);
            let client_config = BybitClient::config_builder(&url, &config)
                .backoff(Duration::from_millis(50), Duration::from_millis(200))
                .build()
                .unwrap();
            seen.debug("ClientConfig", &client_config);
            seen.debug("BybitAdapter", &BybitAdapter::new(config.clone()));
            let (bybit, _messages) =
                BybitClient::connect_with(client_config, BybitAdapter::new(config));
            let mut events = bybit.inner().events();
            if ok {
                assert!(handle.wait_for(WAIT, |c| c.auths >= 1).await, "bybit auth");
                let sub = bybit.subscribe(nova_bybit::Topic::parse("order")).await;
                seen.debug("subscribe", &sub.map(drop));
            } else {
                assert!(
                    handle.wait_for(WAIT, |c| c.auth_failures >= 1).await,
                    "bybit refusal"
                );
                until_auth_error(&mut events, &mut seen).await;
            }
            drain(&mut events, &mut seen);
            seen.debug("BybitClient", &bybit);
            seen.debug("state", &bybit.inner().current_state());
            let _ = bybit.close().await;
        }
        sim.shutdown().await;
    }

    // --- Discord: discovery and identify with the bot token, and a wrong token.
    {
        use nova_discord::{Discord, DiscordConfig, Discovery, Intents};
        use nova_testkit::discord::{DiscordSim, DiscordSimOptions};
        let sim = DiscordSim::start_with(DiscordSimOptions::default().with_token(DISCORD_TOKEN))
            .await
            .unwrap();
        let discovery = Discovery::new(sim.api_url()).unwrap();
        seen.debug("Discovery", &discovery);
        for token in [DISCORD_TOKEN, DISCORD_WRONG] {
            let answer = discovery.gateway_bot(&Secret::new(token)).await;
            seen.debug("gateway_bot", &answer);
            if let Err(e) = &answer {
                seen.display("gateway_bot", e);
            }
            let config = DiscordConfig::new(Secret::new(token), sim.gateway_url(), Intents::GUILDS);
            seen.debug("DiscordConfig", &config);
            let client_config = ClientConfig::builder(config.connect_url())
                .backoff(Duration::from_millis(50), Duration::from_millis(200))
                .build()
                .unwrap();
            let adapter = Discord::new(config);
            seen.debug("Discord", &adapter);
            let (client, _messages) = Client::connect(client_config, adapter);
            let mut events = client.events();
            if token == DISCORD_TOKEN {
                assert!(
                    sim.wait_for(WAIT, |c| c.identifies >= 1).await,
                    "discord identify"
                );
                client.wait_connected(WAIT).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            } else {
                let stopped = tokio::time::timeout(WAIT, client.stopped()).await;
                seen.debug("stopped", &stopped);
            }
            drain(&mut events, &mut seen);
            seen.debug("Client", &client);
            seen.debug("state", &client.current_state());
            let _ = client.close(1000, "done").await;
        }
        sim.shutdown().await;
    }

    // --- Slack: the app-level token through apps.connections.open, and a wrong one.
    {
        use nova_slack::{AckOnly, SlackOptions, SocketModeApi};
        use nova_testkit::slack::{SlackSim, SlackSimOptions};
        let sim = SlackSim::start_with(SlackSimOptions::default().with_app_token(SLACK_TOKEN))
            .await
            .unwrap();
        for token in [SLACK_TOKEN, SLACK_WRONG] {
            let api = SocketModeApi::builder(Secret::new(token))
                .api_url(sim.api_url())
                .build()
                .unwrap();
            seen.debug("SocketModeApi", &api);
            let opened = api.open_connection().await;
            seen.debug("open_connection", &opened.as_ref().map(|_| "a ticket URL"));
            if let Err(e) = &opened {
                seen.debug("open error", e);
                seen.display("open error", e);
            }
            let config = nova_slack::config(api)
                .backoff(Duration::from_millis(50), Duration::from_millis(200))
                .build()
                .unwrap();
            seen.debug("ClientConfig", &config);
            let (client, _messages) = nova_slack::connect(config, AckOnly, SlackOptions::default());
            let mut events = client.events();
            if token == SLACK_TOKEN {
                client.wait_connected(WAIT).await.unwrap();
                assert!(
                    sim.wait_for(WAIT, |c| c.connections >= 1).await,
                    "slack connection"
                );
            } else {
                let stopped = tokio::time::timeout(WAIT, client.stopped()).await;
                seen.debug("stopped", &stopped);
            }
            drain(&mut events, &mut seen);
            seen.debug("Client", &client);
            seen.debug("state", &client.current_state());
            let _ = client.close(1000, "done").await;
        }
        sim.shutdown().await;
    }

    // --- Proxies with credentials (right and wrong), and a client certificate.
    {
        let server = TestServer::start().await.unwrap();
        let http = ConnectProxy::start(Some((PROXY_USER.to_owned(), PROXY_PASS.to_owned())))
            .await
            .unwrap();
        let socks = Socks5Proxy::start(Some((PROXY_USER.to_owned(), PROXY_PASS.to_owned())))
            .await
            .unwrap();
        for (proxy, password) in [
            (
                ProxyConfig::http_connect(http.addr().to_string()),
                PROXY_PASS,
            ),
            (
                ProxyConfig::http_connect(http.addr().to_string()),
                PROXY_WRONG,
            ),
            (ProxyConfig::socks5(socks.addr().to_string()), PROXY_PASS),
            (ProxyConfig::socks5(socks.addr().to_string()), PROXY_WRONG),
            (
                ProxyConfig::parse(&format!("http://{PROXY_USER}:{PROXY_PASS}@{}", http.addr()))
                    .unwrap(),
                PROXY_PASS,
            ),
        ] {
            let proxy = if proxy.auth().is_some() {
                proxy
            } else {
                proxy.with_auth(PROXY_USER, password)
            };
            seen.debug("ProxyConfig", &proxy);
            seen.debug("ProxyAuth", &proxy.auth());
            let transport = TransportConfig::default().with_proxy(proxy.clone());
            seen.debug("TransportConfig", &transport);
            let direct = nova_core::connect(&server.url(), &transport).await;
            seen.debug("connect", &direct.as_ref().map(|_| "connected"));
            if let Err(e) = &direct {
                seen.debug("connect error", e);
                seen.display("connect error", e);
            }
            let config = ClientConfig::builder(server.url())
                .proxy(proxy)
                .backoff(Duration::from_millis(50), Duration::from_millis(200))
                .max_reconnect_attempts(Some(1))
                .build()
                .unwrap();
            seen.debug("ClientConfig", &config);
            let (client, _messages) = Client::connect(config, DefaultHandler);
            let mut events = client.events();
            if password == PROXY_PASS {
                client.wait_connected(WAIT).await.unwrap();
            } else {
                let stopped = tokio::time::timeout(WAIT, client.stopped()).await;
                seen.debug("stopped", &stopped);
            }
            drain(&mut events, &mut seen);
            seen.debug("Client", &client);
            seen.debug("state", &client.current_state());
            let _ = client.close(1000, "done").await;
        }

        let ca = TestCa::new();
        let tls_server = TestServer::start_with(
            ServerOptions::default()
                .with_tls_config(ca.server_config_requiring_client_auth(&["localhost"])),
        )
        .await
        .unwrap();
        let (cert, key) = ca.issue_client_identity("audit-client");
        let identity = ClientIdentity::from_pem(cert, key.clone());
        seen.debug("ClientIdentity", &identity);
        let tls = TlsConfig::default()
            .with_extra_ca_pem(ca.ca_pem())
            .with_client_identity(identity);
        seen.debug("TlsConfig", &tls);
        let config = ClientConfig::builder(tls_server.url())
            .tls(tls)
            .build()
            .unwrap();
        seen.debug("ClientConfig", &config);
        let (client, mut messages) = Client::connect(config, DefaultHandler);
        let mut events = client.events();
        client.wait_connected(WAIT).await.unwrap();
        client
            .send_text("through a client certificate")
            .await
            .unwrap();
        let echoed = tokio::time::timeout(WAIT, messages.recv()).await.unwrap();
        seen.debug("echo", &echoed);
        drain(&mut events, &mut seen);
        seen.debug("Client", &client);
        let _ = client.close(1000, "done").await;

        // Settings holding credentials.
        let settings = Settings::from_toml(
            &format!("[platforms.deribit]\napi_secret = \"{SETTINGS_SECRET}\"\napi_key = {{ env = \"AUDIT_KEY\" }}\n"),
            "audit.toml",
            |k| (k == "AUDIT_KEY").then(|| SETTINGS_SECRET.to_owned()),
        )
        .unwrap();
        seen.debug("Settings", &settings);

        // The secrets and what is derived from them.
        let basic = |pass: &str| {
            base64::engine::general_purpose::STANDARD.encode(format!("{PROXY_USER}:{pass}"))
        };
        let key_body: Vec<String> = key
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_owned)
            .collect();
        assert!(!key_body.is_empty());
        let mut secrets: Vec<String> = [
            DERIBIT_SECRET,
            DERIBIT_WRONG,
            BYBIT_KEY,
            BYBIT_SECRET,
            BYBIT_WRONG,
            DISCORD_TOKEN,
            DISCORD_WRONG,
            SLACK_TOKEN,
            SLACK_WRONG,
            PROXY_PASS,
            PROXY_WRONG,
            SETTINGS_SECRET,
            REFRESH_TOKEN,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        secrets.push(basic(PROXY_PASS));
        secrets.push(basic(PROXY_WRONG));
        secrets.extend(key_body);

        tls_server.shutdown().await;
        server.shutdown().await;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
        assert!(
            logs.contains("TRACE"),
            "the subscriber captured nothing at TRACE"
        );
        let debug = seen.0.join("\n");
        let mut leaks = Vec::new();
        for secret in &secrets {
            for (where_, text) in [("logs", &logs), ("Debug/Display", &debug)] {
                if let Some(at) = text.find(secret.as_str()) {
                    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                    leaks.push(format!(
                        "{secret:?} in {where_}: {}",
                        &text[line_start..line_end]
                    ));
                }
            }
        }
        // Slack's WebSocket URLs carry a single-use ticket: URLs are logged without their query.
        if let Some(at) = logs.find("ticket=") {
            leaks.push(format!(
                "a Slack ticket in logs: …{}",
                &logs[at..(at + 60).min(logs.len())]
            ));
        }
        for (where_, text) in [("logs", &logs), ("Debug/Display", &debug)] {
            if let Some(token) = simulator_token(text) {
                leaks.push(format!("a Deribit token in {where_}: …{token}"));
            }
        }
        assert!(
            leaks.is_empty(),
            "secrets leaked ({} places):\n{}",
            leaks.len(),
            leaks.join("\n")
        );
        // The audit looked at something: each platform's traffic is in the logs.
        for needle in [
            "deribit authenticated",
            "bybit authenticated",
            "gateway session ready",
            "hello",
        ] {
            assert!(logs.contains(needle), "no {needle:?} in the logs");
        }
    }
}
