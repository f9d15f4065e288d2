//! Chunk rows as a store may return them, corrupt ones included: a blob's metadata is either
//! refused or describes chunks that add up to the blob exactly; segment bytes are whole or not.
#![no_main]

use hls_dvr_core::model::Container;

use hls_dvr_store::BlobMeta;
use hls_dvr_upload::source::whole;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<16>() else { return };
    let meta = BlobMeta {
        size: u64::from_le_bytes(head[..8].try_into().unwrap()) % (1 << 36),
        chunks: u32::from_le_bytes(head[8..12].try_into().unwrap()) % 100_000,
        chunk_size: u32::from_le_bytes(head[12..16].try_into().unwrap()),
    };
    if meta.validate().is_ok() {
        let total: u64 = (0..meta.chunks).map(|i| meta.chunk_len(i)).sum();
        assert_eq!(total, meta.size);
        if meta.size > 0 {
            let r = meta.chunks_for(0, meta.size - 1);
            assert!(*r.start() == 0 && *r.end() < meta.chunks);
        }
        let i = rest.len() as u32 % meta.chunks;
        assert_eq!(meta.check_chunk(i, rest).is_ok(), rest.len() as u64 == meta.chunk_len(i));
    }
    let _ = whole(Container::Ts, rest);
    let _ = whole(Container::Fmp4, rest);
});
