//! Test proxies: an HTTP `CONNECT` proxy and a SOCKS5 proxy on `127.0.0.1:0`.
//!
//! Both accept any number of clients, one task each, so a client that misbehaves (bad request,
//! wrong credentials, stalls) never affects the others. After a successful negotiation they
//! relay bytes both ways with `tokio::io::copy_bidirectional` until either side closes. They
//! only ever connect to loopback targets (`localhost`, `127.0.0.0/8`, `::1`) and refuse
//! anything else, so a test can never reach out of the machine.
//!
//! **HTTP CONNECT** (RFC 9110 §9.3.6): the request head (at most 8 KiB, parsed with httparse)
//! must be `CONNECT host:port HTTP/1.1`. With credentials configured, a missing or wrong
//! `Proxy-Authorization: Basic` gets `407 Proxy Authentication Required`. A non-loopback
//! target gets `403`, an unreachable one `502`, success `200 Connection Established`.
//!
//! **SOCKS5** (RFC 1928 and RFC 1929, written by hand): greeting with the offered methods;
//! the proxy selects "no authentication" (0x00) or, with credentials configured,
//! "username/password" (0x02), else answers 0xFF. The username/password sub-negotiation
//! answers status 0 or 1. Then the `CONNECT` request (other commands get reply 0x07) with an
//! IPv4 (0x01), domain (0x03) or IPv6 (0x04) address; the reply carries the outbound
//! socket's local address. Refused targets get 0x02 (not allowed), unreachable ones 0x05.
//!
//! Dropping a proxy stops it and closes every tunnel it opened.

use std::{
    fmt, io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::Engine as _;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

/// How long a client may take to negotiate a tunnel.
const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest CONNECT request head accepted.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Counters and settings shared by a proxy's tasks.
#[derive(Default)]
struct Shared {
    auth: Option<(String, String)>,
    tunnels: AtomicUsize,
    auth_failures: AtomicUsize,
    targets: Mutex<Vec<String>>,
}

impl Shared {
    fn record_target(&self, target: &str) {
        if let Ok(mut targets) = self.targets.lock() {
            targets.push(target.to_owned());
        }
    }
}

/// The running accept loop, shared by both proxy kinds.
struct Running {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Running {
    async fn start<F, Fut>(auth: Option<(String, String)>, handle: F) -> io::Result<Self>
    where
        F: Fn(TcpStream, Arc<Shared>) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            auth,
            ..Shared::default()
        });
        let loop_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            // Owning the client tasks here means aborting this task closes every tunnel.
            let mut clients = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let fut = handle(stream, Arc::clone(&loop_shared));
                            clients.spawn(async move {
                                if let Err(e) = fut.await {
                                    tracing::debug!(%peer, error = %e, "proxy client ended");
                                }
                            });
                        }
                        Err(e) => {
                            // Typically EMFILE: back off instead of spinning.
                            tracing::warn!(error = %e, "proxy accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                    Some(_) = clients.join_next(), if !clients.is_empty() => {}
                }
            }
        });
        Ok(Self { addr, shared, task })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

macro_rules! proxy_accessors {
    ($name:ident) => {
        impl $name {
            /// The address the proxy listens on (`127.0.0.1:port`).
            pub fn addr(&self) -> SocketAddr {
                self.running.addr
            }

            /// How many tunnels were established so far.
            pub fn tunnels_opened(&self) -> usize {
                self.running.shared.tunnels.load(Ordering::SeqCst)
            }

            /// How many clients were refused for missing or wrong credentials.
            pub fn auth_failures(&self) -> usize {
                self.running.shared.auth_failures.load(Ordering::SeqCst)
            }

            /// Every target requested by an authenticated client, as sent (`host:port`), in
            /// order. A SOCKS5 domain target appears as the name, so a test can check the
            /// client let the proxy resolve it.
            pub fn targets(&self) -> Vec<String> {
                self.running
                    .shared
                    .targets
                    .lock()
                    .map(|t| t.clone())
                    .unwrap_or_default()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("addr", &self.running.addr)
                    .field("auth", &self.running.shared.auth.is_some())
                    .field("tunnels_opened", &self.tunnels_opened())
                    .finish()
            }
        }
    };
}

/// An HTTP `CONNECT` proxy for tests.
pub struct ConnectProxy {
    running: Running,
}

/// A SOCKS5 proxy for tests.
pub struct Socks5Proxy {
    running: Running,
}

proxy_accessors!(ConnectProxy);
proxy_accessors!(Socks5Proxy);

impl ConnectProxy {
    /// Starts the proxy on `127.0.0.1:0`; with `auth = Some((user, password))` it requires
    /// `Proxy-Authorization: Basic` with exactly these credentials.
    pub async fn start(auth: Option<(String, String)>) -> io::Result<Self> {
        let running = Running::start(auth, |stream, shared| async move {
            match tokio::time::timeout(NEGOTIATION_TIMEOUT, connect_negotiate(stream, &shared))
                .await
            {
                Ok(Ok(Some((mut client, mut upstream)))) => {
                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                    Ok(())
                }
                Ok(Ok(None)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "negotiation timed out",
                )),
            }
        })
        .await?;
        Ok(Self { running })
    }
}

