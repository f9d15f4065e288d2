//! An in-memory CQL node for hls-dvr's tests and demo.
//!
//! **This is a test fixture, not a store.** Data lives in memory only and is lost when the
//! node stops; there is one node, no replication, no authentication, no compression.
//!
//! It speaks the CQL native protocol v4 well enough for the `scylla` driver (default session
//! settings), cqlsh-style clients and DataStax drivers, and implements with Cassandra's
//! semantics exactly the statements hls-dvr issues: CREATE/DROP KEYSPACE and TABLE, TRUNCATE,
//! USE, INSERT (with TTL, TIMESTAMP, table default TTL, null vs unset, last-write-wins),
//! SELECT (single-partition slices by clustering range, full scans, ORDER BY, LIMIT, paging,
//! COUNT(*), ALLOW FILTERING), prepared statements and batches of inserts, plus the
//! `system.local`, `system.peers` and `system_schema.*` tables drivers read at connect.
//! Anything else (UPDATE, DELETE, ALTER, indexes, LWT...) is answered with a clean CQL error
//! naming what is unsupported.
//!
//! [`Node`] runs a node on its own thread for tests, with fault injection (delays, dropped
//! connections, error frames). The `hls-dvr-cqlnode` binary runs one standalone.

pub mod exec;
pub mod frame;
pub mod parse;
pub mod server;
pub mod store;
pub mod system;
pub mod types;

use server::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A running node: a server on its own thread with its own tokio runtime.
pub struct Node {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Node {
    /// Binds `listen` ("127.0.0.1:0" picks a free port) and starts serving.
    pub fn spawn(listen: &str) -> std::io::Result<Node> {
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(addr.port()));
        let (stop, stop_rx) = watch::channel(false);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hls-dvr-cqlnode")
            .enable_all()
            .build()?;
        let sh = shared.clone();
        let thread = std::thread::Builder::new().name("hls-dvr-cqlnode".into()).spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => server::serve(l, sh, stop_rx).await,
                    Err(e) => eprintln!("hls-dvr-cqlnode: cannot use listener: {e}"),
                }
            });
            // Connection tasks still running are cancelled here, closing their sockets.
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
        Ok(Node { addr, shared, stop, thread: Some(thread) })
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delay added before answering every QUERY/EXECUTE/BATCH/PREPARE.
    pub fn set_delay(&self, d: Duration) {
        self.shared.set_delay(d);
    }

    /// Down: closes every client connection now, and accepts-then-closes new ones until
    /// `set_down(false)`. Data and prepared statements are kept.
    pub fn set_down(&self, down: bool) {
        self.shared.set_down(down);
    }

    /// The next `n` QUERY/EXECUTE/BATCH requests are answered with a ServerError (0x0000).
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next(n);
    }

    /// QUERY/EXECUTE/BATCH frames answered so far (including errors), e.g. to assert traffic.
    /// Drivers' own metadata queries count too.
    pub fn requests(&self) -> u64 {
        self.shared.requests()
    }

    /// Stops the node and closes its connections (also done on drop).
    pub fn shutdown(self) {}

    fn stop(&mut self) {
        self.stop.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}
