//! What hls-dvr stores, as plain Rust: a rendition with its head (the newest stored segment), the
//! index entries of its segments, and the time buckets the index is partitioned by. The store's
//! rows carry these types; everything above the store works with them alone.

/// Width of one index partition, in milliseconds of ingest time. A 2 h window reads 13 partitions
/// of at most 300 rows each (at 2 s segments).
pub const BUCKET_MS: i64 = 10 * 60 * 1000;

/// The index bucket of a segment stored at `ingest_ms`.
pub fn bucket_of(ingest_ms: i64) -> i64 {
    ingest_ms.div_euclid(BUCKET_MS)
}

/// Container of a rendition's media segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Ts,
    Fmp4,
    /// WebVTT subtitles, one file per segment.
    WebVtt,
}

impl Container {
    pub fn as_str(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "fmp4",
            Container::WebVtt => "webvtt",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ts" => Some(Container::Ts),
            "fmp4" => Some(Container::Fmp4),
            "webvtt" => Some(Container::WebVtt),
            _ => None,
        }
    }
    /// File extension of media segments in URLs.
    pub fn segment_ext(self) -> &'static str {
        match self {
            Container::Ts => "ts",
            Container::Fmp4 => "m4s",
            Container::WebVtt => "vtt",
        }
    }
    /// The container a segment URL's extension names.
    pub fn from_segment_ext(ext: &str) -> Option<Self> {
        match ext {
            "ts" => Some(Container::Ts),
            "m4s" => Some(Container::Fmp4),
            "vtt" => Some(Container::WebVtt),
            _ => None,
        }
    }
    /// Content-Type of media segments.
    pub fn content_type(self) -> &'static str {
        match self {
            Container::Ts => "video/mp2t",
            Container::Fmp4 => "video/iso.segment",
            Container::WebVtt => "text/vtt; charset=utf-8",
        }
    }
}

/// What a rendition carries: audio and video together (a segmenter's usual ladder), or one
/// track alone (a CMAF push sends each track apart; a segmenter lists alternative audio and
/// subtitles as EXT-X-MEDIA groups the video variants refer to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum MediaType {
    #[default]
    Muxed,
    Video,
    Audio,
    Subtitles,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Muxed => "muxed",
            MediaType::Video => "video",
            MediaType::Audio => "audio",
            MediaType::Subtitles => "subtitles",
        }
    }
    /// An EXT-X-MEDIA rendition (listed in a group), not a variant of its own.
    pub fn is_alternative(self) -> bool {
        matches!(self, MediaType::Audio | MediaType::Subtitles)
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "muxed" => Some(MediaType::Muxed),
            "video" => Some(MediaType::Video),
            "audio" => Some(MediaType::Audio),
            "subtitles" => Some(MediaType::Subtitles),
            _ => None,
        }
    }
}

/// Where the uploader stopped in the segmenter's output, so a restart resumes exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcePos {
    pub uri: String,
    /// The segmenter's own media sequence number of that segment (not the store's `msn`).
    pub seg_msn: i64,
    pub size: i64,
    /// Modification time of the file, in nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// One rendition of a stream, with its head (the newest stored segment).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub name: String,
    pub container: Container,
    pub target_duration: i32,
    pub bandwidth: Option<i64>,
    pub codecs: Option<String>,
    pub resolution: Option<String>,
    pub frame_rate: Option<f64>,
    pub head_msn: i64,
    pub head_disc_seq: i64,
    /// Program date-time of the head segment, ms since the epoch.
    pub head_pdt_ms: i64,
    pub source: SourcePos,
    pub updated_ms: i64,
    /// The segmenter ended the stream (EXT-X-ENDLIST) and every segment it listed is stored;
    /// cleared by the next segment stored.
    pub ended: bool,
    pub media: MediaType,
    /// Low-latency parts, for a rendition pushed fragment by fragment (ARCHITECTURE.md, "Parts").
    pub parts: Option<PartHead>,
    /// What the segmenter's multivariant playlist said of it (ARCHITECTURE.md, "Groups").
    pub grouping: Grouping,
    /// The uploader records where its segments' key frames are: it has an I-frame playlist.
    pub key_frames: bool,
    /// The size (`WxH`) of the thumbnails the uploader stores of its segments: it has an image
    /// playlist.
    pub thumbnails: Option<String>,
}

/// How a rendition joins the multivariant playlist's groups, as the segmenter declared it
/// (RFC 8216bis 4.4.6.1-2). An alternative (audio or subtitles) carries its EXT-X-MEDIA
/// attributes; a variant names the groups it plays with and the captions its video carries.
/// Everything is empty for a rendition without a multivariant playlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grouping {
    /// GROUP-ID of an alternative.
    pub group: Option<String>,
    /// NAME of an alternative (the rendition's name when not given).
    pub label: Option<String>,
    pub language: Option<String>,
    pub default: bool,
    pub autoselect: bool,
    pub characteristics: Option<String>,
    pub channels: Option<String>,
    /// Of a variant: the AUDIO and SUBTITLES groups it names.
    pub audio: Option<String>,
    pub subtitles: Option<String>,
    /// Of a variant: the CLOSED-CAPTIONS its video carries (one group).
    pub captions: Vec<Caption>,
}