impl Socks5Proxy {
    /// Starts the proxy on `127.0.0.1:0`; with `auth = Some((user, password))` it requires
    /// RFC 1929 username/password authentication with exactly these credentials.
    pub async fn start(auth: Option<(String, String)>) -> io::Result<Self> {
        let running = Running::start(auth, |stream, shared| async move {
            match tokio::time::timeout(NEGOTIATION_TIMEOUT, socks5_negotiate(stream, &shared)).await
            {
                Ok(Ok(Some((mut client, mut upstream)))) => {
                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                    Ok(())
                }
                Ok(Ok(None)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "negotiation timed out",
                )),
            }
        })
        .await?;
        Ok(Self { running })
    }
}

/// Where a target host may point.
enum Allowed {
    Yes(IpAddr),
    No,
}

fn check_target(host: &str) -> Allowed {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return Allowed::Yes(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Allowed::Yes(ip),
        _ => Allowed::No,
    }
}

/// Splits `host:port` or `[v6]:port`.
fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    let port = port.parse().ok()?;
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

type Tunnel = (TcpStream, TcpStream);

async fn connect_negotiate(mut client: TcpStream, shared: &Shared) -> io::Result<Option<Tunnel>> {
    // Read the request head.
    let mut buf = Vec::with_capacity(1024);
    let (target, head_len, authorized) = loop {
        let mut chunk = [0u8; 1024];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return respond(&mut client, "431 Request Header Fields Too Large").await;
            }
            Err(_) => return respond(&mut client, "400 Bad Request").await,
            Ok(httparse::Status::Complete(len)) => {
                if request.method != Some("CONNECT") {
                    return respond(&mut client, "405 Method Not Allowed").await;
                }
                let target = request.path.unwrap_or_default().to_owned();
                let authorized = match &shared.auth {
                    None => true,
                    Some((user, pass)) => {
                        let expected = format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD
                                .encode(format!("{user}:{pass}"))
                        );
                        request.headers.iter().any(|h| {
                            h.name.eq_ignore_ascii_case("proxy-authorization")
                                && h.value == expected.as_bytes()
                        })
                    }
                };
                break (target, len, authorized);
            }
        }
    };
    if !authorized {
        shared.auth_failures.fetch_add(1, Ordering::SeqCst);
        client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"nova-testkit\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(None);
    }
    shared.record_target(&target);
    let Some((host, port)) = split_authority(&target) else {
        return respond(&mut client, "400 Bad Request").await;
    };
    let ip = match check_target(host) {
        Allowed::Yes(ip) => ip,
        Allowed::No => return respond(&mut client, "403 Forbidden").await,
    };
    let mut upstream = match TcpStream::connect((ip, port)).await {
        Ok(s) => s,
        Err(_) => return respond(&mut client, "502 Bad Gateway").await,
    };
    client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    // Bytes the client pipelined after its request head belong to the tunnel.
    if let Some(early) = buf.get(head_len..).filter(|rest| !rest.is_empty()) {
        upstream.write_all(early).await?;
    }
    shared.tunnels.fetch_add(1, Ordering::SeqCst);
    Ok(Some((client, upstream)))
}

async fn respond(client: &mut TcpStream, status: &str) -> io::Result<Option<Tunnel>> {
    let response = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    client.write_all(response.as_bytes()).await?;
    Ok(None)
}

// SOCKS5 constants (RFC 1928 / RFC 1929).
const SOCKS_VERSION: u8 = 5;
const METHOD_NONE: u8 = 0x00;
const METHOD_USER_PASS: u8 = 0x02;
const METHOD_UNACCEPTABLE: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
const REPLY_SUCCEEDED: u8 = 0x00;
const REPLY_GENERAL_FAILURE: u8 = 0x01;
const REPLY_NOT_ALLOWED: u8 = 0x02;
const REPLY_CONNECTION_REFUSED: u8 = 0x05;
const REPLY_COMMAND_NOT_SUPPORTED: u8 = 0x07;
const REPLY_ADDRESS_NOT_SUPPORTED: u8 = 0x08;

