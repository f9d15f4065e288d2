//! How to reach a cluster: contact points, credentials, TLS, the local datacenter, timeouts.
//! Shared by the uploader's flags and the module's directives, so both speak to a production
//! cluster the same way.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::statement::Consistency;
use std::sync::Arc;

use crate::error::{exec_err, StoreError};
use crate::schema::{is_identifier, SchemaOptions};

/// Parses a consistency level the way cqlsh spells it (`LOCAL_QUORUM`, `one`, ...).
pub fn parse_consistency(s: &str) -> Result<Consistency, String> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        _ => {
            return Err(format!(
                "unknown consistency level {s:?} (one of ONE, TWO, THREE, QUORUM, ALL, LOCAL_ONE, \
                 LOCAL_QUORUM, EACH_QUORUM, ANY)"
            ))
        }
    })
}

/// Checks a `host:port[,host:port...]` list: non-empty hosts, numeric ports.
pub fn parse_nodes(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for n in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let (host, port) = n.rsplit_once(':').ok_or_else(|| format!("{n:?}: expected HOST:PORT"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("{n:?}: expected HOST:PORT with a port in 1..65535"));
        }
        out.push(n.to_string());
    }
    if out.is_empty() {
        return Err("no Cassandra contact point given (HOST:PORT[,HOST:PORT...])".into());
    }
    Ok(out)
}

/// A datacenter name as Cassandra's snitches spell them.
pub fn parse_datacenter(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!("{s:?} is not a datacenter name (letters, digits, - _ .)"));
    }
    Ok(s.to_string())
}

/// PasswordAuthenticator credentials. The password comes from a file, never from a command line
/// or nginx.conf, where it would show in `ps` or in configuration dumps.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    /// Reads the password from the first line of `path` (a trailing newline is not part of it).
    pub fn from_file(username: &str, path: &Path) -> Result<Credentials, String> {
        if username.is_empty() {
            return Err("the user name is empty".into());
        }
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let password = text.lines().next().unwrap_or("");
        if password.is_empty() {
            return Err(format!("{} holds no password on its first line", path.display()));
        }
        Ok(Credentials { username: username.to_string(), password: password.to_string() })
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials {{ username: {:?}, password: <hidden> }}", self.username)
    }
}

/// TLS to the cluster, as PEM read once (nginx reads it in the master, before workers drop
/// privileges; the key may be readable by root only).
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    ca: Vec<u8>,
    /// Client certificate and private key, for clusters that require client authentication.
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tls {{ client certificate: {} }}", self.client.is_some())
    }
}

impl Tls {
    /// Reads and checks the CA file and, when given, the client certificate and key.
    pub fn load(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<Tls, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let client = match (cert, key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            (Some(_), None) => return Err("a client certificate needs its private key".into()),
            (None, Some(_)) => return Err("a client private key needs its certificate".into()),
        };
        let tls = Tls { ca: read(ca)?, client };
        // Build it once now, so a bad file is reported at start-up with its name.
        tls.connector().map_err(|e| format!("{e} (CA {})", ca.display()))?;
        Ok(tls)
    }

    /// The driver verifies each node's certificate against the CA and the node's IP address.
    fn connector(&self) -> Result<SslConnectorBuilder, String> {
        let ssl = |what: &str| {
            let what = what.to_string();
            move |e: openssl::error::ErrorStack| format!("{what}: {e}")
        };
        let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(ssl("TLS"))?;
        // Trust the given CA only, not the system's public ones: a cluster has its own CA.
        let mut store = X509StoreBuilder::new().map_err(ssl("TLS"))?;
        let cas = X509::stack_from_pem(&self.ca).map_err(ssl("CA file"))?;
        if cas.is_empty() {
            return Err("the CA file holds no PEM certificate".into());
        }
        for ca in cas {
            store.add_cert(ca).map_err(ssl("CA file"))?;
        }
        b.set_cert_store(store.build());
        b.set_verify(SslVerifyMode::PEER);
        if let Some((cert, key)) = &self.client {
            let cert = X509::from_pem(cert).map_err(ssl("client certificate"))?;
            let key = openssl::pkey::PKey::private_key_from_pem(key).map_err(ssl("client key"))?;
            b.set_certificate(&cert).map_err(ssl("client certificate"))?;
            b.set_private_key(&key).map_err(ssl("client key"))?;
            b.check_private_key().map_err(ssl("the client key does not match its certificate"))?;
        }
        Ok(b)
    }
}

