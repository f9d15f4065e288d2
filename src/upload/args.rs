//! The command line, parsed by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scylla::statement::Consistency;

use hls_dvr_store::schema::{is_identifier, Replication, SchemaOptions};
use hls_dvr_store::{parse_consistency, parse_datacenter, parse_nodes, Secrets, StoreConfig};

use super::source::valid_name;

pub const USAGE: &str = "\
hls-dvr-upload: uploads live HLS segments from segmenter output folders into Cassandra / ScyllaDB.

USAGE:
  hls-dvr-upload schema --cassandra HOST:PORT[,HOST:PORT...] --keyspace K [CONNECTION]
        [--replication SimpleStrategy:1|NetworkTopologyStrategy:dc1=3,...]
        [--durable-writes true|false] [--dvr-depth 2h]
      Creates the keyspace and tables (idempotent).

  hls-dvr-upload --cassandra HOST:PORT[,...] --keyspace K [CONNECTION]
        --stream NAME DIR [--stream NAME DIR ...] [--config FILE]
        [--max-concurrent 16] [--poll-interval 200ms] [--delete-after-upload]
        [--write-consistency LOCAL_QUORUM] [--write-timeout 5s] [--metrics ADDR]
      Watches each DIR (a media playlist with its segments, or a master playlist with one media
      playlist per rendition) and stores every new segment, until SIGINT or SIGTERM.

OPTIONS:
  --cassandra LIST        contact points
  --keyspace K            keyspace (letters, digits, _; starts with a letter)
  CONNECTION, for production clusters:
  --username U            PasswordAuthenticator user; needs --password-file
  --password-file FILE    the password, on the file's first line
  --tls-ca FILE           TLS to the cluster, trusting the CA certificate(s) in FILE (PEM)
  --tls-cert FILE         client certificate (PEM), with --tls-key, for clusters that require one
  --tls-key FILE          its private key (PEM)
  --local-dc DC           send requests to this datacenter's nodes only (token-aware either way)
  --speculative-retry D   a write unanswered after D is sent to another replica too (default off)
  --stream NAME DIR       a stream: NAME is [A-Za-z0-9_-]{1,64}, DIR must exist
  --config FILE           more streams, one \"NAME DIR\" a line, # comments; relative DIRs are
                          relative to FILE's folder
  --max-concurrent N      segment uploads in flight at once, over all streams (default 16)
  --poll-interval D       how often playlists are read (default 200ms)
  --delete-after-upload   remove each media segment file once stored (never playlists or init
                          segments)
  --write-consistency C   ONE, QUORUM, LOCAL_QUORUM (default), ...
  --write-timeout D       per write (default 5s)
  --metrics ADDR          serve Prometheus metrics at http://ADDR/metrics (such as 127.0.0.1:9110)
  --replication R         schema: replication (default SimpleStrategy:1)
  --durable-writes B      schema: durable_writes (default true)
  --dvr-depth D           schema: longest DVR window (default 2h); data lives this plus 30m
  -h, --help              this text

Durations: 200ms, 90s, 30m, 2h, 1h30m (a bare number is seconds). Logging: RUST_LOG (default info).
Exit status: 0 after a signal, 1 when the store cannot be used, 2 for bad arguments.
";

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
    /// `--metrics ADDR`: serve Prometheus metrics on this address.
    pub metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone)]
pub enum Command {
    Help,
    Schema { connection: Connection, opts: SchemaOptions },
    Run(RunOptions),
}

/// `200ms`, `90s`, `30m`, `2h`, `1h30m`, `1d` or bare seconds: the project's one duration syntax.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    hls_dvr_core::duration::parse(s)
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
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

