//! The command line, parsed with clap (derive): `hls-dvr-upload schema ...` creates the schema;
//! without a subcommand the uploader watches folders and stores their segments. Values are checked
//! here (names, durations, contact points); files are read later, by [`Connection::store_config`]
//! and [`check_dirs`], so that errors name the flag and the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand};
use scylla::statement::Consistency;

use hls_dvr_store::schema::{is_identifier, Replication, SchemaOptions};
use hls_dvr_store::{parse_consistency, parse_datacenter, parse_nodes, Secrets, StoreConfig};

use super::source::valid_name;

const AFTER_HELP: &str = "\
Durations use nginx's syntax: 200ms, 90s, 30m, 2h, 1h 30m, 1d (a bare number is seconds).
Logging: RUST_LOG (default info).
Exit status: 0 after SIGINT or SIGTERM, 1 when the store cannot be used, 2 for bad arguments.";

/// Uploads live HLS segments from segmenter output folders into Cassandra / ScyllaDB.
///
/// Watches each stream's folder (a media playlist with its segments, or a master playlist with
/// one media playlist per rendition) and stores every new segment, until SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(
    name = "hls-dvr-upload",
    version,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    // A flag given again replaces its value, as in most Unix tools (a wrapper script adds defaults).
    args_override_self = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Creates the keyspace and tables (idempotent).
    #[command(after_help = AFTER_HELP)]
    Schema(SchemaArgs),
    /// Stores a marker (ad break, timed metadata) of a stream: the JSON a receiver takes at
    /// POST /ingest/STREAM/markers, such as
    /// '{"id": "break-1", "start": "now", "duration": 30, "scte35_out": "0xFC30..."}'
    #[command(after_help = AFTER_HELP)]
    Mark(MarkArgs),
    /// Writes a stored range as one file: the bytes nginx sends for
    /// STREAM[/RENDITION]/clip.mp4?start=T&end=U (clip.ts with --out FILE.ts)
    #[command(after_help = AFTER_HELP)]
    Export(ExportArgs),
}

#[derive(Debug, Args)]
struct ExportArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The stream
    #[arg(long, value_name = "NAME", value_parser = stream_name)]
    stream: String,
    /// One rendition (else the highest-bandwidth video with its default audio)
    #[arg(long, value_name = "NAME", value_parser = stream_name)]
    rendition: Option<String>,
    /// Where the range starts: epoch seconds, ISO 8601 with a zone, now, or -SECONDS
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    start: String,
    /// Where it ends, in the same forms
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    end: String,
    /// The file to write; a name ending in .ts writes the TS rendition's segments as they are
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct MarkArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The stream the marker belongs to
    #[arg(long, value_name = "NAME", value_parser = stream_name)]
    stream: String,
    /// The marker, as JSON
    #[arg(value_name = "JSON")]
    marker: String,
}

/// The longest range `export` takes: nginx's default `hls_dvr_max_range`.
const EXPORT_MAX_RANGE_MS: i64 = 24 * 3_600_000;

/// A time as a query value: `+` (ISO 8601 zones) percent-encoded, as a URL would carry it.
fn encode(t: &str) -> String {
    t.replace('%', "%25").replace('&', "%26").replace('+', "%2B")
}

