//! The TCP server: accepts connections, runs one task per connection that reads frames and
//! answers them, each QUERY/PREPARE/EXECUTE/BATCH in its own task so a delayed request does
//! not hold back others on the same connection (responses are matched by stream id).
//! Also holds the fault-injection knobs the [`crate::Node`] API exposes.

use crate::exec::{self, code, BatchItem, CqlError, Env, ErrorExtra, Outcome, Params, Value};
use crate::frame::{self, flags, opcode, Body, ReadError};
use crate::parse::{self, Parsed};
use crate::store::{now_millis, random_uuid, Store};
use crate::system::NodeIdentity;
use bytes::Bytes;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// A prepared statement, bound to the keyspace in use when it was prepared.
pub struct PreparedStmt {
    pub parsed: Parsed,
    pub keyspace: Option<String>,
}

impl PreparedStmt {
    /// The (keyspace, table) an INSERT or SELECT works on.
    fn target(&self) -> Option<(String, String)> {
        let q = match &self.parsed.stmt {
            parse::Statement::Insert(i) => &i.table,
            parse::Statement::Select(s) => &s.table,
            _ => return None,
        };
        Some((q.keyspace.clone().or_else(|| self.keyspace.clone())?, q.name.clone()))
    }
}

/// State shared by all connections of one node.
pub struct Shared {
    pub store: Mutex<Store>,
    pub prepared: Mutex<HashMap<Vec<u8>, Arc<PreparedStmt>>>,
    pub me: NodeIdentity,
    delay_us: AtomicU64,
    fail_next: AtomicUsize,
    requests: AtomicU64,
    down: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something ever did, the data is still
    // usable for a test fixture.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(rpc_port: u16) -> Self {
        Shared {
            store: Mutex::new(Store::default()),
            prepared: Mutex::new(HashMap::new()),
            me: NodeIdentity {
                host_id: random_uuid(),
                cluster_name: "hls-dvr-cqlnode".into(),
                rpc_port,
                generation: (now_millis() / 1000) as i32,
            },
            delay_us: AtomicU64::new(0),
            fail_next: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            down: watch::channel(false).0,
        }
    }

    pub fn set_delay(&self, d: Duration) {
        self.delay_us.store(d.as_micros().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
    fn take_failure(&self) -> bool {
        self.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }
}

/// Accepts connections until `stop` becomes true.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    // Expired data is invisible on read anyway; purging only bounds memory in long demos.
    let purger = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                lock(&shared.store).purge(now_millis());
            }
        })
    };
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((sock, _)) => {
                    if shared.is_down() {
                        drop(sock); // accept-then-close while the node is "down"
                        continue;
                    }
                    let _ = sock.set_nodelay(true);
                    conns.spawn(connection(sock, shared.clone()));
                    while conns.try_join_next().is_some() {}
                }
                Err(e) => {
                    eprintln!("hls-dvr-cqlnode: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            r = stop.changed() => if r.is_err() || *stop.borrow() { break },
        }
    }
    purger.abort();
    conns.shutdown().await;
}

/// Per-connection state.
struct Conn {
    keyspace: Mutex<Option<String>>,
    local_ip: IpAddr,
}

