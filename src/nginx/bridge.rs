//! The bridge between nginx's event loop and the worker's tokio runtime (ARCHITECTURE.md,
//! "The thread bridge").
//!
//! nginx thread → runtime: a job (owned data) and a request id. Runtime → nginx thread: the id and
//! the reply, pushed on a queue, and a write to the module's own eventfd, which nginx's event loop
//! watches as a connection. The runtime never sees an nginx pointer; nginx APIs are only called on
//! the worker's main thread, from the eventfd's read handler.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ngx::ffi::{
    eventfd, ngx_close_connection, ngx_connection_t, ngx_cycle, ngx_cycle_t, ngx_event_t, ngx_get_connection,
    ngx_handle_read_event, ngx_uint_t, EFD_CLOEXEC, EFD_NONBLOCK, NGX_LOG_ERR, NGX_LOG_NOTICE, NGX_LOG_WARN,
};
use ngx::http::Request;
use ngx::ngx_log_error;
use once_cell::sync::OnceCell;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::config::MainConf;
use hls_dvr_edge::serve::{self, Edge, Job, Reply};
use hls_dvr_edge::stats_writer;
use hls_dvr_store::keeper::{Event, Keeper};
use hls_dvr_store::{Observer, Op, Store, StoreError};

enum Msg {
    Done(u64, Result<Reply, StoreError>),
    Log(ngx_uint_t, String),
}

/// Completions waiting for the nginx thread.
static QUEUE: Mutex<Vec<Msg>> = Mutex::new(Vec::new());
static EVENT_FD: AtomicI32 = AtomicI32::new(-1);
/// The worker's session, connected (and replaced when it keeps failing) by the runtime.
static KEEPER: Keeper = Keeper::new();
/// How long the store keeps segments, in ms (0: not known yet, or no TTL), read once connected.
static RETENTION_MS: AtomicI64 = AtomicI64::new(0);

