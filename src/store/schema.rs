//! The data model as CQL (ARCHITECTURE.md, "Data model and write order").
//!
//! Three kinds of data, three lifetimes:
//! - `streams`: one row per rendition, overwritten on every segment (the head). Small and hot.
//! - `segment_index`: one row per segment, in time buckets so no partition grows without bound and
//!   every read is bounded from below by time (reads never touch expired partitions).
//! - `segment_chunks` / `init_chunks` / `thumbnail_chunks`: the bytes, split into chunks of at most [`MAX_CHUNK`], one
//!   partition per segment, read by exact key (never scanned).
//! - `ingest_claims`: which pushed copy of a segment holds each sequence number (two receivers),
//!   and `ingest_sources`, the same claims by what they hold.
//! - `markers` / `marker_ids`: a stream's timed markers by day, and where each id is.
//! - `sample_tables`: each segment's sample table (clips as files), partitioned like the index
//!   but apart from it, so playlist reads never carry them.
//! - `viewer_stats`: what edges counted of their viewers, a row per minute and per hour, by
//!   stream and day; kept far longer than media (`--stats-retention`).
//!
//! Everything expires by TTL; time-series tables use TimeWindowCompactionStrategy so whole
//! SSTables drop once their window expires, instead of compacting tombstones forever.

use std::fmt::Write as _;
use std::time::Duration;

/// Largest chunk written to the store: ScyllaDB warns on cells over 1 MiB.
pub const MAX_CHUNK: usize = 1 << 20;

/// How long segments stay in the store after their DVR window: players that paused at the edge
/// of the window still fetch them (RFC 8216bis 6.2.2), and the uploader's resume point survives a
/// short outage.
pub const TTL_MARGIN: Duration = Duration::from_secs(30 * 60);

/// How a keyspace is replicated, as given on the command line:
/// `SimpleStrategy:RF` or `NetworkTopologyStrategy:DC=RF[,DC=RF...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    Simple(u32),
    Network(Vec<(String, u32)>),
}

impl Replication {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (class, rest) = s.split_once(':').ok_or_else(|| {
            format!("replication {s:?}: expected SimpleStrategy:RF or NetworkTopologyStrategy:DC=RF,...")
        })?;
        let rf = |v: &str| -> Result<u32, String> {
            match v.trim().parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("replication {s:?}: {v:?} is not a replication factor (a positive integer)")),
            }
        };
        match class.trim() {
            "SimpleStrategy" => Ok(Replication::Simple(rf(rest)?)),
            "NetworkTopologyStrategy" => {
                let mut dcs = Vec::new();
                for part in rest.split(',') {
                    let (dc, n) =
                        part.split_once('=').ok_or_else(|| format!("replication {s:?}: {part:?} is not DC=RF"))?;
                    let dc = dc.trim();
                    if !is_identifier(dc) && !dc.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                        return Err(format!("replication {s:?}: bad data centre name {dc:?}"));
                    }
                    dcs.push((dc.to_string(), rf(n)?));
                }
                Ok(Replication::Network(dcs))
            }
            other => Err(format!(
                "replication {s:?}: unknown strategy {other:?} (SimpleStrategy or NetworkTopologyStrategy)"
            )),
        }
    }

    fn to_cql(&self) -> String {
        match self {
            Replication::Simple(n) => format!("{{'class': 'SimpleStrategy', 'replication_factor': '{n}'}}"),
            Replication::Network(dcs) => {
                let mut s = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, n) in dcs {
                    let _ = write!(s, ", '{dc}': '{n}'");
                }
                s.push('}');
                s
            }
        }
    }
}

/// Names we put into CQL text unquoted: keyspaces. Cassandra's own rule, shorter than 49 chars.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && s.len() <= 48
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Options of `hls-dvr-upload schema`.
#[derive(Debug, Clone)]
pub struct SchemaOptions {
    pub keyspace: String,
    pub replication: Replication,
    pub durable_writes: bool,
    /// The longest DVR window any player may ask for.
    pub dvr_depth: Duration,
    /// How long viewer statistics are kept.
    pub stats_retention: Duration,
}

/// Viewer statistics are kept 400 days by default: a year compared with the year before.
pub const DEFAULT_STATS_RETENTION: Duration = Duration::from_secs(400 * 86_400);

impl SchemaOptions {
    pub fn ttl_seconds(&self) -> u64 {
        (self.dvr_depth + TTL_MARGIN).as_secs()
    }

    /// TWCS wants a few dozen windows over the data's life.
    fn compaction_window_minutes(&self) -> u64 {
        (self.ttl_seconds() / 60 / 24).max(1)
    }

