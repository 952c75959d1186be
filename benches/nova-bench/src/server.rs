//! The servers of the benchmarks, kept off the measured client's threads.
//!
//! - [`ServerThread`]: a dedicated OS thread running its own single-threaded tokio runtime, on
//!   which test-kit servers ([`JsonRpcServer`]) are started and driven. The client under
//!   measurement runs on a different runtime, so the server never runs on its worker threads
//!   (on a 2-core machine the two still share the CPUs, as a venue and a client would not).
//! - [`serve_idle`]: a minimal WebSocket server for the memory scenario, run in a child process
//!   (`nova-bench serve-idle`), so its memory is not counted in the client's RSS and its file
//!   descriptors do not count against the client's limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use nova_testkit::{
    Frame, JsonRpcServer, Responder, ServerConnection, ServerOptions, SimOptions, TestServer,
};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::BoxError;
use crate::payload::{IdOffsets, flood_chunk};

/// A thread with its own tokio runtime for servers.
pub(crate) struct ServerThread {
    handle: Handle,
    /// The OS thread id of the server thread (for its CPU time).
    tid: Option<u32>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerThread {
    /// Starts the thread and its current-thread runtime.
    pub(crate) fn start() -> Result<Self, BoxError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bench-server".to_owned())
            .spawn(move || {
                let _ = tid_tx.send(crate::limits::thread_id());
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        let tid = tid_rx.recv().ok().flatten();
        Ok(Self {
            handle,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// CPU ticks the process has used outside the server thread.
    pub(crate) fn client_cpu_ticks(&self) -> u64 {
        let server = self.tid.map_or(0, |t| crate::limits::cpu_ticks(Some(t)));
        crate::limits::cpu_ticks(None).saturating_sub(server)
    }

    /// Runs `future` on the server thread and waits for its result.
    pub(crate) async fn run<F>(&self, future: F) -> Result<F::Output, BoxError>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Ok(self.handle.spawn(future).await?)
    }

    /// Starts a JSON-RPC simulator (recording off) on the server thread.
    pub(crate) async fn json_rpc(&self) -> Result<Arc<JsonRpcServer>, BoxError> {
        let options =
            SimOptions::default().with_server(ServerOptions::default().with_recording(false));
        let server = self.run(JsonRpcServer::start_with(options)).await??;
        Ok(Arc::new(server))
    }

    /// Starts a server of nova-gen's `generic` kind (Bybit's shape) on the server thread: it
    /// acknowledges every `{"op": ..., "req_id": ...}` request with `success: true` and
    /// otherwise only reads (recording off). The flood is written with [`Self::flood`].
    pub(crate) async fn generic(&self) -> Result<Arc<TestServer>, BoxError> {
        let responder: Responder = Arc::new(|_connection, frame: &Frame| {
            let Some(text) = frame.as_text() else {
                return Vec::new();
            };
            let Ok(request) = serde_json::from_str::<serde_json::Value>(text) else {
                return Vec::new();
            };
            let (Some(op), Some(req_id)) = (request["op"].as_str(), request["req_id"].as_str())
            else {
                return Vec::new();
            };
            let ack = serde_json::json!({
                "success": true, "ret_msg": "", "conn_id": "bench", "req_id": req_id, "op": op,
            });
            vec![Frame::Text(ack.to_string())]
        });
        let options = ServerOptions::default()
            .with_recording(false)
            .with_echo(false)
            .with_responder(responder);
        let server = self.run(TestServer::start_with(options)).await??;
        Ok(Arc::new(server))
    }

    /// Spawns a pump on the server thread that writes `count` notifications on `channel`
    /// (each written by `encode`) to the connection as raw frames, chunk by chunk (each write
    /// waits for TCP backpressure).
    pub(crate) fn flood(
        &self,
        conn: ServerConnection,
        channel: &str,
        encode: fn(&str, u64) -> String,
        count: u64,
    ) -> tokio::task::JoinHandle<()> {
        let (mut chunk, frame_len) = flood_chunk(channel, encode);
        let offsets = IdOffsets::find(&chunk);
        let per_chunk = (chunk.len() / frame_len) as u64;
        self.handle.spawn(async move {
            let mut sent = 0;
            while sent < count {
                let n = (count - sent).min(per_chunk);
                if let Some(offsets) = offsets.filter(|_| sent > 0) {
                    // Change ids continue across chunks: a book stays one continuous sequence.
                    offsets.renumber(&mut chunk, frame_len, sent);
                }
                let bytes = usize::try_from(n).map_or(chunk.len(), |n| n * frame_len);
                conn.send_raw(chunk[..bytes].to_vec()).await;
                sent += n;
            }
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits for the server's next accepted connection (its handshake done), up to 10 s.
pub(crate) async fn next_connection(server: &JsonRpcServer) -> Result<ServerConnection, BoxError> {
    next_connection_of(server.server()).await
}

/// [`next_connection`] of a plain test server.
pub(crate) async fn next_connection_of(server: &TestServer) -> Result<ServerConnection, BoxError> {
    server
        .next_connection_timeout(Duration::from_secs(10))
        .await
        .ok_or_else(|| "the server saw no connection within 10 s".into())
}

/// The idle server of the memory scenario: listens on `addr`, completes WebSocket handshakes
/// and then only reads (answering pings), until the process is killed. Prints `READY <addr>`
/// on stdout once listening.
pub(crate) async fn serve_idle(addr: SocketAddr) -> Result<(), BoxError> {
    crate::limits::raise_nofile();
    let listener = TcpListener::bind(addr).await?;
    println!("READY {}", listener.local_addr()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("serve-idle {addr}: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            if let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
            {
                while let Some(Ok(_)) = ws.next().await {}
            }
        });
    }
}
