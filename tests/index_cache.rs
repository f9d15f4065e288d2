//! The worker's index copy answers like a full read of the index, with far fewer reads.

mod common;

use common::*;
use hls_dvr_core::clock::now_ms;
use hls_dvr_core::model::IndexEntry;
use hls_dvr_core::model::{bucket_of, BUCKET_MS};
use hls_dvr_edge::index_cache::IndexCache;

fn row(msn: i64, added_ms: i64) -> IndexEntry {
    IndexEntry {
        msn,
        duration_us: 2_000_000,
        pdt_ms: added_ms,
        discontinuity: false,
        disc_seq: 0,
        init_msn: None,
        size: 1000,
        added_ms,
        key_frame: None,
        thumbnail: false,
    }
}

#[test]
fn index_copy_matches_full_reads_and_reads_little() {
    let cql = Cql::start();
    let ks = keyspace("idx");
    let rt = rt();
    let store = schema_and_store(&cql, &ks, &rt);
    // The copy reads through a proxy that counts its requests.
    let proxy = cql.proxy();
    let counted = store_at(&proxy.addr(), &ks, &rt);
    let cache = IndexCache::new();
    let now = now_ms();
    let from = now - 3 * BUCKET_MS;
    // 60 rows over the last 30 minutes: four buckets.
    let mut head = -1;
    let write = |msn: i64, added: i64| {
        rt.block_on(store.write_index("s", "r", &row(msn, added))).unwrap();
    };
    for msn in 0..60 {
        write(msn, now - 30 * 60_000 + msn * 30_000);
        head = msn;
    }
    let full = |from: i64, now: i64| rt.block_on(store.index_range("s", "r", from, now)).unwrap();
    let cached = |head: i64, from: i64, now: i64| {
        rt.block_on(cache.range(&counted, "k".into(), "s", "r", head, from, now)).unwrap()
    };
    let reads = || proxy.executes();

    assert_eq!(cached(head, from, now), full(from, now));
    // Nothing new: no read at all.
    let before = reads();
    let got = cached(head, from, now);
    assert_eq!(reads() - before, 0, "reads with nothing new");
    assert_eq!(got, full(from, now));
    // Three new rows: two bucket reads, not the whole window.
    for msn in 60..63 {
        write(msn, now + (msn - 59) * 1000);
        head = msn;
    }
    let later = now + 5000;
    let before = reads();
    let got = cached(head, from, later);
    // One read per bucket from the newest copied row's (and the one before) up to now.
    let newest_copied = now - 30 * 60_000 + 59 * 30_000;
    let want = bucket_of(later) - (bucket_of(newest_copied) - 1).max(bucket_of(from)) + 1;
    assert_eq!((reads() - before) as i64, want, "reads for three new rows");
    assert_eq!(got, full(from, later));
    assert_eq!(got.last().unwrap().msn, 62);
    // The window moves on: old buckets drop out exactly as a full read would leave them.
    let from2 = from + 2 * BUCKET_MS;
    assert_eq!(cached(head, from2, later), full(from2, later));
    // A hole (a row not visible yet): answered as the store has it, and not kept.
    write(64, later + 1000);
    let got = cached(64, from2, later + 2000);
    assert_eq!(got, full(from2, later + 2000));
    write(63, later + 500);
    assert_eq!(cached(64, from2, later + 2000), full(from2, later + 2000));
    assert!(cached(64, from2, later + 2000).windows(2).all(|w| w[1].msn == w[0].msn + 1));
    // The stream started over (head behind the copy): read afresh.
    let other = IndexCache::new();
    let got = rt.block_on(other.range(&store, "k".into(), "s", "r", 64, from2, later + 2000)).unwrap();
    assert_eq!(got.last().unwrap().msn, 64);
    let got = rt.block_on(other.range(&store, "k".into(), "s", "r", 3, from2, later + 2000)).unwrap();
    assert_eq!(got, full(from2, later + 2000));
}