    /// Columns added since the first release, as `(table, column, type)`: `CREATE TABLE IF NOT
    /// EXISTS` leaves an existing table as it is, so running the schema command again after an
    /// upgrade adds them.
    pub const ADDED_COLUMNS: &'static [(&'static str, &'static str, &'static str)] = &[
        ("streams", "ended", "boolean"),
        ("streams", "media", "text"),
        ("segment_chunks", "ends", "list<bigint>"),
        ("init_chunks", "ends", "list<bigint>"),
        ("streams", "part_target_us", "bigint"),
        ("streams", "part_msn", "bigint"),
        ("streams", "part_no", "int"),
        ("streams", "grp", "text"),
        ("streams", "label", "text"),
        ("streams", "language", "text"),
        ("streams", "is_default", "boolean"),
        ("streams", "autoselect", "boolean"),
        ("streams", "characteristics", "text"),
        ("streams", "channels", "text"),
        ("streams", "audio_group", "text"),
        ("streams", "subtitles_group", "text"),
        ("streams", "captions", "list<frozen<tuple<text, text, text, text, boolean, boolean>>>"),
        ("streams", "key_frames", "boolean"),
        ("segment_index", "key_frame_offset", "bigint"),
        ("segment_index", "key_frame_size", "bigint"),
        ("segment_index", "thumbnail", "boolean"),
        ("streams", "thumbnails", "text"),
    ];

    /// The statements that create the schema, in order. All idempotent.
    pub fn statements(&self) -> Vec<String> {
        let ks = &self.keyspace;
        let ttl = self.ttl_seconds();
        let twcs = format!(
            "{{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'MINUTES', \
             'compaction_window_size': '{}'}}",
            self.compaction_window_minutes()
        );
        // Expired data is never deleted explicitly, so tombstones only come from TTL; a short grace
        // lets compaction drop them quickly.
        let common = format!("default_time_to_live = {ttl} AND gc_grace_seconds = 3600");
        // Segments and init segments are stored alike: one partition per blob, a row per chunk.
        let chunk_table = |table: &str| {
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.{table} (\
                 stream text, rendition text, msn bigint, chunk int, \
                 size bigint, chunks int, chunk_size int, ends list<bigint>, data blob, \
                 PRIMARY KEY ((stream, rendition, msn), chunk)) \
                 WITH CLUSTERING ORDER BY (chunk ASC) AND compaction = {twcs} AND {common}"
            )
        };
        vec![
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {} AND durable_writes = {}",
                self.replication.to_cql(),
                self.durable_writes
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.streams (\
                 stream text, rendition text, container text, target_duration int, \
                 bandwidth bigint, codecs text, resolution text, frame_rate double, \
                 head_msn bigint, head_disc_seq bigint, head_pdt timestamp, \
                 src_uri text, src_msn bigint, src_size bigint, src_mtime bigint, updated timestamp, \
                 ended boolean, media text, part_target_us bigint, part_msn bigint, part_no int, \
                 grp text, label text, language text, is_default boolean, autoselect boolean, \
                 characteristics text, channels text, audio_group text, subtitles_group text, \
                 captions list<frozen<tuple<text, text, text, text, boolean, boolean>>>, key_frames boolean, \
                 thumbnails text, PRIMARY KEY ((stream), rendition)) \
                 WITH compaction = {{'class': 'LeveledCompactionStrategy'}} AND {common}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.segment_index (\
                 stream text, rendition text, bucket bigint, msn bigint, \
                 duration_us bigint, pdt timestamp, discontinuity boolean, disc_seq bigint, \
                 init_msn bigint, size bigint, added timestamp, key_frame_offset bigint, key_frame_size bigint, \
                 thumbnail boolean, PRIMARY KEY ((stream, rendition, bucket), msn)) \
                 WITH CLUSTERING ORDER BY (msn ASC) AND compaction = {twcs} AND {common}"
            ),
            chunk_table("segment_chunks"),
            chunk_table("init_chunks"),
            chunk_table("thumbnail_chunks"),
            // Which pushed copy holds each sequence number: one small partition per number, read
            // and written by exact key with lightweight transactions (never scanned).
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.ingest_claims (\
                 stream text, rendition text, msn bigint, source text, receiver text, pdt timestamp, \
                 duration_us bigint, discontinuity boolean, disc_seq bigint, added timestamp, \
                 PRIMARY KEY ((stream, rendition, msn))) \
                 WITH compaction = {twcs} AND {common}"
            ),
            // The same claims found by what they hold: a copy that arrives after its segment
            // was placed (a receiver catching up after a restart) finds its number here.
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.ingest_sources (\
                 stream text, rendition text, source text, msn bigint, \
                 PRIMARY KEY ((stream, rendition, source))) \
                 WITH compaction = {twcs} AND {common}"
            ),
            // Low-latency parts: which chunks of a segment's blob make each part. One small
            // partition per segment, read by exact key (ARCHITECTURE.md, "Parts").
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.parts (\
                 stream text, rendition text, msn bigint, part int, first_chunk int, sizes list<bigint>, \
                 duration_us bigint, independent boolean, discontinuity boolean, \
                 PRIMARY KEY ((stream, rendition, msn), part)) \
                 WITH CLUSTERING ORDER BY (part ASC) AND compaction = {twcs} AND {common}"
            ),
            // Markers (ad breaks, timed metadata) by stream and day of their start: a playlist
            // reads the day or two its span and the longest marker reach.
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.markers (\
                 stream text, day bigint, start timestamp, id text, class text, duration_us bigint, \
                 planned_duration_us bigint, scte35_out text, scte35_in text, scte35_cmd text, \
                 attributes list<frozen<tuple<text, text>>>, cue boolean, \
                 PRIMARY KEY ((stream, day), start, id)) \
                 WITH CLUSTERING ORDER BY (start ASC, id ASC) AND compaction = {twcs} AND {common}"
            ),
            // Where each marker id is: the same id posted again replaces its marker, even at
            // another start.
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.marker_ids (stream text, id text, start timestamp, \
                 PRIMARY KEY ((stream, id))) WITH compaction = {twcs} AND {common}"
            ),
            // Viewer statistics (ARCHITECTURE.md, "Audience"): each edge writes a row per stream
            // and rendition each minute, and rewrites its hour row; a query reads one partition
            // per day. A day's windows drop whole once the retention passes.
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.viewer_stats (\
                 stream text, day int, step int, t timestamp, rendition text, edge text, since timestamp, \
                 sessions blob, live blob, shifted blob, clip blob, forged blob, \
                 new_sessions bigint, watch_ms bigint, bytes bigint, minutes blob, \
                 PRIMARY KEY ((stream, day), step, t, rendition, edge, since)) \
                 WITH compaction = {{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', \
                 'compaction_window_size': '1'}} AND default_time_to_live = {} AND gc_grace_seconds = 3600",
                self.stats_retention.as_secs()
            ),
            // Read only to write a clip's header: by bucket and msn range, like the index.
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.sample_tables (\
                 stream text, rendition text, bucket bigint, msn bigint, samples blob, \
                 PRIMARY KEY ((stream, rendition, bucket), msn)) \
                 WITH CLUSTERING ORDER BY (msn ASC) AND compaction = {twcs} AND {common}"
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_parses_both_strategies_and_rejects_junk() {
        assert_eq!(Replication::parse("SimpleStrategy:3"), Ok(Replication::Simple(3)));
        assert_eq!(
            Replication::parse("NetworkTopologyStrategy:dc1=3,dc-2=2"),
            Ok(Replication::Network(vec![("dc1".into(), 3), ("dc-2".into(), 2)]))
        );
        assert!(Replication::parse("SimpleStrategy:0").is_err());
        assert!(Replication::parse("SimpleStrategy").is_err());
        assert!(Replication::parse("Foo:1").is_err());
        assert!(Replication::parse("NetworkTopologyStrategy:dc1").is_err());
        assert!(Replication::parse("NetworkTopologyStrategy:d'c=1").is_err());
    }

    #[test]
    fn statements_carry_options() {
        let o = SchemaOptions {
            keyspace: "dvr".into(),
            replication: Replication::Simple(1),
            durable_writes: false,
            dvr_depth: Duration::from_secs(7200),
            stats_retention: DEFAULT_STATS_RETENTION,
        };
        let s = o.statements();
        assert!(s[0].contains("durable_writes = false"));
        assert!(s[0].contains("'replication_factor': '1'"));
        let stats = s.iter().filter(|t| t.contains("viewer_stats")).collect::<Vec<_>>();
        assert_eq!(stats.len(), 1);
        assert!(stats[0].contains("default_time_to_live = 34560000"));
        assert!(s
            .iter()
            .skip(1)
            .filter(|t| !t.contains("viewer_stats"))
            .all(|t| t.contains("default_time_to_live = 9000")));
        assert!(s[2].contains("TimeWindowCompactionStrategy"));
        assert!(s[2].contains("'compaction_window_size': '6'"));
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("hls_dvr1"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("a;drop"));
    }
}