/// The files and names behind credentials and TLS, as an operator gives them: the uploader's
/// flags or the module's directives.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Secrets {
    /// Reads and checks them. `names` are what the operator calls username, password file, CA,
    /// certificate and key, in that order, for the error messages.
    pub fn load(&self, names: [&str; 5]) -> Result<(Option<Credentials>, Option<Tls>), String> {
        let [user, password, ca, cert, key] = names;
        let credentials = match (self.username.as_deref(), self.password_file.as_deref()) {
            (Some(u), Some(f)) => Some(Credentials::from_file(u, f).map_err(|e| format!("{password}: {e}"))?),
            (None, None) => None,
            (Some(_), None) => return Err(format!("{user} needs {password}")),
            (None, Some(_)) => return Err(format!("{password} needs {user}")),
        };
        let (cert_file, key_file) = (self.tls_cert.as_deref(), self.tls_key.as_deref());
        let tls = match self.tls_ca.as_deref() {
            Some(file) => Some(Tls::load(file, cert_file, key_file).map_err(|e| format!("TLS: {e}"))?),
            None if self.tls_cert.is_some() || self.tls_key.is_some() => {
                return Err(format!("{cert} and {key} need {ca}"))
            }
            None => None,
        };
        Ok((credentials, tls))
    }
}

/// How to reach the store and how hard to try.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `host:port` contact points.
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub read_consistency: Consistency,
    pub write_consistency: Consistency,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub connect_timeout: Duration,
    pub credentials: Option<Credentials>,
    pub tls: Option<Tls>,
    /// Requests go to this datacenter's replicas only (LOCAL_* consistency stays local).
    pub local_dc: Option<String>,
    /// A request unanswered this long is sent to the next replica too (every statement is
    /// idempotent); the first answer wins. None: never.
    pub speculative_retry: Option<Duration>,
    /// Told how long each request took, besides the store's own [`crate::Latencies`].
    pub observer: Option<Observer>,
}

/// Hears each store request's kind and duration (an nginx edge adds them to shared counters).
#[derive(Clone)]
pub struct Observer(pub std::sync::Arc<dyn Fn(crate::Op, Duration) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl StoreConfig {
    pub fn new(nodes: Vec<String>, keyspace: &str) -> Self {
        StoreConfig {
            nodes,
            keyspace: keyspace.to_string(),
            read_consistency: Consistency::LocalQuorum,
            write_consistency: Consistency::LocalQuorum,
            read_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            credentials: None,
            tls: None,
            local_dc: None,
            speculative_retry: None,
            observer: None,
        }
    }

    /// Who we are and where, for error messages.
    pub fn describe(&self) -> String {
        let mut s = self.nodes.join(",");
        if let Some(c) = &self.credentials {
            s = format!("{s} as {:?}", c.username);
        }
        if self.tls.is_some() {
            s.push_str(" over TLS");
        }
        s
    }
}

pub(super) async fn session(cfg: &StoreConfig) -> Result<Session, StoreError> {
    // Token-aware routing needs only our keyspace's replication, not every keyspace's tables and
    // columns: reading those made each new session (every worker after a reload) start about ten
    // times slower on a node with many keyspaces. Unquoted in our statements, so lowercased.
    let mut builder = SessionBuilder::new()
        .known_nodes(&cfg.nodes)
        .connection_timeout(cfg.connect_timeout)
        .keyspaces_to_fetch([cfg.keyspace.to_ascii_lowercase()])
        .fetch_full_schema_metadata(false);
    if let Some(c) = &cfg.credentials {
        builder = builder.user(&c.username, &c.password);
    }
    if let Some(tls) = &cfg.tls {
        builder = builder.tls_context(Some(tls.connector().map_err(StoreError::Invalid)?));
    }
    // Token-aware: a read goes straight to a replica. With a local datacenter, only its nodes are
    // asked, as LOCAL_QUORUM expects; without one, every node is a candidate.
    let mut policy = DefaultPolicy::builder().token_aware(true);
    if let Some(dc) = &cfg.local_dc {
        policy = policy.prefer_datacenter(dc.clone()).permit_dc_failover(false);
    }
    let mut profile = ExecutionProfile::builder().load_balancing_policy(policy.build());
    if let Some(after) = cfg.speculative_retry {
        // A slow replica (a GC pause, a failing disk) costs `after`, not the whole timeout.
        let spec = SimpleSpeculativeExecutionPolicy { max_retry_count: 2, retry_interval: after };
        profile = profile.speculative_execution_policy(Some(Arc::new(spec)));
    }
    let profile = profile.build();
    builder = builder.default_execution_profile_handle(profile.into_handle());
    // The driver retries contact points itself; bound the whole start-up so callers get an answer.
    match tokio::time::timeout(cfg.connect_timeout + Duration::from_secs(1), builder.build()).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!("cannot connect to {}: {e}", cfg.describe()))),
        Err(_) => Err(StoreError::Timeout(format!("connecting to {} timed out", cfg.describe()))),
    }
}