/// A CEA-608/708 caption channel carried in the video (EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caption {
    pub group: String,
    /// INSTREAM-ID: CC1-CC4 or SERVICE1-63.
    pub instream_id: String,
    pub label: String,
    pub language: Option<String>,
    pub default: bool,
    pub autoselect: bool,
}

impl Caption {
    /// INSTREAM-ID values RFC 8216bis allows.
    pub fn valid_instream_id(s: &str) -> bool {
        match (s.strip_prefix("CC"), s.strip_prefix("SERVICE")) {
            (Some(n), _) => matches!(n, "1" | "2" | "3" | "4"),
            (_, Some(n)) => n.parse::<u8>().is_ok_and(|n| (1..=63).contains(&n)) && !n.starts_with('0'),
            _ => false,
        }
    }
}

/// A part's place: the segment it belongs to, and its index within that segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartPos {
    pub msn: i64,
    pub part: i32,
}

/// What the head row says about a rendition's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartHead {
    /// EXT-X-PART-INF:PART-TARGET, in microseconds: no part is longer.
    pub target_us: i64,
    /// The newest part stored, once one is.
    pub newest: Option<PartPos>,
}

/// One part (an LL-HLS partial segment): one pushed fragment, stored as chunks
/// `first_chunk..first_chunk + sizes.len()` of its segment's blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub msn: i64,
    pub index: i32,
    pub duration_us: i64,
    /// It starts with a key frame (INDEPENDENT=YES).
    pub independent: bool,
    /// Its segment follows a discontinuity (the claim's, known from the first part on).
    pub discontinuity: bool,
    pub first_chunk: u32,
    /// The sizes of its chunks.
    pub sizes: Vec<u64>,
}

impl Part {
    pub fn pos(&self) -> PartPos {
        PartPos { msn: self.msn, part: self.index }
    }
    pub fn size(&self) -> u64 {
        self.sizes.iter().sum()
    }
}

/// A pushed segment's hold on a sequence number: the first receiver to claim the number for
/// its copy fixes the values every receiver writes for that segment (ARCHITECTURE.md, "Two
/// receivers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// What the encoder sent, the same at every receiver: its own segment number with the
    /// segment's media time or a hash of its bytes.
    pub source: String,
    /// The receiver process that claimed it.
    pub receiver: String,
    pub pdt_ms: i64,
    pub duration_us: i64,
    pub discontinuity: bool,
    pub disc_seq: i64,
    /// The index row's `added_ms` (and so its bucket).
    pub added_ms: i64,
}

/// One segment in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub msn: i64,
    pub duration_us: i64,
    /// Program date-time of the segment's first sample, ms since the epoch.
    pub pdt_ms: i64,
    /// An EXT-X-DISCONTINUITY precedes this segment.
    pub discontinuity: bool,
    /// Discontinuities up to and including this segment's own.
    pub disc_seq: i64,
    /// The init segment (fMP4), named by the first media sequence number that used it.
    pub init_msn: Option<i64>,
    pub size: i64,
    /// When the uploader stored it, ms since the epoch (decides the bucket).
    pub added_ms: i64,
    /// Where its first key frame lies in it, when the uploader found one (an I-frame playlist
    /// lists it; ARCHITECTURE.md, "Trick play").
    pub key_frame: Option<ByteRange>,
    /// A thumbnail of its first frame is stored (`{msn}.jpg`).
    pub thumbnail: bool,
}

/// Bytes `offset..offset + length` of a blob (EXT-X-BYTERANGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// Sorts index rows by msn, keeping the newest copy of each: an uploader that crashed between an
/// index write and its head write rewrites that row, possibly into a later bucket.
pub fn sort_newest_per_msn(rows: &mut Vec<IndexEntry>) {
    rows.sort_by_key(|e| (e.msn, e.added_ms));
    rows.dedup_by(|later, earlier| {
        if later.msn == earlier.msn {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_extensions_name_containers() {
        for c in [Container::Ts, Container::Fmp4] {
            assert_eq!(Container::from_segment_ext(c.segment_ext()), Some(c));
            assert_eq!(Container::parse(c.as_str()), Some(c));
        }
        assert_eq!(Container::from_segment_ext("mp4"), None);
    }

    #[test]
    fn buckets_floor_negative_and_positive() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(BUCKET_MS - 1), 0);
        assert_eq!(bucket_of(BUCKET_MS), 1);
        assert_eq!(bucket_of(-1), -1);
    }
}
