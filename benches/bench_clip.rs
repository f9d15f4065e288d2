//! Driver of `scripts/bench --clips`.
//!
//! `bench_clip fill HOST:PORT KEYSPACE INIT SEGMENT` fills a keyspace: stream `clip`, rendition
//! `v`, 2 h of one real fMP4 segment (video and audio, as ffmpeg's HLS muxer wrote it) stored
//! 3,600 times over the last two hours, with its init segment, index rows and sample tables, as
//! the uploader stores them: a clip of any range there is a real MP4 file.
//!
//! `bench_clip read HOST:PORT KEYSPACE START END` reads the clip file of that range as the module
//! does (the edge's plan, then its units, one read ahead), without nginx and without writing the
//! bytes anywhere: what the store delivers here, beside which the download's rate is read.
//! Prints `store clip_mb_per_s N`.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::{Container, IndexEntry, MediaType, Rendition, SourcePos};
use hls_dvr_core::mp4::clip::Format;
use hls_dvr_core::mp4::fmp4::{segment_samples, Init};
use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_store::clip;
use hls_dvr_store::{BlobKind, Store, StoreConfig};

const SEGMENTS: i64 = 3600;

const USAGE: &str = "usage: bench_clip fill HOST:PORT KEYSPACE INIT SEGMENT | read HOST:PORT KEYSPACE START END";

// Two worker threads, as an nginx with two workers has.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fill") if args.len() == 6 => fill(&args[2], &args[3], &args[4], &args[5]).await,
        Some("read") if args.len() == 6 => read(&args[2], &args[3], &args[4], &args[5]).await,
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

async fn connect(addr: &str, ks: &str) -> Store {
    let mut cfg = StoreConfig::new(vec![addr.to_string()], ks);
    cfg.write_timeout = Duration::from_secs(30);
    Store::connect(&cfg).await.unwrap_or_else(|e| {
        eprintln!("bench_clip: {e}");
        std::process::exit(1);
    })
}

async fn read(addr: &str, ks: &str, start: &str, end: &str) {
    let store = connect(addr, ks).await;
    let q = PlaylistQuery::parse(&format!("start={start}&end={end}"), now_ms(), 86_400_000).expect("a range");
    let began = std::time::Instant::now();
    let file = match clip::plan(&store, "clip", Some("v"), &q, Format::Mp4).await.expect("store") {
        Ok(f) => f,
        Err(r) => panic!("{r:?}"),
    };
    let units = file.units.iter().map(|u| clip::unit(&store, &file.pieces[u.clone()]));
    let mut units = futures::stream::iter(units).buffered(2);
    let mut bytes = file.header.len() as u64;
    while let Some(u) = units.next().await {
        bytes += u.expect("a unit").iter().map(|b| b.len() as u64).sum::<u64>();
    }
    assert_eq!(bytes, file.len);
    let secs = began.elapsed().as_secs_f64();
    println!("the store alone: the same clip read as the module reads it, {bytes} bytes in {secs:.2} s");
    println!("store clip_mb_per_s {:.1}", bytes as f64 / secs / 1e6);
}

async fn fill(addr: &str, ks: &str, init: &str, segment: &str) {
    let init = Bytes::from(std::fs::read(init).expect("init segment"));
    let data = Bytes::from(std::fs::read(segment).expect("segment"));
    let table = segment_samples(&data, &Init::parse(&init).expect("an init segment")).expect("a segment").encode();
    let store = connect(addr, ks).await;
    let (stream, rendition) = ("clip", "v");
    let now = now_ms();
    store.write_blob(BlobKind::Init, stream, rendition, 0, &init).await.expect("init");
    let writes = (0..SEGMENTS).map(|msn| {
        let (store, data, table) = (&store, &data, &table);
        async move {
            let at = now - (SEGMENTS - msn) * 2000;
            store.write_blob(BlobKind::Segment, stream, rendition, msn, data).await?;
            store.write_samples(stream, rendition, at, msn, table).await?;
            let e = IndexEntry {
                msn,
                duration_us: 2_000_000,
                pdt_ms: at,
                discontinuity: false,
                disc_seq: 0,
                init_msn: Some(0),
                size: data.len() as i64,
                added_ms: at,
                key_frame: None,
                thumbnail: false,
            };
            store.write_index(stream, rendition, &e).await
        }
    });
    let mut s = futures::stream::iter(writes).buffer_unordered(16);
    while let Some(r) = s.next().await {
        r.expect("write");
    }
    let head = Rendition {
        name: rendition.into(),
        container: Container::Fmp4,
        target_duration: 2,
        bandwidth: Some(1_200_000),
        codecs: None,
        resolution: None,
        frame_rate: None,
        head_msn: SEGMENTS - 1,
        head_disc_seq: 0,
        head_pdt_ms: now - 2000,
        source: SourcePos::default(),
        updated_ms: now,
        ended: false,
        media: MediaType::Muxed,
        parts: None,
        grouping: Default::default(),
        key_frames: false,
        thumbnails: None,
    };
    store.write_head(stream, &head).await.expect("head");
    println!("filled {stream}/{rendition}: {SEGMENTS} segments of {} bytes, 2 h", data.len());
}