fn stream_name(s: &str) -> Result<String, String> {
    if valid_name(s) {
        Ok(s.to_string())
    } else {
        Err("use 1 to 64 of A-Z a-z 0-9 _ -".into())
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
struct ConnectionArgs {
    /// Contact points
    #[arg(long = "cassandra", value_name = "HOST:PORT[,HOST:PORT...]", value_parser = nodes, required = true)]
    nodes: Option<Nodes>,
    /// Keyspace: letters, digits and _, starting with a letter
    #[arg(long, value_name = "K", value_parser = keyspace, required = true)]
    keyspace: Option<String>,
    /// PasswordAuthenticator user; needs --password-file
    #[arg(long, value_name = "U")]
    username: Option<String>,
    /// The password, on the file's first line
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// TLS to the cluster, trusting the CA certificate(s) in FILE (PEM)
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Client certificate (PEM), with --tls-key, for clusters that require one
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM)
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Send requests to this datacenter's nodes only (token-aware either way)
    #[arg(long, value_name = "DC", value_parser = parse_datacenter)]
    local_dc: Option<String>,
    /// A request unanswered after D is sent to another replica too (default off)
    #[arg(long, value_name = "D", value_parser = duration)]
    speculative_retry: Option<Duration>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Streams")]
struct RunArgs {
    /// A stream: NAME is [A-Za-z0-9_-]{1,64}, DIR must exist
    #[arg(long = "stream", num_args = 2, value_names = ["NAME", "DIR"])]
    streams: Vec<String>,
    /// More streams, one "NAME DIR" a line, # comments; relative DIRs are relative to FILE's folder
    #[arg(long = "config", value_name = "FILE")]
    configs: Vec<PathBuf>,
    /// Segment uploads in flight at once, over all streams
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    max_concurrent: u16,
    /// How often playlists are read (10ms to 60s)
    #[arg(long, value_name = "D", default_value = "200ms", value_parser = poll_interval)]
    poll_interval: Duration,
    /// Remove each media segment file once stored (never playlists or init segments)
    #[arg(long)]
    delete_after_upload: bool,
    /// The MPEG-TS timestamp (90 kHz) of WebVTT cue time 0, written as X-TIMESTAMP-MAP into
    /// subtitle segments that have none (ffmpeg's MPEG-TS output: 126000; its fMP4 output: 0)
    #[arg(long, value_name = "TICKS", default_value_t = crate::vtt::FFMPEG_TS_MPEGTS,
          value_parser = clap::value_parser!(i64).range(0..(1 << 33)))]
    vtt_mpegts: i64,
    /// Store a JPEG thumbnail WIDTH pixels wide (default 160) of each video segment's first
    /// frame, made by ffmpeg on this host, for scrubbing (an image playlist per rendition)
    #[arg(long, value_name = "WIDTH", num_args = 0..=1, default_missing_value = "160",
          value_parser = clap::value_parser!(u32).range(16..=1920))]
    thumbnails: Option<u32>,
    /// ONE, QUORUM, LOCAL_QUORUM, ... [default: LOCAL_QUORUM]
    #[arg(long, value_name = "C", value_parser = parse_consistency)]
    write_consistency: Option<Consistency>,
    /// Timeout of each write [default: 5s]
    #[arg(long, value_name = "D", value_parser = positive_duration)]
    write_timeout: Option<Duration>,
    /// Serve Prometheus metrics at http://ADDR/metrics (such as 127.0.0.1:9110)
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    #[command(flatten)]
    push: PushArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Push ingest")]
struct PushArgs {
    /// Receive pushed HLS and CMAF at http://ADDR/ingest/STREAM/ (such as 0.0.0.0:8088)
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Pushes must carry "Authorization: Bearer TOKEN" with a token of FILE (one a line)
    #[arg(long, value_name = "FILE")]
    ingest_token_file: Option<PathBuf>,
    /// Pushes may carry basic credentials of FILE ("user:password" lines)
    #[arg(long, value_name = "FILE")]
    ingest_basic_file: Option<PathBuf>,
    /// Pushes must come from this address range (repeatable; such as 10.0.0.0/8)
    #[arg(long = "ingest-allow", value_name = "CIDR")]
    ingest_allow: Vec<String>,
    /// Largest segment, fragment, init segment or playlist pushed (bytes, or with k, m or g)
    #[arg(long, value_name = "SIZE", default_value = "64m", value_parser = size)]
    max_segment_size: usize,
    /// A push whose body sends nothing for this long is closed
    #[arg(long, value_name = "D", default_value = "10s", value_parser = positive_duration)]
    ingest_idle_timeout: Duration,
    /// Segment length cut from DASH-IF Interface 1 tracks (at the next key frame)
    #[arg(long, value_name = "D", default_value = "2s", value_parser = positive_duration)]
    track_segment: Duration,
}