async fn wait_down(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn error_frame(stream: i16, e: &CqlError) -> Bytes {
    frame::response(stream, opcode::ERROR, &frame::error_body(e))
}

async fn connection(sock: TcpStream, shared: Arc<Shared>) {
    let local_ip = sock.local_addr().map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let conn = Arc::new(Conn { keyspace: Mutex::new(None), local_ip });
    let mut down = shared.down.subscribe();
    // Dropping the set aborts requests still in flight when the connection ends.
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut ready = false;
    let graceful = loop {
        let read = tokio::select! {
            f = frame::read_frame(&mut rd) => f,
            _ = wait_down(&mut down) => break false,
        };
        while tasks.try_join_next().is_some() {}
        let f = match read {
            Ok(f) => f,
            Err(ReadError::Eof) | Err(ReadError::Io(_)) => break false,
            Err(ReadError::Fatal { stream, message }) => {
                let _ = tx.send(error_frame(stream, &CqlError::protocol(message)));
                break true;
            }
        };
        if f.version != frame::VERSION {
            // Answer in v4 so drivers recognise the message and retry with v4.
            let msg = format!("Invalid or unsupported protocol version ({}); supported versions are (4/v4)", f.version);
            let _ = tx.send(error_frame(f.stream, &CqlError::protocol(msg)));
            break true;
        }
        let stream = f.stream;
        let reply = |e: CqlError| error_frame(stream, &e);
        if f.flags & flags::COMPRESSION != 0 {
            let _ = tx.send(reply(CqlError::protocol("Compression was not negotiated; frames must not be compressed")));
            continue;
        }
        let mut body = Body::new(f.body.clone());
        if f.flags & flags::CUSTOM_PAYLOAD != 0 {
            if let Err(e) = body.skip_bytes_map() {
                let _ = tx.send(reply(e.into()));
                continue;
            }
        }
        match f.opcode {
            opcode::OPTIONS => {
                let _ = tx.send(frame::response(stream, opcode::SUPPORTED, &frame::supported_body()));
            }
            opcode::STARTUP => {
                let resp = match body.string_map() {
                    Err(e) => reply(e.into()),
                    Ok(opts) => match opts.get("COMPRESSION").filter(|c| !c.is_empty()) {
                        Some(c) => reply(CqlError::protocol(format!("Unknown compression algorithm: {c}"))),
                        None => {
                            ready = true;
                            frame::response(stream, opcode::READY, &[])
                        }
                    },
                };
                let _ = tx.send(resp);
            }
            opcode::AUTH_RESPONSE => {
                let _ = tx.send(reply(CqlError::protocol("Unexpected AUTH_RESPONSE: authentication is not enabled")));
            }
            _ if !ready => {
                let _ = tx.send(reply(CqlError::protocol(format!(
                    "Unexpected message with opcode {:#04x}, expecting STARTUP or OPTIONS",
                    f.opcode
                ))));
            }
            opcode::REGISTER => {
                // Events are never sent (the schema only changes through this node's clients),
                // but drivers register their control connection and need the READY.
                let resp = match body.string_list() {
                    Ok(_) => frame::response(stream, opcode::READY, &[]),
                    Err(e) => reply(e.into()),
                };
                let _ = tx.send(resp);
            }
            opcode::QUERY | opcode::PREPARE | opcode::EXECUTE | opcode::BATCH => {
                let (shared, conn, tx) = (shared.clone(), conn.clone(), tx.clone());
                let op = f.opcode;
                tasks.spawn(async move {
                    if let Some(b) = request(&shared, &conn, op, stream, body).await {
                        let _ = tx.send(b);
                    }
                });
            }
            other => {
                let _ = tx.send(reply(CqlError::protocol(format!("Unknown or unexpected opcode {other:#04x}"))));
            }
        }
    };
    tasks.abort_all();
    drop(tx);
    if graceful {
        // Let the last error frame out before closing.
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    } else {
        writer.abort();
    }
}

/// Answers one QUERY/PREPARE/EXECUTE/BATCH. None: the node went down meanwhile, no answer.
async fn request(shared: &Shared, conn: &Conn, op: u8, stream: i16, body: Body) -> Option<Bytes> {
    let delay = Duration::from_micros(shared.delay_us.load(Ordering::Relaxed));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if shared.is_down() {
        return None;
    }
    let counted = op != opcode::PREPARE;
    let result = if counted && shared.take_failure() {
        Err(CqlError::new(code::SERVER_ERROR, "injected failure (hls-dvr-cqlnode fail_next)"))
    } else {
        match op {
            opcode::QUERY => query(shared, conn, body),
            opcode::PREPARE => prepare(shared, conn, body),
            opcode::EXECUTE => execute(shared, conn, body),
            _ => batch(shared, conn, body),
        }
    };
    if counted {
        shared.requests.fetch_add(1, Ordering::SeqCst);
    }
    Some(match result {
        Ok(body) => frame::response(stream, opcode::RESULT, &body),
        Err(e) => error_frame(stream, &e),
    })
}

fn params(q: &frame::QueryParams) -> Params {
    Params {
        page_size: q.page_size.and_then(|n| usize::try_from(n).ok()).filter(|n| *n > 0),
        paging_state: q.paging_state.clone(),
        timestamp: q.timestamp,
    }
}

fn run(
    shared: &Shared,
    conn: &Conn,
    parsed: &Parsed,
    keyspace: Option<String>,
    q: &frame::QueryParams,
) -> Result<bytes::BytesMut, CqlError> {
    let env = Env { keyspace: keyspace.as_deref(), local_ip: conn.local_ip, me: &shared.me };
    let out = exec::execute(&mut lock(&shared.store), &env, parsed, &q.values, &params(q), now_millis())?;
    match &out {
        Outcome::SetKeyspace(ks) => *lock(&conn.keyspace) = Some(ks.clone()),
        // As Cassandra, forget statements on dropped objects: executing one then answers
        // UNPREPARED and the driver re-prepares against the current schema.
        Outcome::SchemaChange { change: "DROPPED", keyspace, table, .. } => {
            lock(&shared.prepared).retain(|_, p| match p.target() {
                Some((k, t)) => !(k == *keyspace && table.as_ref().is_none_or(|x| *x == t)),
                None => true,
            });
        }
        _ => {}
    }
    Ok(frame::result_body(&out, q.skip_metadata))
}

fn query(shared: &Shared, conn: &Conn, mut body: Body) -> Result<bytes::BytesMut, CqlError> {
    let text = body.long_string()?;
    let q = frame::query_params(&mut body)?;
    let parsed = parse::parse(&text)?;
    let ks = lock(&conn.keyspace).clone();
    run(shared, conn, &parsed, ks, &q)
}

/// Statement ids: a hash of the keyspace and text, like Cassandra's MD5 of the same, so
/// preparing the same statement twice gives the same id.
fn statement_id(keyspace: Option<&str>, text: &str) -> Vec<u8> {
    let mut id = Vec::with_capacity(16);
    for salt in [0x5eedu64, 0xfeed] {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        keyspace.hash(&mut h);
        text.hash(&mut h);
        id.extend_from_slice(&h.finish().to_be_bytes());
    }
    id
}

fn prepare(shared: &Shared, conn: &Conn, mut body: Body) -> Result<bytes::BytesMut, CqlError> {
    let text = body.long_string()?;
    let parsed = parse::parse(&text)?;
    let keyspace = lock(&conn.keyspace).clone();
    let env = Env { keyspace: keyspace.as_deref(), local_ip: conn.local_ip, me: &shared.me };
    let info = exec::prepare_info(&lock(&shared.store), &env, &parsed)?;
    let id = statement_id(keyspace.as_deref(), &text);
    lock(&shared.prepared).insert(id.clone(), Arc::new(PreparedStmt { parsed, keyspace }));
    Ok(frame::prepared_body(&id, &info))
}

fn lookup(shared: &Shared, id: &[u8]) -> Result<Arc<PreparedStmt>, CqlError> {
    lock(&shared.prepared).get(id).cloned().ok_or_else(|| CqlError {
        code: code::UNPREPARED,
        message: "Prepared statement not found; prepare it again".into(),
        extra: ErrorExtra::Unprepared(id.to_vec()),
    })
}

fn execute(shared: &Shared, conn: &Conn, mut body: Body) -> Result<bytes::BytesMut, CqlError> {
    let id = body.short_bytes()?;
    let q = frame::query_params(&mut body)?;
    let p = lookup(shared, &id)?;
    run(shared, conn, &p.parsed, p.keyspace.clone(), &q)
}

fn batch(shared: &Shared, conn: &Conn, mut body: Body) -> Result<bytes::BytesMut, CqlError> {
    let kind = body.u8()?;
    if kind > 1 {
        return Err(CqlError::invalid("counter batches are not supported by hls-dvr-cqlnode"));
    }
    let n = body.u16()?;
    let conn_ks = lock(&conn.keyspace).clone();
    // Parse everything first; statements are kept alive by these owners.
    let mut owned: Vec<(Arc<PreparedStmt>, Vec<Value>)> = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let stmt = match body.u8()? {
            0 => {
                let text = body.long_string()?;
                Arc::new(PreparedStmt { parsed: parse::parse(&text)?, keyspace: conn_ks.clone() })
            }
            1 => lookup(shared, &body.short_bytes()?)?,
            k => return Err(CqlError::protocol(format!("Invalid query kind in BATCH messages: {k}"))),
        };
        let nv = body.u16()?;
        let values = (0..nv).map(|_| body.value()).collect::<Result<Vec<_>, _>>()?;
        owned.push((stmt, values));
    }
    let _consistency = body.u16()?;
    let f = body.u8()?;
    if f & 0x40 != 0 {
        return Err(CqlError::invalid("named values in BATCH are not supported"));
    }
    if f & 0x10 != 0 {
        body.u16()?;
    }
    let timestamp = if f & 0x20 != 0 { Some(body.i64()?) } else { None };
    let items: Vec<BatchItem> = owned
        .iter()
        .map(|(s, v)| BatchItem { parsed: &s.parsed, keyspace: s.keyspace.clone(), values: v.clone() })
        .collect();
    let env = Env { keyspace: conn_ks.as_deref(), local_ip: conn.local_ip, me: &shared.me };
    let out = exec::execute_batch(&mut lock(&shared.store), &env, &items, timestamp, now_millis())?;
    Ok(frame::result_body(&out, false))
}