/// How long the store keeps segments, once known.
pub fn retention_ms() -> Option<i64> {
    Some(RETENTION_MS.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
}
/// The worker's caches and head polls, used on the runtime only.
static EDGE: OnceCell<Edge> = OnceCell::new();

fn push(msg: Msg) {
    let was_empty = {
        let mut q = QUEUE.lock().unwrap_or_else(|p| p.into_inner());
        let e = q.is_empty();
        q.push(msg);
        e
    };
    // Coalesce wake-ups: the nginx thread drains the whole queue per wake-up.
    if was_empty {
        let fd = EVENT_FD.load(Ordering::Acquire);
        if fd >= 0 {
            let one: u64 = 1;
            // SAFETY: writing 8 bytes from a live u64 to an eventfd we own; a full counter
            // (EAGAIN) still leaves it readable, which is all we need.
            unsafe { ngx::ffi::write(fd, &one as *const u64 as *const c_void, 8) };
        }
    }
}

fn log(level: u32, msg: String) {
    push(Msg::Log(level as ngx_uint_t, msg));
}

struct Worker {
    runtime: Runtime,
    conn: *mut ngx_connection_t,
    next_id: u64,
    /// In-flight jobs.
    pending: HashMap<u64, Pending>,
    /// Of those, blocking reloads: they mostly wait for a segment, not for the store, so they do
    /// not count against `max_in_flight` (each holds a client connection: worker_connections
    /// bounds them).
    blocking: usize,
    max_in_flight: usize,
}

struct Pending {
    /// Alive while pending: the request's pool cleanup cancels the job before it is freed.
    r: NonNull<Request>,
    /// Aborted if the request goes away first.
    task: AbortHandle,
    blocking: bool,
}

impl Worker {
    fn forget(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if p.blocking {
            self.blocking -= 1;
        }
        Some(p)
    }
}

thread_local! {
    // Only the nginx thread touches this.
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Creates the runtime, starts connecting, and registers the eventfd with nginx.
///
/// # Safety
/// Called once per worker from `init_process`, on the nginx thread, with the live cycle.
pub unsafe fn start(cycle: &ngx_cycle_t, main: &MainConf) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("hls-dvr")
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;

    // SAFETY: called on the worker's nginx thread with the live cycle (the contract above); the
    // descriptor and the connection made here are this module's own, closed by `stop`.
    let conn = unsafe {
        let fd = eventfd(0, (EFD_NONBLOCK | EFD_CLOEXEC) as i32);
        if fd < 0 {
            return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
        }
        let conn = ngx_get_connection(fd, cycle.log);
        if conn.is_null() {
            ngx::ffi::close(fd);
            return Err("no free connection for the eventfd (raise worker_connections)".into());
        }
        let rev = (*conn).read;
        (*rev).handler = Some(on_eventfd);
        (*rev).log = cycle.log;
        (*conn).log = cycle.log;
        if ngx_handle_read_event(rev, 0) != 0 {
            ngx_close_connection(conn);
            return Err("cannot watch the eventfd".into());
        }
        EVENT_FD.store(fd, Ordering::Release);
        conn
    };

    let _ = EDGE.set(Edge::new(main.playlist_cache()));
    let mut cfg = main.store_config();
    // Store reads count in the shared counters (metrics.rs: plain shared memory, any thread).
    cfg.observer = Some(Observer(Arc::new(|op, took| {
        if let Some(c) = crate::metrics::counters() {
            c.store_read(op, took);
        }
    })));
    let whom = format!("{} keyspace {}", cfg.describe(), cfg.keyspace);
    // Requests answer 503 until connected; the log says why once, not once per retry.
    runtime.spawn(KEEPER.run(
        cfg,
        move |event| match event {
            Event::Connected => log(NGX_LOG_NOTICE, format!("hls_dvr: connected to {whom}")),
            Event::Replaced => log(NGX_LOG_NOTICE, format!("hls_dvr: reconnected to {whom} with a new session")),
            Event::Failed(e) => log(NGX_LOG_ERR, format!("hls_dvr: {e}; retrying until it works")),
            Event::NoRetention(e) => log(NGX_LOG_WARN, format!("hls_dvr: the store's retention is unknown: {e}")),
        },
        |r| RETENTION_MS.store(r.map_or(0, |d| d.as_millis() as i64), Ordering::Relaxed),
    ));

    // Viewer statistics: any worker seals a finished minute; the one that did writes it.
    if let Some(board) = hls_dvr_edge::audience::board() {
        runtime.spawn(stats_writer::run(
            board,
            main.edge_name(),
            || KEEPER.get(),
            |outcome| match outcome {
                Ok(m) => log(NGX_LOG_NOTICE, format!("hls_dvr: {m}")),
                Err(m) => log(NGX_LOG_ERR, format!("hls_dvr: {m}")),
            },
        ));
    }

    WORKER.with(|w| {
        *w.borrow_mut() = Some(Worker {
            runtime,
            conn,
            next_id: 1,
            pending: HashMap::new(),
            blocking: 0,
            max_in_flight: main.max_in_flight(),
        })
    });
    Ok(())
}

/// Stops the runtime and closes the eventfd. In-flight requests are gone by now.
pub fn stop() {
    let Some(w) = WORKER.with(|w| w.borrow_mut().take()) else { return };
    if let Some(store) = KEEPER.get() {
        // SAFETY: exit_process runs on the worker's nginx thread, where the cycle is live.
        let log = unsafe { (*ngx_cycle).log };
        ngx_log_error!(
            NGX_LOG_NOTICE,
            log,
            "hls_dvr: store reads of this worker: {}",
            store.latencies().summary(&Op::READS)
        );
    }
    // Tasks first: none may write to the eventfd once its number is closed (and maybe reused).
    w.runtime.shutdown_timeout(Duration::from_millis(500));
    EVENT_FD.store(-1, Ordering::Release);
    // SAFETY: the connection was created by `start` on this thread and is closed once.
    unsafe { ngx_close_connection(w.conn) };
}

/// Why a job failed before reaching the store: the reason was logged once, by the connect loop.
pub const NOT_CONNECTED: &str = "not connected to the store";

#[derive(Debug)]
pub enum SubmitError {
    /// The worker has no runtime (it failed to start).
    NotReady,
    /// Too many requests in flight on this worker.
    Busy,
}

/// Submits a job for request `r`; its reply comes back through `handler::complete`.
/// `wait` bounds how long the job waits for a session (a worker that just started, after a
/// reload, is still connecting): requests queue briefly instead of failing.
pub fn submit(r: NonNull<Request>, job: Job, wait: Duration) -> Result<u64, SubmitError> {
    WORKER.with(|w| {
        let mut w = w.borrow_mut();
        let w = w.as_mut().ok_or(SubmitError::NotReady)?;
        let blocking = !job.wait_limit().is_zero();
        if !blocking && w.pending.len() - w.blocking >= w.max_in_flight {
            return Err(SubmitError::Busy);
        }
        let edge = EDGE.get().ok_or(SubmitError::NotReady)?;
        let id = w.next_id;
        w.next_id += 1;
        let task = w.runtime.spawn(async move {
            let res = match store_within(wait).await {
                Some(store) => {
                    let res = serve::run(store, edge, job).await;
                    KEEPER.report(&res);
                    res
                }
                None => Err(StoreError::Unavailable(NOT_CONNECTED.into())),
            };
            push(Msg::Done(id, res));
        });
        w.pending.insert(id, Pending { r, task: task.abort_handle(), blocking });
        w.blocking += usize::from(blocking);
        Ok(id)
    })
}

async fn store_within(wait: Duration) -> Option<Arc<Store>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(s) = KEEPER.get() {
            return Some(s);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        // Only while the worker connects: a short poll is simpler than a notifier.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Forgets a job whose request is finishing or freed: its reply, if it still comes, is dropped.
pub fn cancel(id: u64) {
    WORKER.with(|w| {
        if let Some(p) = w.borrow_mut().as_mut().and_then(|w| w.forget(id)) {
            p.task.abort();
        }
    });
}

/// The eventfd is readable: deliver every queued reply.
unsafe extern "C" fn on_eventfd(_ev: *mut ngx_event_t) {
    let fd = EVENT_FD.load(Ordering::Acquire);
    if fd >= 0 {
        // Reset the counter before draining, so a push racing with the drain wakes us again.
        let mut n: u64 = 0;
        // SAFETY: reading 8 bytes into a live u64 from the eventfd this module owns.
        unsafe { ngx::ffi::read(fd, &mut n as *mut u64 as *mut c_void, 8) };
    }
    let msgs = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|p| p.into_inner()));
    // SAFETY: an event handler of the worker's nginx thread, where the cycle is live.
    let log = unsafe { (*ngx_cycle).log };
    for msg in msgs {
        match msg {
            Msg::Log(level, text) => {
                ngx_log_error!(level, log, "{}", text);
            }
            Msg::Done(id, res) => {
                let r = WORKER.with(|w| w.borrow_mut().as_mut().and_then(|w| w.forget(id)).map(|p| p.r));
                // A missing id means the request was freed (client gone, timeout): drop the reply.
                if let Some(mut r) = r {
                    // SAFETY: its job was pending, so the request is alive (see `Pending`); the
                    // one reference to it while the reply is handled.
                    crate::handler::complete(unsafe { r.as_mut() }, id, res);
                }
            }
        }
    }
}