/// `65536`, `64k`, `64m`, `1g` (powers of 1024).
pub fn size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1usize << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (&t[..], 1),
    };
    match num.parse::<usize>().ok().and_then(|n| n.checked_mul(mul)) {
        Some(n) if n >= 1024 => Ok(n),
        _ => Err(format!("{s:?} is not a size of at least 1k (such as 65536, 64k, 64m)")),
    }
}

#[derive(Debug, Args)]
struct SchemaArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// SimpleStrategy:RF or NetworkTopologyStrategy:DC=RF[,DC=RF...]
    #[arg(long, value_name = "R", default_value = "SimpleStrategy:1", value_parser = Replication::parse)]
    replication: Replication,
    /// durable_writes of the keyspace: true or false
    #[arg(long, value_name = "B", default_value = "true", value_parser = boolean, action = clap::ArgAction::Set)]
    durable_writes: bool,
    /// The longest DVR window; data lives this plus 30m
    #[arg(long, value_name = "D", default_value = "2h", value_parser = dvr_depth)]
    dvr_depth: Duration,
    /// How long viewer statistics are kept
    #[arg(long, value_name = "D", default_value = "400d", value_parser = stats_retention)]
    stats_retention: Duration,
}

/// Contact points, parsed (a newtype: clap takes a bare `Vec` for repeated values).
#[derive(Debug, Clone)]
struct Nodes(Vec<String>);

fn nodes(s: &str) -> Result<Nodes, String> {
    parse_nodes(s).map(Nodes)
}

fn keyspace(s: &str) -> Result<String, String> {
    if is_identifier(s) {
        Ok(s.to_string())
    } else {
        Err("a keyspace is letters, digits and _, starting with a letter, at most 48".into())
    }
}

/// The project's one duration syntax, nginx's (see `hls_dvr_core::duration`).
pub fn duration(s: &str) -> Result<Duration, String> {
    hls_dvr_core::duration::parse(s)
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    duration(s).and_then(|d| if d.is_zero() { Err("must be positive".into()) } else { Ok(d) })
}

fn poll_interval(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(60) {
        return Err("between 10ms and 60s".into());
    }
    Ok(d)
}

fn dvr_depth(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_secs(60) {
        return Err("at least 1m".into());
    }
    Ok(d)
}

fn stats_retention(s: &str) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < Duration::from_secs(86_400) {
        return Err("at least 1d".into());
    }
    // Cassandra's TTL limit is 20 years.
    if d > Duration::from_secs(20 * 365 * 86_400) {
        return Err("at most 20 years".into());
    }
    Ok(d)
}

fn boolean(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub dir: PathBuf,
}

/// How to reach the cluster, as given. Files are read by [`Connection::store_config`].
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub secrets: Secrets,
    pub local_dc: Option<String>,
    pub write_consistency: Option<Consistency>,
    pub write_timeout: Option<Duration>,
    pub speculative_retry: Option<Duration>,
}

