//! `hls-dvr-upload export`: a stored range written to a file from any host that reaches the
//! cluster (ARCHITECTURE.md, "Clips as files"). The plan and the units are the ones the edge
//! serves (`hls_dvr_store::clip`), so the file is byte for byte what nginx sends for the range.
//! The next unit of segments is read while the current one is written; the file appears under
//! its name only once whole.

use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use hls_dvr_core::mp4::clip::Format;
use hls_dvr_core::params::PlaylistQuery;
use hls_dvr_store::clip::{self, Refusal};
use hls_dvr_store::{Store, StoreConfig};

/// Writes the file; the summary to log, or why not.
pub async fn write(
    cfg: &StoreConfig,
    stream: &str,
    rendition: Option<&str>,
    q: &PlaylistQuery,
    format: Format,
    out: &Path,
) -> Result<String, String> {
    let store = Store::connect(cfg).await.map_err(|e| e.to_string())?;
    let file = match clip::plan(&store, stream, rendition, q, format).await.map_err(|e| e.to_string())? {
        Ok(f) => f,
        Err(Refusal { status, reason }) => return Err(format!("{reason} ({status})")),
    };
    let part = out.with_extension(format!("{}.part", format.ext()));
    let mut f = tokio::fs::File::create(&part).await.map_err(|e| format!("{}: {e}", part.display()))?;
    let io = |e: std::io::Error| format!("{}: {e}", part.display());
    f.write_all(&file.header).await.map_err(io)?;
    let units = file.units.iter().map(|u| clip::unit(&store, &file.pieces[u.clone()]));
    let mut pieces = futures::stream::iter(units).buffered(2);
    while let Some(bufs) = pieces.next().await {
        for b in bufs.map_err(|e| e.to_string())? {
            f.write_all(&b).await.map_err(io)?;
        }
    }
    f.flush().await.map_err(io)?;
    f.sync_all().await.map_err(io)?;
    drop(f);
    tokio::fs::rename(&part, out).await.map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!(
        "wrote {} bytes ({} segments) of {stream} to {} ({})",
        file.len,
        file.pieces.len(),
        out.display(),
        file.name
    ))
}
