//! A real Ethereum development node for tests: anvil (Foundry), run as a child process.
//!
//! [`Anvil`] starts `anvil` on 127.0.0.1 with a free port, interval mining (a block every
//! `block_time` seconds) and `--state <file>` in a private temporary directory: anvil loads the
//! chain from that file when it starts and writes it back when it exits on SIGTERM. So
//! [`Anvil::restart`] (SIGTERM, wait for the exit, start again on the same port) brings back the
//! same chain, and block numbers continue where they stopped — what a client sees when a real
//! node is restarted under it.
//!
//! Readiness is a JSON-RPC call that succeeds: [`Anvil::start`] polls `eth_blockNumber` over
//! plain HTTP (anvil serves HTTP and WebSocket on one port) until it answers.
//!
//! The binary is looked up in this order: the `NOVA_ANVIL` environment variable, the
//! workspace's `.tools/bin/anvil` (where `scripts/install-anvil.sh` links it), then `anvil` on
//! `PATH`. When none exists, starting fails with [`AnvilError::NotInstalled`], whose message says
//! how to install it: tests that need a node fail loudly instead of passing without one.
//!
//! For tests of `logs` subscriptions, [`Anvil::deploy_tick_emitter`] deploys a tiny hand-assembled
//! contract that emits `Tick(uint256 blockNumber)` on every call, and [`Anvil::spawn_ticker`]
//! calls it once per block from a background task.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The environment variable that names the anvil binary, overriding every other place.
pub const ANVIL_ENV: &str = "NOVA_ANVIL";

/// `keccak256("Tick(uint256)")`: topic 0 of the event [`TICK_EMITTER_INIT_CODE`]'s contract emits.
pub const TICK_TOPIC: &str = "0xb8c95b3cea6303a753d912e243354ef08add1085ed07d34191514ef1001ef9d8";

/// Creation code of the tick emitter: a contract whose every call (any calldata, any value)
/// emits `Tick(uint256 blockNumber)` with the current block number as data.
///
/// Hand-assembled, no compiler involved. The runtime code (43 bytes):
///
/// | bytes | opcode | stack after |
/// |---|---|---|
/// | `43` | NUMBER | `[n]` |
/// | `60 00` | PUSH1 0 | `[n, 0]` |
/// | `52` | MSTORE (memory[0..32] = n) | `[]` |
/// | `7f <32 bytes>` | PUSH32 [`TICK_TOPIC`] | `[topic]` |
/// | `60 20` | PUSH1 32 (size) | `[topic, 32]` |
/// | `60 00` | PUSH1 0 (offset) | `[topic, 32, 0]` |
/// | `a1` | LOG1(offset 0, size 32, topic) | `[]` |
/// | `00` | STOP | |
///
/// The creation code (11 bytes) in front of it copies the runtime code to memory and returns it:
/// `60 2b` PUSH1 43 (size), `80` DUP1, `60 0b` PUSH1 11 (where the runtime code starts),
/// `60 00` PUSH1 0 (memory destination), `39` CODECOPY, `60 00` PUSH1 0, `f3` RETURN(0, 43).
pub const TICK_EMITTER_INIT_CODE: &str = concat!(
    "0x",
    // creation code
    "602b80600b6000396000f3",
    // runtime code
    "43600052",
    "7fb8c95b3cea6303a753d912e243354ef08add1085ed07d34191514ef1001ef9d8",
    "60206000a100",
);