impl Connection {
    /// Reads the password and TLS files; errors name the flag and the file.
    pub fn store_config(&self) -> Result<StoreConfig, String> {
        let mut c = StoreConfig::new(self.nodes.clone(), &self.keyspace);
        (c.credentials, c.tls) =
            self.secrets.load(["--username", "--password-file", "--tls-ca", "--tls-cert", "--tls-key"])?;
        c.local_dc = self.local_dc.clone();
        c.speculative_retry = self.speculative_retry;
        if let Some(w) = self.write_consistency {
            c.write_consistency = w;
        }
        if let Some(t) = self.write_timeout {
            c.write_timeout = t;
        }
        Ok(c)
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub connection: Connection,
    pub streams: Vec<StreamSpec>,
    pub max_concurrent: usize,
    pub poll_interval: Duration,
    pub delete_after_upload: bool,
    /// `--vtt-mpegts`: see [`crate::vtt`].
    pub vtt_mpegts: i64,
    /// `--thumbnails [WIDTH]`: see [`crate::thumbnail`].
    pub thumbnail_width: Option<u32>,
    /// `--metrics ADDR`: serve Prometheus metrics on this address.
    pub metrics: Option<std::net::SocketAddr>,
    /// `--listen ADDR` and its settings: receive pushes.
    pub push: Option<PushOptions>,
}

/// The push receiver's options.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub listen: SocketAddr,
    pub token_file: Option<PathBuf>,
    pub basic_file: Option<PathBuf>,
    pub allow: Vec<String>,
    pub max_segment: usize,
    pub idle: Duration,
    pub track_segment: Duration,
}

#[derive(Debug, Clone)]
pub enum Command {
    Schema {
        connection: Connection,
        opts: SchemaOptions,
    },
    /// `mark`: the marker checked already.
    Mark {
        connection: Connection,
        stream: String,
        marker: hls_dvr_core::markers::Marker,
    },
    /// `export`: the range checked already.
    Export {
        connection: Connection,
        stream: String,
        rendition: Option<String>,
        query: hls_dvr_core::params::PlaylistQuery,
        format: hls_dvr_core::mp4::clip::Format,
        out: PathBuf,
    },
    Run(RunOptions),
}
/// Streams of a config file: `NAME DIR` lines, `#` comments, blank lines.
pub fn parse_config(text: &str, base: &Path) -> Result<Vec<StreamSpec>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (name, dir) = line
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .filter(|(_, b)| !b.is_empty())
            .ok_or_else(|| format!("line {}: expected \"NAME DIR\", got {line:?}", n + 1))?;
        let dir = Path::new(dir);
        out.push(StreamSpec {
            name: name.to_string(),
            dir: if dir.is_absolute() { dir.to_path_buf() } else { base.join(dir) },
        });
    }
    Ok(out)
}

impl ConnectionArgs {
    fn into_connection(self) -> Connection {
        // clap enforces both (`required`); the options only let `schema` take them instead.
        let (Some(Nodes(nodes)), Some(keyspace)) = (self.nodes, self.keyspace) else {
            unreachable!("--cassandra and --keyspace are required")
        };
        Connection {
            nodes,
            keyspace,
            secrets: Secrets {
                username: self.username,
                password_file: self.password_file,
                tls_ca: self.tls_ca,
                tls_cert: self.tls_cert,
                tls_key: self.tls_key,
            },
            local_dc: self.local_dc,
            write_consistency: None,
            write_timeout: None,
            speculative_retry: self.speculative_retry.filter(|d| !d.is_zero()),
        }
    }
}

