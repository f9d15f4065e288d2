//! A TCP proxy in front of a Cassandra node, for fault injection around the real thing: answers
//! delayed, every connection cut, the node unreachable; and a count of the EXECUTE requests that
//! went through (the store's prepared reads and writes; drivers' own metadata queries are QUERYs).
//!
//! The driver learns a node's address from `system.local` but keeps the port it connected to, so
//! a proxy on the node's own IP (another port) carries every connection to that node.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// CQL native protocol v4: a 9-byte header (version, flags, stream id, opcode, body length).
const HEADER: usize = 9;
const OPCODE_EXECUTE: u8 = 0x0A;

struct Shared {
    target: SocketAddr,
    delay_us: AtomicU64,
    down: AtomicBool,
    executes: AtomicU64,
    /// Bumped to cut every open connection.
    cut: watch::Sender<u64>,
}

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    /// A proxy to `target` (`ip:port`), listening on the same IP. None when that IP is not one of
    /// this machine's (a remote cluster).
    pub fn start(target: &str) -> Option<Proxy> {
        let target: SocketAddr = target.parse().ok()?;
        Proxy::start_on(SocketAddr::new(target.ip(), 0), target)
    }

    /// A proxy to `target` listening on `listen`: proxies on the same port of each node's IP
    /// carry a whole cluster's traffic.
    pub fn start_on(listen: SocketAddr, target: SocketAddr) -> Option<Proxy> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(TcpListener::bind(listen)).ok()?;
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target,
            delay_us: AtomicU64::new(0),
            down: AtomicBool::new(false),
            executes: AtomicU64::new(0),
            cut: watch::channel(0).0,
        });
        rt.spawn(accept(listener, shared.clone()));
        Some(Proxy { addr, shared, _rt: rt })
    }

    /// The address to give clients instead of the node's.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Every answer from the node reaches the client this much later.
    pub fn set_delay(&self, d: Duration) {
        self.shared.delay_us.store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Down: every open connection is cut now, and new ones are closed as soon as accepted,
    /// as clients see a node that died. Up again: connections pass.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::Relaxed);
        if down {
            self.shared.cut.send_modify(|g| *g += 1);
        }
    }

    /// EXECUTE requests forwarded so far.
    pub fn executes(&self) -> u64 {
        self.shared.executes.load(Ordering::Relaxed)
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        if shared.down.load(Ordering::Relaxed) {
            continue; // dropped: closed at once
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let Ok(node) = TcpStream::connect(shared.target).await else { return };
            let _ = client.set_nodelay(true);
            let _ = node.set_nodelay(true);
            let mut cut = shared.cut.subscribe();
            let (cr, cw) = client.into_split();
            let (nr, nw) = node.into_split();
            tokio::select! {
                _ = requests(cr, nw, &shared) => {}
                _ = answers(nr, cw, &shared) => {}
                _ = cut.changed() => {}
            }
        });
    }
}

/// Client to node: forwarded at once, frames counted.
async fn requests(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, sh: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut frames = FrameCounter::default();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        sh.executes.fetch_add(frames.feed(&buf[..n]), Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Node to client: each read is held until its arrival time plus the delay, so a delay adds
/// latency without limiting throughput.
async fn answers(mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf, sh: &Shared) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let due = Instant::now() + Duration::from_micros(sh.delay_us.load(Ordering::Relaxed));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    let write = async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&data).await.is_err() {
                return;
            }
        }
    };
    // The writer drains what was read before the node closed.
    tokio::join!(read, write);
}

/// Finds frame boundaries in a byte stream and counts EXECUTE frames.
#[derive(Default)]
struct FrameCounter {
    header: Vec<u8>,
    /// Body bytes of the current frame still to skip.
    body_left: usize,
}

impl FrameCounter {
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut executes = 0;
        while !data.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(data.len());
                self.body_left -= skip;
                data = &data[skip..];
                continue;
            }
            let take = (HEADER - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.header.len() == HEADER {
                if self.header[4] == OPCODE_EXECUTE {
                    executes += 1;
                }
                self.body_left = u32::from_be_bytes(self.header[5..9].try_into().unwrap()) as usize;
                self.header.clear();
            }
        }
        executes
    }
}

#[test]
fn frames_are_counted_across_reads() {
    let frame = |op: u8, body: usize| {
        let mut f = vec![4, 0, 0, 1, op];
        f.extend_from_slice(&(body as u32).to_be_bytes());
        f.extend(std::iter::repeat_n(OPCODE_EXECUTE, body));
        f
    };
    let stream: Vec<u8> = [frame(0x0A, 3), frame(0x07, 20), frame(0x0A, 0), frame(0x0A, 100)].concat();
    for step in [1, 2, 5, 9, 64, stream.len()] {
        let mut c = FrameCounter::default();
        let n: u64 = stream.chunks(step).map(|d| c.feed(d)).sum();
        assert_eq!(n, 3, "in reads of {step} bytes");
    }
}