async fn socks5_negotiate(mut client: TcpStream, shared: &Shared) -> io::Result<Option<Tunnel>> {
    // Greeting: VER NMETHODS METHODS...
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let [version, n_methods] = head;
    if version != SOCKS_VERSION {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not SOCKS5"));
    }
    let mut methods = vec![0u8; usize::from(n_methods)];
    client.read_exact(&mut methods).await?;
    let wanted = if shared.auth.is_some() {
        METHOD_USER_PASS
    } else {
        METHOD_NONE
    };
    if !methods.contains(&wanted) {
        if shared.auth.is_some() {
            shared.auth_failures.fetch_add(1, Ordering::SeqCst);
        }
        client
            .write_all(&[SOCKS_VERSION, METHOD_UNACCEPTABLE])
            .await?;
        return Ok(None);
    }
    client.write_all(&[SOCKS_VERSION, wanted]).await?;

    // Username/password sub-negotiation: VER(1) ULEN UNAME PLEN PASSWD.
    if let Some((user, pass)) = &shared.auth {
        let mut version = [0u8; 1];
        client.read_exact(&mut version).await?;
        let username = read_len_prefixed(&mut client).await?;
        let password = read_len_prefixed(&mut client).await?;
        let ok = version[0] == 1 && username == user.as_bytes() && password == pass.as_bytes();
        client.write_all(&[1, if ok { 0 } else { 1 }]).await?;
        if !ok {
            shared.auth_failures.fetch_add(1, Ordering::SeqCst);
            return Ok(None);
        }
    }

    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let [version, command, _reserved, address_type] = request;
    if version != SOCKS_VERSION {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not SOCKS5"));
    }
    let host = match address_type {
        ATYP_IPV4 => {
            let mut octets = [0u8; 4];
            client.read_exact(&mut octets).await?;
            IpAddr::from(octets).to_string()
        }
        ATYP_IPV6 => {
            let mut octets = [0u8; 16];
            client.read_exact(&mut octets).await?;
            IpAddr::from(octets).to_string()
        }
        ATYP_DOMAIN => {
            let name = read_len_prefixed(&mut client).await?;
            match String::from_utf8(name) {
                Ok(name) => name,
                Err(_) => return socks_reply(&mut client, REPLY_GENERAL_FAILURE).await,
            }
        }
        _ => return socks_reply(&mut client, REPLY_ADDRESS_NOT_SUPPORTED).await,
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let port = u16::from_be_bytes(port);
    if command != CMD_CONNECT {
        return socks_reply(&mut client, REPLY_COMMAND_NOT_SUPPORTED).await;
    }
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    shared.record_target(&target);
    let ip = match check_target(&host) {
        Allowed::Yes(ip) => ip,
        Allowed::No => return socks_reply(&mut client, REPLY_NOT_ALLOWED).await,
    };
    let upstream = match TcpStream::connect((ip, port)).await {
        Ok(s) => s,
        Err(_) => return socks_reply(&mut client, REPLY_CONNECTION_REFUSED).await,
    };
    let bound = upstream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let mut reply = vec![SOCKS_VERSION, REPLY_SUCCEEDED, 0];
    match bound.ip() {
        IpAddr::V4(v4) => {
            reply.push(ATYP_IPV4);
            reply.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            reply.push(ATYP_IPV6);
            reply.extend_from_slice(&v6.octets());
        }
    }
    reply.extend_from_slice(&bound.port().to_be_bytes());
    client.write_all(&reply).await?;
    shared.tunnels.fetch_add(1, Ordering::SeqCst);
    Ok(Some((client, upstream)))
}

async fn read_len_prefixed(client: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 1];
    client.read_exact(&mut len).await?;
    let mut value = vec![0u8; usize::from(len[0])];
    client.read_exact(&mut value).await?;
    Ok(value)
}

/// Sends a failure reply (with an all-zero IPv4 bind address) and ends the negotiation.
async fn socks_reply(client: &mut TcpStream, code: u8) -> io::Result<Option<Tunnel>> {
    client
        .write_all(&[SOCKS_VERSION, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0])
        .await?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(matches!(check_target("localhost"), Allowed::Yes(_)));
        assert!(matches!(check_target("127.0.0.1"), Allowed::Yes(_)));
        assert!(matches!(check_target("[::1]"), Allowed::Yes(_)));
        assert!(matches!(check_target("example.com"), Allowed::No));
        assert!(matches!(check_target("10.0.0.1"), Allowed::No));
    }

    #[test]
    fn splits_authorities() {
        assert_eq!(split_authority("localhost:80"), Some(("localhost", 80)));
        assert_eq!(split_authority("[::1]:443"), Some(("[::1]", 443)));
        assert_eq!(split_authority(":80"), None);
        assert_eq!(split_authority("host"), None);
        assert_eq!(split_authority("host:99999"), None);
    }

    #[tokio::test]
    async fn socks5_refuses_garbage_and_keeps_serving() {
        let proxy = Socks5Proxy::start(None).await;
        let Ok(proxy) = proxy else {
            panic!("proxy did not start")
        };
        for _ in 0..3 {
            if let Ok(mut s) = TcpStream::connect(proxy.addr()).await {
                let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf).await;
                assert!(buf.is_empty());
            }
        }
        assert_eq!(proxy.tunnels_opened(), 0);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await;
        let Ok(listener) = listener else {
            panic!("bind failed")
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let Ok(mut s) = TcpStream::connect(proxy.addr()).await else {
            panic!("connect failed")
        };
        let mut request = vec![5, 1, 0, 5, 1, 0, ATYP_DOMAIN, 9];
        request.extend_from_slice(b"localhost");
        request.extend_from_slice(&port.to_be_bytes());
        assert!(s.write_all(&request).await.is_ok());
        let mut reply = [0u8; 12];
        assert!(s.read_exact(&mut reply).await.is_ok());
        assert_eq!(&reply[..4], &[5, 0, 5, 0]);
        assert_eq!(proxy.tunnels_opened(), 1);
        assert_eq!(proxy.targets(), vec![format!("localhost:{port}")]);
    }
}