/// Parses the arguments after the program name. Checks syntax and names, reads `--config` files,
/// and leaves the stream folders to [`check_dirs`]. `--help` and `--version` come back as errors
/// whose [`clap::Error::exit_code`] is 0.
pub fn parse(args: &[String]) -> Result<Command, clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("hls-dvr-upload".to_string()).chain(args.iter().cloned()))?;
    let invalid = |msg: String| Cli::command().error(ErrorKind::ValueValidation, msg);
    if let Some(Sub::Schema(a)) = cli.command {
        let connection = a.connection.into_connection();
        let opts = SchemaOptions {
            keyspace: connection.keyspace.clone(),
            replication: a.replication,
            durable_writes: a.durable_writes,
            dvr_depth: a.dvr_depth,
            stats_retention: a.stats_retention,
        };
        return Ok(Command::Schema { connection, opts });
    }
    if let Some(Sub::Mark(a)) = cli.command {
        let marker = crate::marker::from_json(a.marker.as_bytes(), hls_dvr_core::clock::now_ms())
            .map_err(|e| invalid(format!("the marker: {e}")))?;
        return Ok(Command::Mark { connection: a.connection.into_connection(), stream: a.stream, marker });
    }
    if let Some(Sub::Export(a)) = cli.command {
        // The times as a playlist URL gives them, with the edge's default longest range.
        let query = format!("start={}&end={}", encode(&a.start), encode(&a.end));
        let query =
            hls_dvr_core::params::PlaylistQuery::parse(&query, hls_dvr_core::clock::now_ms(), EXPORT_MAX_RANGE_MS)
                .map_err(|e| invalid(format!("the range: {e}")))?;
        let format = match a.out.extension().and_then(|e| e.to_str()) {
            Some("ts") => hls_dvr_core::mp4::clip::Format::Ts,
            _ => hls_dvr_core::mp4::clip::Format::Mp4,
        };
        return Ok(Command::Export {
            connection: a.connection.into_connection(),
            stream: a.stream,
            rendition: a.rendition,
            query,
            format,
            out: a.out,
        });
    }
    let mut connection = cli.connection.into_connection();
    let run = cli.run;
    connection.write_consistency = run.write_consistency;
    connection.write_timeout = run.write_timeout;
    // clap gives `--stream` two values per occurrence, in order.
    let mut streams: Vec<StreamSpec> =
        run.streams.chunks_exact(2).map(|p| StreamSpec { name: p[0].clone(), dir: PathBuf::from(&p[1]) }).collect();
    for c in &run.configs {
        let text = std::fs::read_to_string(c).map_err(|e| invalid(format!("--config {}: {e}", c.display())))?;
        let base = c.parent().unwrap_or(Path::new("."));
        streams.extend(parse_config(&text, base).map_err(|e| invalid(format!("--config {}: {e}", c.display())))?);
    }
    let p = run.push;
    let push = match p.listen {
        Some(listen) => Some(PushOptions {
            listen,
            token_file: p.ingest_token_file,
            basic_file: p.ingest_basic_file,
            allow: p.ingest_allow,
            max_segment: p.max_segment_size,
            idle: p.ingest_idle_timeout,
            track_segment: p.track_segment,
        }),
        None if p.ingest_token_file.is_some() || p.ingest_basic_file.is_some() || !p.ingest_allow.is_empty() => {
            return Err(invalid("--ingest-token-file, --ingest-basic-file and --ingest-allow need --listen".into()));
        }
        None => None,
    };
    if streams.is_empty() && push.is_none() {
        return Err(Cli::command().error(
            ErrorKind::MissingRequiredArgument,
            "no streams: give --stream NAME DIR, --config FILE or --listen ADDR",
        ));
    }
    for (i, s) in streams.iter().enumerate() {
        if !valid_name(&s.name) {
            return Err(invalid(format!("stream name {:?}: use 1 to 64 of A-Z a-z 0-9 _ -", s.name)));
        }
        if streams[..i].iter().any(|o| o.name == s.name) {
            return Err(invalid(format!("stream {:?} is given twice", s.name)));
        }
    }
    Ok(Command::Run(RunOptions {
        connection,
        streams,
        max_concurrent: run.max_concurrent as usize,
        poll_interval: run.poll_interval,
        delete_after_upload: run.delete_after_upload,
        vtt_mpegts: run.vtt_mpegts,
        thumbnail_width: run.thumbnails,
        metrics: run.metrics,
        push,
    }))
}

