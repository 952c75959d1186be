//! A private Redis server for tests: `redis-server` run as a child process.
//!
//! [`RedisServer`] starts `redis-server` on 127.0.0.1 with a free port, no persistence (no RDB
//! snapshots, no append-only file: `--save "" --appendonly no`) and its working directory and
//! log in a private temporary directory. So a restart brings back an *empty* server on the same
//! port — what clients see when a cache-only Redis is restarted under them, or comes back after
//! a network cut having lost its data.
//!
//! - [`RedisServer::stop`] shuts it down gracefully (SIGTERM) and waits for the exit;
//! - [`RedisServer::kill`] kills it (SIGKILL), as a crash would;
//! - [`RedisServer::start`] starts it again on the same port; [`RedisServer::restart`] does both.
//!
//! Readiness is a `PING` answered `+PONG` over a plain TCP connection, polled until it comes.
//!
//! The binary is `$NOVA_REDIS_SERVER` when set, else `redis-server` on `PATH` (Debian's package
//! `redis-server`; `scripts/test.sh` installs it when missing). Without one, starting fails with
//! [`RedisError::NotInstalled`], whose message says how to install it: tests that need Redis fail
//! loudly instead of passing without one.
//!
//! ```no_run
//! # async fn run() -> Result<(), nova_testkit::redis::RedisError> {
//! use nova_testkit::redis::RedisServer;
//!
//! let mut redis = RedisServer::start_new().await?;
//! println!("connect to {}", redis.url());
//! redis.stop().await?; // clients now get connection errors
//! redis.start().await?; // same port, empty data set
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The environment variable that names the `redis-server` binary, overriding `PATH`.
pub const REDIS_SERVER_ENV: &str = "NOVA_REDIS_SERVER";

/// How long [`RedisServer::start`] waits for a `PONG`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long [`RedisServer::stop`] waits for the exit after SIGTERM before killing.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong running `redis-server`.
///
/// `Debug` prints the same text as `Display`, so a test's `.expect("start redis")` shows how to
/// install Redis rather than a bare variant name.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// No `redis-server` binary was found.
    #[error(
        "redis-server is not installed (looked at {looked}); install Debian's package with \
         `apt-get install -y redis-server` (scripts/test.sh does), or set {REDIS_SERVER_ENV}"
    )]
    NotInstalled {
        /// The places looked at.
        looked: String,
    },
    /// The process could not be started.
    #[error("could not run {}: {source}", binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server exited on its own while it should be running.
    #[error("redis-server exited with {status}; the end of its log:\n{tail}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The last lines of its log.
        tail: String,
    },
    /// The server did not answer `PING` in time.
    #[error("redis-server on 127.0.0.1:{port} did not answer PING within {waited:?}: {last}")]
    NotReady {
        /// The port.
        port: u16,
        /// How long it was given.
        waited: Duration,
        /// The last error seen.
        last: String,
    },
    /// A local I/O error (temporary directory, socket, process).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl fmt::Debug for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A private `redis-server` on 127.0.0.1 without persistence. Dropping it kills the process
/// and removes its temporary directory.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: TempDir,
    child: Option<Child>,
    starts: u32,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("binary", &self.binary)
            .field("port", &self.port)
            .field("running", &self.child.is_some())
            .field("starts", &self.starts)
            .finish()
    }
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Errors
    /// [`RedisError::NotInstalled`] without a binary; otherwise when it does not start or answer.
    pub async fn start_new() -> Result<Self, RedisError> {
        let binary = Self::binary()?;
        let port = free_port()?;
        let dir = unique_temp_dir()?;
        let mut server = Self {
            binary,
            port,
            dir,
            child: None,
            starts: 0,
        };
        server.start().await?;
        Ok(server)
    }

    /// The `redis-server` binary: `$NOVA_REDIS_SERVER`, else `redis-server` on `PATH`.
    ///
    /// # Errors
    /// [`RedisError::NotInstalled`], with a message saying how to install it.
    pub fn binary() -> Result<PathBuf, RedisError> {
        let mut looked = Vec::new();
        if let Some(path) = std::env::var_os(REDIS_SERVER_ENV) {
            let path = PathBuf::from(path);
            if path.is_file() {
                return Ok(path);
            }
            looked.push(format!("${REDIS_SERVER_ENV}={}", path.display()));
        }
        if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let candidate = dir.join("redis-server");
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        looked.push("redis-server on PATH".to_owned());
        Err(RedisError::NotInstalled {
            looked: looked.join(", "),
        })
    }

    /// The port, the same across restarts.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL to connect to: `redis://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether the process runs (started and not stopped or killed).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How many times the process was started (1 after [`start_new`](Self::start_new)).
    #[must_use]
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Starts the process (when not running) on the same port, with an empty data set, and
    /// waits until it answers `PING`.
    ///
    /// # Errors
    /// When it cannot be started, exits, or does not answer within 20 s.
    pub async fn start(&mut self) -> Result<(), RedisError> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let log_err = log.try_clone()?;
        let mut command = Command::new(&self.binary);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--daemonize")
            .arg("no")
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = command.spawn().map_err(|source| RedisError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        self.child = Some(child);
        self.starts += 1;
        match self.wait_ready().await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill_now();
                Err(e)
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), RedisError> {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < READY_TIMEOUT {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(RedisError::Exited {
                        status: status.to_string(),
                        tail: self.log_tail(),
                    });
                }
            }
            match ping(self.port).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(RedisError::NotReady {
            port: self.port,
            waited: READY_TIMEOUT,
            last,
        })
    }

    /// Stops the server gracefully (SIGTERM; SIGKILL after 10 s) and waits for the exit. The
    /// data set is lost (no persistence); the port stays reserved for [`start`](Self::start).
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub async fn stop(&mut self) -> Result<(), RedisError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Err(e) = kill_process(Pid::from_child(&child), Signal::TERM) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::from(e).into());
        }
        let started = Instant::now();
        loop {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            if started.elapsed() > STOP_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        self.kill_now();
    }

    /// Stops the server gracefully and starts it again on the same port, empty.
    ///
    /// # Errors
    /// As [`stop`](Self::stop) and [`start`](Self::start).
    pub async fn restart(&mut self) -> Result<(), RedisError> {
        self.stop().await?;
        self.start().await
    }

    /// The server's log file (appended across restarts).
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill_now(); // then `dir` removes itself
    }
}

/// `PING` over a fresh TCP connection; `Ok` on `+PONG`.
async fn ping(port: u16) -> std::io::Result<()> {
    let attempt = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 64];
        let n = tcp.read(&mut buf).await?;
        if buf[..n].starts_with(b"+PONG") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "unexpected answer {:?}",
                String::from_utf8_lossy(&buf[..n])
            )))
        }
    };
    match tokio::time::timeout(Duration::from_secs(1), attempt).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::other("PING timed out")),
    }
}

/// A port free on 127.0.0.1 right now (bound to port 0, then released).
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A fresh directory for the server's log, removed when the server is dropped.
fn unique_temp_dir() -> std::io::Result<TempDir> {
    tempfile::Builder::new().prefix("nova-redis-").tempdir()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_stops_and_restarts_on_the_same_port() {
        let mut redis = RedisServer::start_new().await.unwrap();
        let port = redis.port();
        ping(port).await.unwrap();
        redis.stop().await.unwrap();
        assert!(ping(port).await.is_err());
        redis.start().await.unwrap();
        assert_eq!(redis.port(), port);
        ping(port).await.unwrap();
        redis.kill();
        assert!(ping(port).await.is_err());
        redis.restart().await.unwrap();
        assert_eq!(redis.starts(), 3);
    }
}