/// How long [`Anvil::start`] waits for the node to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Anvil::stop`] waits for anvil to write its state and exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Time budget of one JSON-RPC call over HTTP.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest HTTP response read (a block with its transactions is far smaller).
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// What can go wrong running anvil.
///
/// `Debug` prints the same text as `Display`, so a test's `.expect("start anvil")` shows how
/// to install anvil rather than a bare variant name.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum AnvilError {
    /// No anvil binary was found.
    #[error(
        "anvil (Foundry's Ethereum dev node) is not installed; looked at: {looked}. \
         Install it with `bash scripts/install-anvil.sh` from the workspace root (npm package \
         @foundry-rs/anvil, into .tools/), or set {ANVIL_ENV} to an anvil binary"
    )]
    NotInstalled {
        /// The places looked at.
        looked: String,
    },
    /// The process could not be started.
    #[error("could not run anvil at {}: {source}", binary.display())]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// anvil exited on its own while it should be running.
    #[error("anvil exited with {status}; the end of its log ({}):\n{tail}", log.display())]
    Exited {
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// anvil did not answer in time.
    #[error("anvil on 127.0.0.1:{port} did not answer within {waited:?}: {last}")]
    NotReady {
        /// The port.
        port: u16,
        /// How long it was given.
        waited: Duration,
        /// The last error seen.
        last: String,
    },
    /// anvil is not running (stopped, or never started).
    #[error("anvil is not running")]
    NotRunning,
    /// A JSON-RPC call returned an error object.
    #[error("{method} failed: JSON-RPC error {code}: {message}")]
    Rpc {
        /// The method called.
        method: String,
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// A JSON-RPC call got an answer that is not a JSON-RPC response.
    #[error("{method}: unexpected answer: {detail}")]
    Protocol {
        /// The method called.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// A local I/O error (temporary directory, socket, process).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl fmt::Debug for AnvilError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Options for [`Anvil`]; see [`Anvil::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct AnvilBuilder {
    block_time: u64,
    binary: Option<PathBuf>,
    args: Vec<String>,
}

impl AnvilBuilder {
    /// Seconds between blocks (interval mining); default 1.
    pub fn block_time(mut self, seconds: u64) -> Self {
        self.block_time = seconds.max(1);
        self
    }

    /// Uses this binary instead of looking one up.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.binary = Some(path.into());
        self
    }

    /// An extra command-line argument for anvil, on every start.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts anvil and waits until it answers.
    ///
    /// # Errors
    /// [`AnvilError::NotInstalled`] without a binary; otherwise when it does not start or answer.
    pub async fn spawn(self) -> Result<Anvil, AnvilError> {
        let binary = match self.binary {
            Some(binary) => binary,
            None => Anvil::binary()?,
        };
        let port = free_port()?;
        let dir = unique_temp_dir()?;
        let mut anvil = Anvil {
            binary,
            port,
            dir,
            block_time: self.block_time,
            args: self.args,
            child: None,
            starts: 0,
        };
        anvil.start().await?;
        Ok(anvil)
    }
}

/// A running anvil node on 127.0.0.1 whose chain survives restarts.
///
/// ```no_run
/// # async fn run() -> Result<(), nova_testkit::AnvilError> {
/// use nova_testkit::Anvil;
///
/// let mut node = Anvil::builder().block_time(1).spawn().await?;
/// let before = node.block_number().await?;
/// node.restart().await?; // same port, same chain
/// assert!(node.block_number().await? >= before);
/// println!("connect to {}", node.ws_url());
/// # Ok(()) }
/// ```
///
/// Dropping it kills the process and removes its temporary directory.
pub struct Anvil {
    binary: PathBuf,
    port: u16,
    dir: TempDir,
    block_time: u64,
    args: Vec<String>,
    child: Option<Child>,
    starts: u32,
}

impl fmt::Debug for Anvil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anvil")
            .field("binary", &self.binary)
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("running", &self.child.is_some())
            .field("starts", &self.starts)
            .finish()
    }
}

impl Anvil {
    /// Options: block time 1 s, binary looked up as the module docs say.
    pub fn builder() -> AnvilBuilder {
        AnvilBuilder {
            block_time: 1,
            binary: None,
            args: Vec::new(),
        }
    }

    /// Starts anvil with a block every second; the same as `Anvil::builder().spawn()`.
    ///
    /// # Errors
    /// As [`AnvilBuilder::spawn`].
    pub async fn spawn() -> Result<Self, AnvilError> {
        Self::builder().spawn().await
    }

    /// The anvil binary: `$NOVA_ANVIL`, the workspace's `.tools/bin/anvil`, or `anvil` on `PATH`.
    ///
    /// # Errors
    /// [`AnvilError::NotInstalled`], with a message saying how to install it.
    pub fn binary() -> Result<PathBuf, AnvilError> {
        let mut looked = Vec::new();
        if let Some(path) = std::env::var_os(ANVIL_ENV) {
            let path = PathBuf::from(path);
            if path.is_file() {
                return Ok(path);
            }
            looked.push(format!("${ANVIL_ENV}={}", path.display()));
        }
        let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/anvil");
        if local.is_file() {
            return Ok(local);
        }
        looked.push(local.display().to_string());
        if let Some(paths) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&paths) {
                let candidate = dir.join("anvil");
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        looked.push("anvil on PATH".to_owned());
        Err(AnvilError::NotInstalled {
            looked: looked.join(", "),
        })
    }

