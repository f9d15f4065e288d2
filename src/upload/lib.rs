//! The uploader, `hls-dvr-upload`: watches segmenter output folders, or receives what encoders
//! push over HTTP, and stores every new segment.
//!
//! - [`args`]: the command line.
//! - [`source`]: playlists as the segmenter wrote them.
//! - [`groups`]: what a multivariant playlist declares of each rendition (groups, languages).
//! - [`tracker`]: which listed segments are new, and their store sequence numbers (pure).
//! - [`stream`]: one folder: finds renditions, starts a task for each.
//! - [`changes`]: playlist writes in a folder, from inotify, so renditions react at once.
//! - [`rendition`]: one rendition: polls its playlist, queues and uploads segments in order.
//! - [`ingest`]: stores one segment in the write order readers rely on, retrying until it is in.
//! - [`export`]: a stored range written to a file, as the edge sends it (clips as files).
//! - [`key_frame`]: where a segment's first key frame lies (I-frame playlists).
//! - [`sample_table`]: each segment's sample table (clips as files).
//! - [`marker`]: a marker (ad break, timed metadata) as JSON, checked.
//! - [`metrics`]: what was stored and how it went, for Prometheus (`--metrics`).
//! - [`thumbnail`]: scrubbing thumbnails of segments (`--thumbnails`), made by ffmpeg.
//! - [`vtt`]: WebVTT segments checked whole and given their timestamp map.
//! - [`push`]: the push receiver (`--listen`): HLS and CMAF pushed over HTTP, stored as they come.

pub mod args;
pub mod changes;
pub mod export;
pub mod groups;
pub mod ingest;
pub mod key_frame;
pub mod marker;
pub mod metrics;
pub mod push;
pub mod rendition;
pub mod sample_table;
pub mod source;
pub mod stream;
pub mod thumbnail;
pub mod tracker;
pub mod vtt;

use std::process::ExitCode;
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};
use tracing::{error, info, warn};

use hls_dvr_store::keeper::{Event, Keeper};
use hls_dvr_store::{create_schema, Op, Store, StoreConfig};

use args::{Command, RunOptions};
use metrics::UploadMetrics;

fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // The driver's own info lines (every connection) are noise at our default level.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,scylla=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hls-dvr-upload")
        .build()
        .expect("cannot start the tokio runtime")
}