/// Parses the arguments after the program name. Checks syntax and names, not the file system.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter().peekable();
    let schema = it.peek().is_some_and(|a| *a == "schema");
    if schema {
        it.next();
    }
    let mut nodes = None;
    let mut keyspace = None;
    let mut conn = Connection::default();
    let mut streams = Vec::new();
    let mut configs = Vec::new();
    let mut max_concurrent = 16usize;
    let mut poll_interval = Duration::from_millis(200);
    let mut delete_after_upload = false;
    let mut metrics = None;
    let mut replication = Replication::Simple(1);
    let mut durable_writes = true;
    let mut dvr_depth = Duration::from_secs(7200);
    let mut run_only = Vec::new();
    let mut schema_only = Vec::new();

    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().cloned().ok_or_else(|| format!("{flag} needs {what}")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(Command::Help),
            "--cassandra" => {
                nodes = Some(parse_nodes(&value("HOST:PORT[,HOST:PORT...]")?).map_err(|e| format!("--cassandra: {e}"))?)
            }
            "--keyspace" => {
                let k = value("a keyspace name")?;
                if !is_identifier(&k) {
                    return Err(format!(
                        "--keyspace {k:?}: a keyspace is letters, digits and _, starting with a letter, at most 48"
                    ));
                }
                keyspace = Some(k);
            }
            "--username" => conn.secrets.username = Some(value("a user name")?),
            "--password-file" => conn.secrets.password_file = Some(PathBuf::from(value("a file")?)),
            "--tls-ca" => conn.secrets.tls_ca = Some(PathBuf::from(value("a file")?)),
            "--tls-cert" => conn.secrets.tls_cert = Some(PathBuf::from(value("a file")?)),
            "--tls-key" => conn.secrets.tls_key = Some(PathBuf::from(value("a file")?)),
            "--speculative-retry" => {
                let d = parse_duration(&value("a duration")?).map_err(|e| format!("--speculative-retry: {e}"))?;
                conn.speculative_retry = Some(d).filter(|d| !d.is_zero());
            }
            "--local-dc" => {
                conn.local_dc = Some(parse_datacenter(&value("a datacenter")?).map_err(|e| format!("--local-dc: {e}"))?)
            }
            "--stream" => {
                if inline.is_some() {
                    return Err("--stream takes two values: --stream NAME DIR".into());
                }
                let name = it.next().ok_or("--stream needs NAME DIR")?;
                let dir = it.next().ok_or_else(|| format!("--stream {name} needs a DIR"))?;
                streams.push(StreamSpec { name: name.clone(), dir: PathBuf::from(dir) });
                run_only.push(flag.to_string());
            }
            "--config" => {
                configs.push(PathBuf::from(value("a file")?));
                run_only.push(flag.to_string());
            }
            "--max-concurrent" => {
                let v = value("a number")?;
                max_concurrent = match v.parse::<usize>() {
                    Ok(n) if (1..=10_000).contains(&n) => n,
                    _ => return Err(format!("--max-concurrent {v:?}: expected a number from 1 to 10000")),
                };
                run_only.push(flag.to_string());
            }
            "--poll-interval" => {
                poll_interval = parse_duration(&value("a duration")?).map_err(|e| format!("--poll-interval: {e}"))?;
                if poll_interval < Duration::from_millis(10) || poll_interval > Duration::from_secs(60) {
                    return Err("--poll-interval: between 10ms and 60s".into());
                }
                run_only.push(flag.to_string());
            }
            "--delete-after-upload" => {
                if inline.is_some() {
                    return Err("--delete-after-upload takes no value".into());
                }
                delete_after_upload = true;
                run_only.push(flag.to_string());
            }
            "--write-consistency" => {
                conn.write_consistency = Some(
                    parse_consistency(&value("a consistency level")?)
                        .map_err(|e| format!("--write-consistency: {e}"))?,
                );
                run_only.push(flag.to_string());
            }
            "--write-timeout" => {
                let t = parse_duration(&value("a duration")?).map_err(|e| format!("--write-timeout: {e}"))?;
                if t.is_zero() {
                    return Err("--write-timeout must be positive".into());
                }
                conn.write_timeout = Some(t);
                run_only.push(flag.to_string());
            }
            "--metrics" => {
                let v = value("an address")?;
                metrics =
                    Some(v.parse().map_err(|_| format!("--metrics {v:?}: expected IP:PORT, such as 127.0.0.1:9110"))?);
                run_only.push(flag.to_string());
            }
            "--replication" => {
                replication =
                    Replication::parse(&value("a replication")?).map_err(|e| format!("--replication: {e}"))?;
                schema_only.push(flag.to_string());
            }
            "--durable-writes" => {
                durable_writes = parse_bool(&value("true or false")?).map_err(|e| format!("--durable-writes: {e}"))?;
                schema_only.push(flag.to_string());
            }
            "--dvr-depth" => {
                dvr_depth = parse_duration(&value("a duration")?).map_err(|e| format!("--dvr-depth: {e}"))?;
                if dvr_depth < Duration::from_secs(60) {
                    return Err("--dvr-depth: at least 1m".into());
                }
                schema_only.push(flag.to_string());
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other:?}")),
            other => return Err(format!("unexpected argument {other:?} (streams are given as --stream NAME DIR)")),
        }
    }

    conn.nodes = nodes.ok_or("--cassandra HOST:PORT is required")?;
    let keyspace: String = keyspace.ok_or("--keyspace is required")?;
    conn.keyspace = keyspace.clone();
    if schema {
        if let Some(f) = run_only.first() {
            return Err(format!("{f} is not an option of `schema`"));
        }
        let opts = SchemaOptions { keyspace, replication, durable_writes, dvr_depth };
        return Ok(Command::Schema { connection: conn, opts });
    }
    if let Some(f) = schema_only.first() {
        return Err(format!("{f} is an option of `hls-dvr-upload schema`"));
    }
    for c in &configs {
        let text = std::fs::read_to_string(c).map_err(|e| format!("--config {}: {e}", c.display()))?;
        let base = c.parent().unwrap_or(Path::new("."));
        streams.extend(parse_config(&text, base).map_err(|e| format!("--config {}: {e}", c.display()))?);
    }
    if streams.is_empty() {
        return Err("no streams: give --stream NAME DIR or --config FILE".into());
    }
    for (i, s) in streams.iter().enumerate() {
        if !valid_name(&s.name) {
            return Err(format!("stream name {:?}: use 1 to 64 of A-Z a-z 0-9 _ -", s.name));
        }
        if streams[..i].iter().any(|o| o.name == s.name) {
            return Err(format!("stream {:?} is given twice", s.name));
        }
    }
    Ok(Command::Run(RunOptions {
        connection: conn,
        streams,
        max_concurrent,
        poll_interval,
        delete_after_upload,
        metrics,
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
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1s500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        for bad in ["", "h", "2x", "1.5s", "-1s", "2h 30m", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
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
        let Command::Schema { opts, .. } = parse(&v(
            "schema --cassandra a:1 --keyspace k --replication NetworkTopologyStrategy:dc1=3 --durable-writes=false --dvr-depth 1h30m",
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(opts.replication, Replication::Network(vec![("dc1".into(), 3)]));
        assert!(!opts.durable_writes);
        assert_eq!(opts.dvr_depth, Duration::from_secs(5400));
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
        let Command::Run(o) = parse(&v("--cassandra h:1 --keyspace k --stream a /x")).unwrap() else { panic!() };
        assert_eq!((o.max_concurrent, o.poll_interval, o.delete_after_upload), (16, Duration::from_millis(200), false));
        assert_eq!(o.connection.store_config().unwrap().write_consistency, Consistency::LocalQuorum);
        assert!(matches!(parse(&v("--help")), Ok(Command::Help)));
        assert!(matches!(parse(&v("--cassandra h:1 -h")), Ok(Command::Help)));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let err = |s: &str| parse(&v(s)).unwrap_err();
        assert!(err("--keyspace k --stream a /x").contains("--cassandra"));
        assert!(err("--cassandra h:1 --stream a /x").contains("--keyspace"));
        assert!(err("--cassandra h:1 --keyspace k").contains("no streams"));
        assert!(err("--cassandra h --keyspace k --stream a /x").contains("HOST:PORT"));
        assert!(err("--cassandra h:1 --keyspace 1k --stream a /x").contains("keyspace"));
        assert!(err("--cassandra h:1 --keyspace k --stream a.b /x").contains("stream name"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --stream a /y").contains("twice"));
        assert!(err("--cassandra h:1 --keyspace k --stream a").contains("DIR"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --bogus").contains("unknown option"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --max-concurrent 0").contains("max-concurrent"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --poll-interval 5x").contains("duration"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --write-consistency most").contains("consistency"));
        assert!(err("--cassandra h:1 --keyspace k --stream a /x --dvr-depth 2h").contains("schema"));
        assert!(err("schema --cassandra h:1 --keyspace k --stream a /x").contains("not an option of `schema`"));
        assert!(err("schema --cassandra h:1 --keyspace k --replication Foo:1").contains("replication"));
        assert!(err("schema --cassandra h:1 --keyspace k --durable-writes maybe").contains("durable"));
        assert!(err("--cassandra h:1 --keyspace k stray").contains("unexpected"));
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