/// Creates the keyspace and tables (idempotent) and waits for schema agreement.
pub async fn create_schema(cfg: &StoreConfig, opts: &SchemaOptions) -> Result<(), StoreError> {
    if !is_identifier(&opts.keyspace) {
        return Err(StoreError::Invalid(format!("bad keyspace name {:?}", opts.keyspace)));
    }
    let s = session(cfg).await?;
    for stmt in opts.statements() {
        s.query_unpaged(stmt.as_str(), ()).await.map_err(|e| exec_err("creating schema", e))?;
    }
    s.await_schema_agreement().await.map_err(|e| StoreError::Unavailable(format!("schema agreement: {e}")))?;
    for (table, column, kind) in SchemaOptions::ADDED_COLUMNS {
        let existing = s
            .query_unpaged(
                "SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?",
                (&opts.keyspace, table),
            )
            .await
            .map_err(|e| exec_err("reading the schema", e))?
            .into_rows_result()
            .map_err(|e| StoreError::Invalid(format!("reading the schema: {e}")))?;
        let mut names =
            existing.rows::<(String,)>().map_err(|e| StoreError::Invalid(format!("reading the schema: {e}")))?;
        if !names.any(|n| n.is_ok_and(|(n,)| n == *column)) {
            let alter = format!("ALTER TABLE {}.{table} ADD {column} {kind}", opts.keyspace);
            s.query_unpaged(alter.as_str(), ()).await.map_err(|e| exec_err("upgrading the schema", e))?;
        }
    }
    s.await_schema_agreement().await.map_err(|e| StoreError::Unavailable(format!("schema agreement: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_nodes_and_datacenters_parse() {
        assert_eq!(parse_consistency("local_quorum"), Ok(Consistency::LocalQuorum));
        assert!(parse_consistency("most").is_err());
        assert_eq!(parse_nodes("a:9042, b:9043").unwrap(), vec!["a:9042", "b:9043"]);
        assert!(parse_nodes("a").is_err());
        assert!(parse_nodes("a:0").is_err());
        assert!(parse_nodes("a:99999").is_err());
        assert!(parse_nodes(" , ").is_err());
        assert_eq!(parse_nodes("[::1]:9042").unwrap(), vec!["[::1]:9042"]);
        assert_eq!(parse_datacenter("eu-west_1.a"), Ok("eu-west_1.a".to_string()));
        assert!(parse_datacenter("").is_err());
        assert!(parse_datacenter("dc 1").is_err());
    }

    fn scratch(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("hls-dvr-connect-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn passwords_come_from_the_first_line_and_never_show() {
        let f = scratch("pw", "s3cret word\nignored\n");
        let c = Credentials::from_file("dvr", &f).unwrap();
        assert_eq!(c.password, "s3cret word");
        assert!(!format!("{c:?}").contains("s3cret"));
        let empty = scratch("pw-empty", "\n");
        assert!(Credentials::from_file("dvr", &empty).unwrap_err().contains("no password"));
        assert!(Credentials::from_file("dvr", Path::new("/nonexistent/pw")).unwrap_err().contains("/nonexistent/pw"));
        assert!(Credentials::from_file("", &f).is_err());
        for p in [f, empty] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[test]
    fn tls_files_are_checked_when_loaded() {
        let junk = scratch("ca-junk", "not a certificate\n");
        assert!(Tls::load(Path::new("/nonexistent/ca.pem"), None, None).unwrap_err().contains("/nonexistent/ca.pem"));
        assert!(Tls::load(&junk, None, None).unwrap_err().contains("CA"));
        assert!(Tls::load(&junk, Some(&junk), None).unwrap_err().contains("private key"));
        assert!(Tls::load(&junk, None, Some(&junk)).unwrap_err().contains("certificate"));
        let _ = std::fs::remove_file(junk);
    }
}
