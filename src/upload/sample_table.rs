//! Each segment's sample table, recorded when it is stored so that a clip's MP4 header is written
//! from index reads alone (ARCHITECTURE.md, "Clips as files"). A segment whose media cannot be
//! read this way is stored all the same, without one: a clip over it is refused with the reason.

use hls_dvr_core::model::Container;
use hls_dvr_core::mp4::{fmp4, ts};

/// The stored form of a whole segment's sample table; `init` is the fMP4 init segment in force.
pub fn record(container: Container, data: &[u8], init: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let table = match container {
        Container::Ts => ts::remux(data)?.samples,
        Container::Fmp4 => {
            let init = fmp4::Init::parse(init.ok_or("no init segment")?)?;
            fmp4::segment_samples(data, &init)?
        }
        Container::WebVtt => return Err("subtitles have no samples".into()),
    };
    Ok(table.encode())
}