/// The whole program: `args` without the program name.
pub fn main(args: &[String]) -> ExitCode {
    let cmd = match args::parse(args) {
        Ok(c) => c,
        Err(e) => {
            // Help and version on stdout with status 0; mistakes on stderr with status 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match cmd {
        Command::Schema { connection, opts } => {
            let cfg = match connection.store_config() {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            init_logging();
            match runtime().block_on(create_schema(&cfg, &opts)) {
                Ok(()) => {
                    info!(
                        "schema ready: keyspace {} ({:?}, durable_writes {}, TTL {} s)",
                        opts.keyspace,
                        opts.replication,
                        opts.durable_writes,
                        opts.ttl_seconds()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hls-dvr-upload: cannot create the schema at {}: {e}", cfg.describe());
                    ExitCode::from(1)
                }
            }
        }
        Command::Mark { connection, stream, marker } => {
            let cfg = match connection.store_config() {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            init_logging();
            let stored = runtime().block_on(async {
                let store = Store::connect(&cfg).await?;
                store.write_marker(&stream, &marker).await
            });
            match stored {
                Ok(()) => {
                    info!("marker {:?} of {stream} stored", marker.id);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hls-dvr-upload: cannot store the marker at {}: {e}", cfg.describe());
                    ExitCode::from(1)
                }
            }
        }
        Command::Export { connection, stream, rendition, query, format, out } => {
            let cfg = match connection.store_config() {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            init_logging();
            match runtime().block_on(export::write(&cfg, &stream, rendition.as_deref(), &query, format, &out)) {
                Ok(summary) => {
                    info!("{summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hls-dvr-upload: cannot export {stream}{}: {e}", query.describe());
                    ExitCode::from(1)
                }
            }
        }
        Command::Run(o) => {
            let ffmpeg = || o.thumbnail_width.map_or(Ok(()), |_| thumbnail::ffmpeg_present());
            let cfg = match args::check_dirs(&o).and_then(|()| ffmpeg()).and_then(|()| o.connection.store_config()) {
                Ok(c) => c,
                Err(e) => return usage_error(&e),
            };
            // Secrets files are read now: a mistake is a usage error, before any connection.
            let push = match o.push.as_ref().map(push_settings).transpose() {
                Ok(p) => p,
                Err(e) => return usage_error(&e),
            };
            init_logging();
            runtime().block_on(run(o, cfg, push))
        }
    }
}

fn push_settings(p: &args::PushOptions) -> Result<push::Settings, String> {
    Ok(push::Settings {
        access: push::access::Access::new(p.token_file.as_deref(), p.basic_file.as_deref(), &p.allow)?,
        max_segment: p.max_segment,
        idle: p.idle,
        track_segment: p.track_segment,
    })
}

fn usage_error(e: &str) -> ExitCode {
    eprintln!("hls-dvr-upload: {e}");
    ExitCode::from(2)
}

async fn signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("cannot handle SIGTERM");
    let mut int = signal(SignalKind::interrupt()).expect("cannot handle SIGINT");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

async fn run(o: RunOptions, cfg: StoreConfig, push: Option<push::Settings>) -> ExitCode {
    // Handle signals from the start: a signal during start-up must not kill us half-way.
    let sig = tokio::spawn(signal());
    let store = match Store::connect(&cfg).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("hls-dvr-upload: cannot use the store at {} (keyspace {}): {e}", cfg.describe(), cfg.keyspace);
            return ExitCode::from(1);
        }
    };
    info!(
        "connected to {} (keyspace {}); {} streams, {} uploads at once",
        cfg.describe(),
        cfg.keyspace,
        o.streams.len(),
        o.max_concurrent
    );
    let metrics = Arc::new(UploadMetrics::default());
    if let Some(addr) = o.metrics {
        if let Err(e) = metrics::serve(addr, metrics.clone()).await {
            eprintln!("hls-dvr-upload: --metrics {addr}: {e}");
            return ExitCode::from(2);
        }
    }
    // After a long outage the driver's reconnection back-off has grown to seconds: a session
    // that keeps failing is replaced by a new one (store/keeper.rs).
    let keeper = Arc::new(Keeper::new());
    keeper.set(store);
    tokio::spawn({
        let (keeper, cfg) = (keeper.clone(), cfg.clone());
        async move {
            let on = |e| match e {
                Event::Replaced => info!("the store answers again: reconnected with a new session"),
                Event::Failed(e) => warn!("reconnecting: {e}"),
                Event::Connected | Event::NoRetention(_) => {}
            };
            keeper.run(cfg, on, |_| {}).await
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = ingest::Uploads {
        metrics,
        keeper: keeper.clone(),
        slots: Arc::new(Semaphore::new(o.max_concurrent)),
        shutdown: stop_rx,
        delete_after_upload: o.delete_after_upload,
        vtt_mpegts: o.vtt_mpegts,
        thumbnail_width: o.thumbnail_width,
    };
    let receiver = match (o.push.as_ref(), push) {
        (Some(p), Some(settings)) => {
            let rx = Arc::new(push::Receiver::new(shared.clone(), settings));
            match push::server::listen(p.listen, rx).await {
                Ok(task) => Some(task),
                Err(e) => {
                    eprintln!("hls-dvr-upload: --listen {}: {e}", p.listen);
                    return ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    let mut watchers = tokio::task::JoinSet::new();
    for s in &o.streams {
        let w = stream::Watcher::new(&s.name, &s.dir, o.poll_interval);
        let span = tracing::info_span!("stream", stream = %s.name);
        watchers.spawn(tracing::Instrument::instrument(w.run(shared.clone()), span));
    }
    let name = sig.await.unwrap_or("signal");
    info!("{name}: finishing the segments in flight");
    let _ = stop_tx.send(true);
    // A second signal stops at once.
    tokio::spawn(async {
        let name = signal().await;
        error!("{name} again: exiting now");
        std::process::exit(1);
    });
    while watchers.join_next().await.is_some() {}
    if let Some(task) = receiver {
        let _ = task.await;
    }
    // Its own target, so benchmarks can ask for this line alone.
    if let Some(store) = keeper.get() {
        info!(target: "hls_dvr_store::latency", "store writes: {}", store.latencies().summary(&Op::WRITES));
    }
    info!("stopped");
    ExitCode::SUCCESS
}