/// Checks every stream folder exists.
pub fn check_dirs(o: &RunOptions) -> Result<(), String> {
    for s in &o.streams {
        match std::fs::metadata(&s.dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("stream {}: {} is not a directory", s.name, s.dir.display())),
            Err(e) => return Err(format!("stream {}: {}: {e}", s.name, s.dir.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn durations_are_nginx_syntax_within_each_flag_bounds() {
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(poll_interval("50ms"), Ok(Duration::from_millis(50)));
        assert!(poll_interval("5ms").is_err() && poll_interval("2m").is_err());
        assert!(positive_duration("0s").is_err());
        assert_eq!(dvr_depth("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(dvr_depth("59s").is_err());
    }

    #[test]
    fn schema_command_defaults_and_options() {
        let Command::Schema { connection, opts } =
            parse(&v("schema --cassandra a:9042,b:9042 --keyspace dvr")).unwrap()
        else {
            panic!()
        };
        assert_eq!(connection.nodes, vec!["a:9042", "b:9042"]);
        assert_eq!(connection.keyspace, "dvr");
        assert_eq!(opts.keyspace, "dvr");
        assert_eq!(opts.replication, Replication::Simple(1));
        assert!(opts.durable_writes);
        assert_eq!(opts.dvr_depth, Duration::from_secs(7200));
        assert_eq!(opts.stats_retention, Duration::from_secs(400 * 86_400));
        let Command::Schema { opts, .. } = parse(&v(
            "schema --cassandra a:1 --keyspace k --replication NetworkTopologyStrategy:dc1=3 --durable-writes=false --dvr-depth 1h30m --stats-retention 90d",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(opts.replication, Replication::Network(vec![("dc1".into(), 3)]));
        assert!(!opts.durable_writes);
        assert_eq!(opts.dvr_depth, Duration::from_secs(5400));
        assert_eq!(opts.stats_retention, Duration::from_secs(90 * 86_400));
        for bad in ["12h", "30y", "soon"] {
            assert!(
                parse(&v(&format!("schema --cassandra a:1 --keyspace k --stats-retention {bad}"))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn run_command() {
        let Command::Run(o) = parse(&v(
            "--cassandra 127.0.0.1:9042 --keyspace k --stream a /tmp/a --stream b-2 /tmp/b --max-concurrent 4 \
             --poll-interval 50ms --delete-after-upload --write-consistency one --write-timeout 2s",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.streams.len(), 2);
        assert_eq!(o.streams[1], StreamSpec { name: "b-2".into(), dir: "/tmp/b".into() });
        assert_eq!(o.max_concurrent, 4);
        assert_eq!(o.poll_interval, Duration::from_millis(50));
        assert!(o.delete_after_upload);
        let cfg = o.connection.store_config().unwrap();
        assert_eq!(cfg.write_consistency, Consistency::One);
        assert_eq!(cfg.write_timeout, Duration::from_secs(2));
        assert!(cfg.credentials.is_none() && cfg.tls.is_none() && cfg.local_dc.is_none());
        let Command::Run(o) = parse(&v(
            "--cassandra h:1 --keyspace k --poll-interval 1s --stream a /x --poll-interval 60s --stream b /y",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.poll_interval, Duration::from_secs(60), "the last value given wins");
        assert_eq!(o.streams.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a", "b"], "streams add up");
        let Command::Run(o) = parse(&v("--cassandra h:1 --keyspace k --stream a /x")).unwrap() else { panic!() };
        assert_eq!((o.max_concurrent, o.poll_interval, o.delete_after_upload), (16, Duration::from_millis(200), false));
        assert_eq!(o.connection.store_config().unwrap().write_consistency, Consistency::LocalQuorum);
        for help in ["--help", "--cassandra h:1 -h", "schema --help"] {
            let e = parse(&v(help)).unwrap_err();
            assert_eq!(e.exit_code(), 0, "{help}");
            assert!(e.to_string().contains("--cassandra <HOST:PORT[,HOST:PORT...]>"), "{help}: {e}");
        }
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let err = |s: &str| {
            let e = parse(&v(s)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{s}");
            e.to_string()
        };
        assert!(err("--keyspace k --stream a /x").contains("--cassandra"));
        assert!(err("--cassandra h:1 --stream a /x").contains("--keyspace"));
        assert!(err("--cassandra h:1 --keyspace k").contains("no streams"));
        assert!(err("--cassandra h --keyspace k --stream a /x").contains("HOST:PORT"));
        assert!(err("--cassandra h:1 --keyspace 1k --stream a /x").contains("keyspace"));
        assert!(err("--cassandra h:1 --keyspace k --stream a.b /x").contains("stream name"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --stream a /y").contains("twice"));
        assert!(err("--cassandra h:1 --keyspace k --stream a").contains("DIR"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --bogus").contains("unexpected argument '--bogus'"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --max-concurrent 0").contains("max-concurrent"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --poll-interval 5x").contains("duration"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --write-consistency most").contains("consistency"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --dvr-depth 2h")
            .contains("unexpected argument '--dvr-depth'"));
        assert!(err("schema --cassandra h:1 --keyspace k --stream a /x").contains("unexpected argument '--stream'"));
        assert!(err("schema --cassandra h:1 --keyspace k --replication Foo:1").contains("replication"));
        assert!(err("schema --cassandra h:1 --keyspace k --durable-writes maybe").contains("durable"));
        assert!(err("--cassandra h:1 --keyspace k stray").contains("'stray'"));
        assert!(err("--cassandra h:1 --keyspace k --config /nonexistent/file").contains("/nonexistent/file"));
    }

    #[test]
    fn connection_options_read_their_files_and_pair_up() {
        let pw = std::env::temp_dir().join(format!("hls-dvr-args-pw-{}", std::process::id()));
        std::fs::write(&pw, "secret\n").unwrap();
        let base = "--cassandra h:1 --keyspace k --stream a /x";
        let conn = |extra: &str| match parse(&v(&format!("{base} {extra}"))).unwrap() {
            Command::Run(o) => o.connection,
            _ => panic!(),
        };
        let c = conn(&format!("--username dvr --password-file {} --local-dc dc1", pw.display()));
        let cfg = c.store_config().unwrap();
        assert_eq!(cfg.credentials.as_ref().map(|c| c.username.as_str()), Some("dvr"));
        assert_eq!(cfg.local_dc.as_deref(), Some("dc1"));
        assert!(conn("--username dvr").store_config().unwrap_err().contains("--password-file"));
        assert!(conn(&format!("--password-file {}", pw.display())).store_config().unwrap_err().contains("--username"));
        let missing = conn("--username dvr --password-file /nonexistent/pw").store_config().unwrap_err();
        assert!(missing.contains("/nonexistent/pw"), "{missing}");
        assert!(conn("--tls-ca /nonexistent/ca.pem").store_config().unwrap_err().contains("/nonexistent/ca.pem"));
        assert!(conn("--tls-cert /x.pem --tls-key /x.key").store_config().unwrap_err().contains("--tls-ca"));
        assert!(parse(&v(&format!("{base} --local-dc 'dc 1'"))).is_err());
        let _ = std::fs::remove_file(pw);
    }

    #[test]
    fn config_files() {
        let s = parse_config("# streams\n\nnews /srv/news  # main\nsport  rel/sport\n", Path::new("/etc/hls")).unwrap();
        assert_eq!(
            s,
            vec![
                StreamSpec { name: "news".into(), dir: "/srv/news".into() },
                StreamSpec { name: "sport".into(), dir: "/etc/hls/rel/sport".into() },
            ]
        );
        assert!(parse_config("lonely\n", Path::new("/")).unwrap_err().contains("line 1"));
    }

    #[test]
    fn missing_dirs_are_reported() {
        let Command::Run(o) = parse(&v("--cassandra h:1 --keyspace k --stream a /nonexistent-hls-dvr")).unwrap() else {
            panic!()
        };
        assert!(check_dirs(&o).unwrap_err().contains("/nonexistent-hls-dvr"));
        let Command::Run(o) = parse(&v("--cassandra h:1 --keyspace k --stream a /tmp")).unwrap() else { panic!() };
        assert!(check_dirs(&o).is_ok());
    }
}