    /// The port anvil listens on (HTTP and WebSocket), the same across restarts.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WebSocket URL, `ws://127.0.0.1:<port>`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// The HTTP URL, `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The state file anvil loads on start and writes on exit.
    #[must_use]
    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// anvil's stdout and stderr, appended across restarts.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("anvil.log")
    }

    /// Whether the process runs (it was started and not stopped).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How many times the process was started (1 after [`AnvilBuilder::spawn`]).
    #[must_use]
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Starts the process (when stopped) on the same port with the saved state, and waits until
    /// it answers.
    ///
    /// # Errors
    /// When it cannot be started, exits, or does not answer within 30 s.
    pub async fn start(&mut self) -> Result<(), AnvilError> {
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
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--block-time")
            .arg(self.block_time.to_string())
            .arg("--state")
            .arg(self.state_path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = command.spawn().map_err(|source| AnvilError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        self.child = Some(child);
        self.starts += 1;
        match self.wait_ready().await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill();
                Err(e)
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), AnvilError> {
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < READY_TIMEOUT {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => return Err(AnvilError::NotRunning),
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(self.exited(status.to_string()));
            }
            match self.rpc("eth_blockNumber", json!([])).await {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(AnvilError::NotReady {
            port: self.port,
            waited: READY_TIMEOUT,
            last,
        })
    }

    fn exited(&self, status: String) -> AnvilError {
        let log = self.log_path();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        AnvilError::Exited { status, log, tail }
    }

    /// Stops the process gracefully: SIGTERM, then waits until anvil has written its state and
    /// exited (SIGKILL after 15 s). The port stays reserved for [`Anvil::start`].
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub async fn stop(&mut self) -> Result<(), AnvilError> {
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

    /// Stops the node gracefully and starts it again on the same port with the same chain.
    ///
    /// # Errors
    /// As [`Anvil::stop`] and [`Anvil::start`].
    pub async fn restart(&mut self) -> Result<(), AnvilError> {
        self.stop().await?;
        self.start().await
    }

    /// Stops the node, keeps it down for `down`, then starts it again with the same chain.
    ///
    /// # Errors
    /// As [`Anvil::restart`].
    pub async fn restart_after(&mut self, down: Duration) -> Result<(), AnvilError> {
        self.stop().await?;
        tokio::time::sleep(down).await;
        self.start().await
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One JSON-RPC call over HTTP; returns the `result` member.
    ///
    /// # Errors
    /// [`AnvilError::Rpc`] for a JSON-RPC error; I/O and protocol errors otherwise.
    pub async fn rpc(&self, method: &str, params: Value) -> Result<Value, AnvilError> {
        rpc_call(self.port, method, params).await
    }

    /// The current block number (`eth_blockNumber`).
    ///
    /// # Errors
    /// As [`Anvil::rpc`].
    pub async fn block_number(&self) -> Result<u64, AnvilError> {
        let value = self.rpc("eth_blockNumber", json!([])).await?;
        quantity("eth_blockNumber", &value)
    }

    /// The node's unlocked dev accounts (`eth_accounts`).
    ///
    /// # Errors
    /// As [`Anvil::rpc`].
    pub async fn accounts(&self) -> Result<Vec<String>, AnvilError> {
        let value = self.rpc("eth_accounts", json!([])).await?;
        serde_json::from_value(value).map_err(|e| AnvilError::Protocol {
            method: "eth_accounts".to_owned(),
            detail: e.to_string(),
        })
    }

    /// Sends a transaction from an unlocked account (`eth_sendTransaction`) and waits for its
    /// receipt (at most 30 s).
    ///
    /// # Errors
    /// As [`Anvil::rpc`], or [`AnvilError::NotReady`] when no receipt came in time.
    pub async fn send_and_wait(&self, tx: Value) -> Result<Value, AnvilError> {
        let hash = self.rpc("eth_sendTransaction", json!([tx])).await?;
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            let receipt = self
                .rpc("eth_getTransactionReceipt", json!([hash.clone()]))
                .await?;
            if !receipt.is_null() {
                return Ok(receipt);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(AnvilError::NotReady {
            port: self.port,
            waited: READY_TIMEOUT,
            last: format!("no receipt for {hash}"),
        })
    }

    /// Deploys the [tick emitter](TICK_EMITTER_INIT_CODE) from the first dev account and returns
    /// its address (lower-case hex).
    ///
    /// # Errors
    /// As [`Anvil::send_and_wait`], or when the receipt has no contract address.
    pub async fn deploy_tick_emitter(&self) -> Result<String, AnvilError> {
        let accounts = self.accounts().await?;
        let from = accounts.first().ok_or_else(|| AnvilError::Protocol {
            method: "eth_accounts".to_owned(),
            detail: "no dev account".to_owned(),
        })?;
        let receipt = self
            .send_and_wait(json!({ "from": from, "data": TICK_EMITTER_INIT_CODE }))
            .await?;
        match receipt.get("contractAddress").and_then(Value::as_str) {
            Some(address) if receipt.get("status").and_then(Value::as_str) == Some("0x1") => {
                Ok(address.to_ascii_lowercase())
            }
            _ => Err(AnvilError::Protocol {
                method: "eth_sendTransaction".to_owned(),
                detail: format!("deployment failed: {receipt}"),
            }),
        }
    }

    /// Starts a background task that calls `contract` once per block (it polls the block number
    /// every 200 ms and sends a transaction from the second dev account when it changed). Errors,
    /// such as the node being down during a restart, are counted and retried on the next poll.
    /// The task ends when the returned [`Ticker`] is dropped.
    #[must_use]
    pub fn spawn_ticker(&self, contract: &str) -> Ticker {
        let port = self.port;
        let contract = contract.to_owned();
        let sent = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (sent_task, failed_task) = (Arc::clone(&sent), Arc::clone(&failed));
        let task = tokio::spawn(async move {
            let mut from: Option<String> = None;
            let mut last_block: Option<u64> = None;
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let result = async {
                    if from.is_none() {
                        let accounts = rpc_call(port, "eth_accounts", json!([])).await?;
                        from = accounts.get(1).and_then(Value::as_str).map(str::to_owned);
                    }
                    let block = quantity(
                        "eth_blockNumber",
                        &rpc_call(port, "eth_blockNumber", json!([])).await?,
                    )?;
                    if last_block == Some(block) {
                        return Ok::<bool, AnvilError>(false);
                    }
                    let tx = json!({ "from": from, "to": contract, "data": "0x" });
                    rpc_call(port, "eth_sendTransaction", json!([tx])).await?;
                    last_block = Some(block);
                    Ok(true)
                }
                .await;
                match result {
                    Ok(true) => {
                        sent_task.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(false) => {}
                    Err(_) => {
                        failed_task.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Ticker { task, sent, failed }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.kill(); // then `dir` removes itself
    }
}

/// The background task of [`Anvil::spawn_ticker`]; dropping it stops the task.
#[derive(Debug)]
pub struct Ticker {
    task: JoinHandle<()>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Ticker {
    /// Transactions sent so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Attempts that failed (node down, for instance).
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A hex quantity (`"0x1a"`) as a number.
fn quantity(method: &str, value: &Value) -> Result<u64, AnvilError> {
    value
        .as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| AnvilError::Protocol {
            method: method.to_owned(),
            detail: format!("not a hex quantity: {value}"),
        })
}

/// A free TCP port on 127.0.0.1 (bound, then released for anvil to take).
fn free_port() -> Result<u16, AnvilError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A fresh, writable directory for anvil's state and log, removed when the node is dropped.
fn unique_temp_dir() -> Result<TempDir, AnvilError> {
    let dir = tempfile::Builder::new().prefix("nova-anvil-").tempdir()?;
    // Probe that the directory is writable before anvil needs it.
    drop(File::create(dir.path().join("anvil.log"))?);
    Ok(dir)
}

/// One JSON-RPC 2.0 call over HTTP/1.1 to 127.0.0.1:`port` (`Connection: close`).
async fn rpc_call(port: u16, method: &str, params: Value) -> Result<Value, AnvilError> {
    let protocol = |detail: String| AnvilError::Protocol {
        method: method.to_owned(),
        detail,
    };
    let body = nova_core::jsonrpc::Request::new(1, method, params).to_json();
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE as u64)
            .read_to_end(&mut response)
            .await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(RPC_TIMEOUT, exchange)
        .await
        .map_err(|_| protocol(format!("no answer within {RPC_TIMEOUT:?}")))??;

    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(&response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(protocol("truncated HTTP response".into())),
        Err(e) => return Err(protocol(format!("bad HTTP response: {e}"))),
    };
    let chunked = parsed.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value)
                .to_ascii_lowercase()
                .contains("chunked")
    });
    let raw = &response[head_len..];
    let body = if chunked {
        dechunk(raw).ok_or_else(|| protocol("bad chunked body".into()))?
    } else {
        raw.to_vec()
    };
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        protocol(format!(
            "HTTP {:?}, body not JSON ({e}): {}",
            parsed.code,
            String::from_utf8_lossy(&body)
        ))
    })?;
    if let Some(error) = value.get("error") {
        return Err(AnvilError::Rpc {
            method: method.to_owned(),
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    value
        .get("result")
        .cloned()
        .ok_or_else(|| protocol(format!("no result: {value}")))
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_decodes_chunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert_eq!(dechunk(b"5\r\nab"), None);
    }

    #[test]
    fn init_code_lengths_match_the_listing() {
        let hex = TICK_EMITTER_INIT_CODE.trim_start_matches("0x");
        assert_eq!(hex.len() % 2, 0);
        // 11 bytes of creation code, 43 of runtime code (0x2b, as the PUSH1 says).
        assert_eq!(hex.len() / 2, 11 + 43);
        assert!(hex.contains(TICK_TOPIC.trim_start_matches("0x")));
    }
}
