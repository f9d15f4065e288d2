//! The module's directives, checked at `nginx -t` with messages that name the fix.
//!
//! ```nginx
//! http {
//!     hls_dvr_cassandra 10.0.0.1:9042 10.0.0.2:9042;   # contact points
//!     hls_dvr_keyspace hls_dvr;
//!     hls_dvr_consistency LOCAL_QUORUM;               # reads
//!     hls_dvr_timeout 2s;                             # per store request, then 504
//!     hls_dvr_connect_timeout 5s;
//!     hls_dvr_max_in_flight 1024;                     # per worker, then 503
//!     hls_dvr_playlist_cache 500ms;                   # per worker; off to disable
//!     hls_dvr_speculative_retry 100ms;                # a slow replica: ask another too (off)
//!     hls_dvr_username hls_dvr;                       # PasswordAuthenticator
//!     hls_dvr_password_file /etc/nginx/cassandra.pw;  # its first line
//!     hls_dvr_tls_ca /etc/nginx/cassandra-ca.pem;     # TLS, verified against this CA
//!     hls_dvr_tls_cert /etc/nginx/client.pem;         # client certificate, if the cluster wants one
//!     hls_dvr_tls_key /etc/nginx/client.key;
//!     hls_dvr_local_dc dc1;                           # only this datacenter's nodes
//!     hls_dvr_cache_zone edge 1g;                     # shared by all workers
//!     hls_dvr_edge_name edge-1;                       # names this edge's statistics (host name)
//!     hls_dvr_sessions on;                            # count viewers (http, server or location)
//!     hls_dvr_session_secret /etc/nginx/session.key;  # signs the session ids edges give
//!     hls_dvr_session_key $cookie_viewer;             # or: the site's own per-viewer id
//!     server {
//!         location /live/ {
//!             hls_dvr;
//!             hls_dvr_window 2h;                      # the live window; retention is the schema's TTL
//!             hls_dvr_max_range 24h;                  # longest start/end range per request
//!             hls_dvr_cache edge;                     # segments and playlists from the zone
//!             hls_dvr_allow_origin *;
//!             hls_dvr_pass_args on;                   # playlists pass their query on (tokens)
//!             hls_dvr_ad_markers daterange;           # markers as EXT-X-DATERANGE, cue, both, off
//!         }
//!         location = /status { hls_dvr_status; }     # streams as JSON
//!         location = /metrics { hls_dvr_metrics; }   # Prometheus, summed over workers
//!         location = /stats { hls_dvr_stats; }       # viewer statistics as JSON
//!     }
//! }
//! ```

use std::ffi::{c_char, c_void};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::time::Duration;

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{ngx_conf_t, ngx_http_core_loc_conf_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_str_t, NGX_LOG_EMERG};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Merge, MergeConfigError, NgxHttpCoreModule};
use ngx::ngx_conf_log_error;
use scylla::statement::Consistency;

use hls_dvr_core::markers::MarkerForm;
use hls_dvr_edge::session::SessionKey;
use hls_dvr_store::{parse_consistency, parse_datacenter, parse_nodes, Credentials, Secrets, StoreConfig, Tls};

pub const DEFAULT_WINDOW: Duration = Duration::from_secs(2 * 3600);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
pub const DEFAULT_PLAYLIST_CACHE: Duration = Duration::from_millis(500);
pub const DEFAULT_MAX_RANGE: Duration = Duration::from_secs(24 * 3600);
/// Reads take milliseconds: one unanswered after this goes to another replica too.
pub const DEFAULT_SPECULATIVE_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct MainConf {
    pub nodes: Vec<String>,
    pub keyspace: Option<String>,
    pub consistency: Option<Consistency>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub max_in_flight: Option<usize>,
    pub playlist_cache: Option<Duration>,
    /// `hls_dvr_speculative_retry`: Some(ZERO) is off.
    pub speculative_retry: Option<Duration>,
    pub secrets: Secrets,
    pub local_dc: Option<String>,
    /// Read from the files above once the http block is parsed, by the master: workers may
    /// not be allowed to read them after dropping privileges.
    pub credentials: Option<Credentials>,
    pub tls: Option<Tls>,
    /// Some location says `hls_dvr`: workers need a runtime and a session.
    pub used: bool,
    /// Zones named by `hls_dvr_cache`, to check they are declared.
    pub cache_refs: Vec<(String, NonNull<ngx_shm_zone_t>)>,
    /// Some location says `hls_dvr_metrics`.
    pub metrics: bool,
    /// The zone of the shared counters (src/edge/counters.rs), when anything counts or shows them.
    pub metrics_zone: Option<NonNull<ngx_shm_zone_t>>,
    /// `hls_dvr_edge_name`: names this edge's rows of viewer statistics.
    pub edge_name: Option<String>,
    /// Some configuration counts viewers or shows their statistics: the audience zone is added.
    pub audience: bool,
    pub audience_zone: Option<NonNull<ngx_shm_zone_t>>,
}

impl MainConf {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
    pub fn playlist_cache(&self) -> Duration {
        self.playlist_cache.unwrap_or(DEFAULT_PLAYLIST_CACHE)
    }
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT)
    }
    /// The edge's name in viewer statistics: `hls_dvr_edge_name`, or the host's name.
    pub fn edge_name(&self) -> String {
        self.edge_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "edge".to_string())
        })
    }
    pub fn store_config(&self) -> StoreConfig {
        let mut c = StoreConfig::new(self.nodes.clone(), self.keyspace.as_deref().unwrap_or(""));
        c.read_consistency = self.consistency.unwrap_or(Consistency::LocalQuorum);
        c.read_timeout = self.timeout();
        c.connect_timeout = self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        c.credentials = self.credentials.clone();
        c.tls = self.tls.clone();
        c.local_dc = self.local_dc.clone();
        c.speculative_retry =
            Some(self.speculative_retry.unwrap_or(DEFAULT_SPECULATIVE_RETRY)).filter(|d| !d.is_zero());
        c
    }
}

#[derive(Debug, Default)]
pub struct LocConf {
    pub enabled: bool,
    /// The location's prefix: routes are parsed from what follows it.
    pub prefix: String,
    pub window: Option<Duration>,
    pub max_range: Option<Duration>,
    pub allow_origin: Option<String>,
    /// `hls_dvr_cache`: a zone, or off (`Some(None)`).
    pub cache: Option<Option<NonNull<ngx_shm_zone_t>>>,
    /// `hls_dvr_pass_args`: playlists pass their query on to the URIs they list (default on).
    pub pass_args: Option<bool>,
    /// `hls_dvr_status`: the location answers the status document.
    pub status: bool,
    /// `hls_dvr_ad_markers`: how playlists list markers (default daterange).
    pub ad_markers: Option<MarkerForm>,
    /// `hls_dvr_sessions`: viewers are counted, and given session ids (default off).
    pub sessions: Option<bool>,
    /// `hls_dvr_session_secret`: signs the ids this edge gives, and tells made-up ones.
    pub session_secret: Option<SessionKey>,
    /// `hls_dvr_session_key`: the index of a variable holding the site's own viewer id.
    pub session_key: Option<usize>,
    /// `hls_dvr_stats`: the location answers viewer statistics.
    pub stats: bool,
}

impl LocConf {
    pub fn window(&self) -> Duration {
        self.window.unwrap_or(DEFAULT_WINDOW)
    }
    pub fn cache(&self) -> Option<NonNull<ngx_shm_zone_t>> {
        self.cache.flatten()
    }
    /// The longest start/end range one playlist request may cover.
    pub fn max_range(&self) -> Duration {
        self.max_range.unwrap_or(DEFAULT_MAX_RANGE)
    }
    pub fn pass_args(&self) -> bool {
        self.pass_args.unwrap_or(true)
    }
    pub fn ad_markers(&self) -> MarkerForm {
        self.ad_markers.unwrap_or_default()
    }
    pub fn sessions(&self) -> bool {
        self.sessions.unwrap_or(false)
    }
    /// `None` when CORS headers are switched off (`hls_dvr_allow_origin off`).
    pub fn allow_origin(&self) -> Option<&str> {
        match self.allow_origin.as_deref() {
            None => Some("*"),
            Some("off") => None,
            Some(o) => Some(o),
        }
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &LocConf) -> Result<(), MergeConfigError> {
        if self.window.is_none() {
            self.window = prev.window;
        }
        if self.max_range.is_none() {
            self.max_range = prev.max_range;
        }
        if self.cache.is_none() {
            self.cache = prev.cache;
        }
        if self.allow_origin.is_none() {
            self.allow_origin = prev.allow_origin.clone();
        }
        if self.pass_args.is_none() {
            self.pass_args = prev.pass_args;
        }
        if self.ad_markers.is_none() {
            self.ad_markers = prev.ad_markers;
        }
        if self.sessions.is_none() {
            self.sessions = prev.sessions;
        }
        if self.session_secret.is_none() {
            self.session_secret = prev.session_secret.clone();
        }
        if self.session_key.is_none() {
            self.session_key = prev.session_key;
        }
        Ok(())
    }
}

/// The directive's arguments after its name, as UTF-8.
///
/// # Safety
/// `cf` is the `ngx_conf_t` nginx passes to a directive handler.
unsafe fn args<'a>(cf: *mut ngx_conf_t) -> Result<Vec<&'a str>, String> {
    // SAFETY: `cf` is the configuration being parsed (the contract above), on the master's thread.
    unsafe {
        let a = &*(*cf).args;
        let elts = std::slice::from_raw_parts(a.elts as *const ngx_str_t, a.nelts);
        elts.iter()
            .skip(1)
            .map(|s| {
                let b = if s.len == 0 { &[][..] } else { std::slice::from_raw_parts(s.data, s.len) };
                std::str::from_utf8(b).map_err(|_| "argument is not valid UTF-8".to_string())
            })
            .collect()
    }
}

/// Runs a directive body; an error is logged against the directive's line and fails `nginx -t`.
///
/// # Safety
/// `cf` is the `ngx_conf_t` nginx passes to a directive handler.
unsafe fn directive(
    cf: *mut ngx_conf_t,
    name: &str,
    body: impl FnOnce(Vec<&str>) -> Result<(), String>,
) -> *mut c_char {
    // SAFETY: `cf` is the configuration being parsed (the contract above), on the master's thread.
    unsafe {
        let res = args(cf).and_then(body);
        match res {
            Ok(()) => NGX_CONF_OK,
            Err(msg) => {
                ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"{}\": {}", name, msg);
                NGX_CONF_ERROR
            }
        }
    }
}

fn once<T>(slot: &mut Option<T>, v: T) -> Result<(), String> {
    if slot.is_some() {
        return Err("is duplicate".into());
    }
    *slot = Some(v);
    Ok(())
}

/// A file named in nginx.conf, relative to the configuration's prefix as nginx's own file
/// directives are, and readable now (so `nginx -t` names the directive's line when it is not).
///
/// # Safety
/// `cf` is the `ngx_conf_t` nginx passes to a directive handler.
unsafe fn conf_file(cf: *mut ngx_conf_t, name: &str) -> Result<PathBuf, String> {
    // SAFETY: `cf` is the configuration being parsed (the contract above), on the master's thread.
    unsafe {
        let path = Path::new(name);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            let prefix = (*(*cf).cycle).conf_prefix;
            let prefix = if prefix.len == 0 { &[][..] } else { std::slice::from_raw_parts(prefix.data, prefix.len) };
            Path::new(std::str::from_utf8(prefix).map_err(|_| "the configuration prefix is not UTF-8")?).join(path)
        };
        std::fs::File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(path)
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    let d = hls_dvr_core::duration::parse(s)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

/// A directive handler: `$conf` is the module's configuration of type `$ty` at the level the
/// directive's `conf` offset names, `$args` its arguments, and `$cf` (when named) the
/// configuration being parsed.
macro_rules! directive_fn {
    ($fn:ident, $name:literal, $ty:ty, |$conf:ident, $args:ident| $body:expr) => {
        directive_fn!($fn, $name, $ty, |_cf, $conf, $args| $body);
    };
    ($fn:ident, $name:literal, $ty:ty, |$cf:ident, $conf:ident, $args:ident| $body:expr) => {
        pub unsafe extern "C" fn $fn(
            cf: *mut ngx_conf_t,
            _cmd: *mut ngx::ffi::ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            // SAFETY: nginx passes the configuration being parsed and the one this module created
            // for the directive's level, on the master's thread; nothing else touches them then.
            unsafe {
                let $cf = cf;
                let $conf = &mut *(conf as *mut $ty);
                directive(cf, $name, |$args| $body)
            }
        }
    };
}

macro_rules! main_directive {
    ($fn:ident, $name:literal, $($rest:tt)*) => { directive_fn!($fn, $name, MainConf, $($rest)*); };
}

macro_rules! loc_directive {
    ($fn:ident, $name:literal, $($rest:tt)*) => { directive_fn!($fn, $name, LocConf, $($rest)*); };
}

main_directive!(set_cassandra, "hls_dvr_cassandra", |c, a| {
    if !c.nodes.is_empty() {
        return Err("is duplicate".into());
    }
    c.nodes = parse_nodes(&a.join(","))?;
    Ok(())
});

main_directive!(set_keyspace, "hls_dvr_keyspace", |c, a| {
    if !hls_dvr_store::schema::is_identifier(a[0]) {
        return Err(format!("{:?} is not a keyspace name (a letter, then letters, digits or _)", a[0]));
    }
    once(&mut c.keyspace, a[0].to_string())
});

main_directive!(set_consistency, "hls_dvr_consistency", |c, a| once(&mut c.consistency, parse_consistency(a[0])?));

main_directive!(set_timeout, "hls_dvr_timeout", |c, a| once(&mut c.timeout, duration(a[0])?));

main_directive!(set_connect_timeout, "hls_dvr_connect_timeout", |c, a| once(&mut c.connect_timeout, duration(a[0])?));

main_directive!(set_max_in_flight, "hls_dvr_max_in_flight", |c, a| {
    let n: usize = a[0]
        .parse()
        .ok()
        .filter(|n| (1..=1_000_000).contains(n))
        .ok_or_else(|| format!("{:?} is not a number between 1 and 1000000", a[0]))?;
    once(&mut c.max_in_flight, n)
});

main_directive!(set_playlist_cache, "hls_dvr_playlist_cache", |c, a| {
    // "off" or 0 disables it; more than 5 s would hide new segments from players for too long.
    let d = if a[0] == "off" { Duration::ZERO } else { hls_dvr_core::duration::parse(a[0])? };
    if d > Duration::from_secs(5) {
        return Err("must be at most 5s (or off)".into());
    }
    once(&mut c.playlist_cache, d)
});

main_directive!(set_username, "hls_dvr_username", |c, a| {
    if a[0].is_empty() {
        return Err("expects a user name".into());
    }
    once(&mut c.secrets.username, a[0].to_string())
});

// The file directives resolve relative names as nginx does, from `cf`.
macro_rules! file_directive {
    ($fn:ident, $name:literal, $field:ident) => {
        main_directive!($fn, $name, |cf, c, a| once(&mut c.secrets.$field, conf_file(cf, a[0])?));
    };
}

file_directive!(set_password_file, "hls_dvr_password_file", password_file);
file_directive!(set_tls_ca, "hls_dvr_tls_ca", tls_ca);
file_directive!(set_tls_cert, "hls_dvr_tls_cert", tls_cert);
file_directive!(set_tls_key, "hls_dvr_tls_key", tls_key);

/// A shared zone of this module named `name` (`size` 0: a reference, declared elsewhere).
unsafe fn shared_zone(cf: *mut ngx_conf_t, name: &str, size: usize) -> Result<NonNull<ngx_shm_zone_t>, String> {
    // SAFETY: `cf` is the configuration being parsed (the contract above), on the master's thread.
    unsafe {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
            return Err(format!("{name:?} is not a zone name (letters, digits, _ and -)"));
        }
        // nginx keeps the name: a copy in the configuration's pool.
        let data = ngx::ffi::ngx_pnalloc((*cf).pool, name.len()) as *mut u8;
        if data.is_null() {
            return Err("out of memory".into());
        }
        std::ptr::copy_nonoverlapping(name.as_ptr(), data, name.len());
        let mut n = ngx_str_t { len: name.len(), data };
        let tag = std::ptr::addr_of_mut!(crate::ngx_http_hls_dvr_module) as *mut c_void;
        NonNull::new(ngx_shared_memory_add(cf, &mut n, size, tag)).ok_or_else(|| "cannot add the shared zone".into())
    }
}

// `hls_dvr_cache_zone NAME SIZE;`: a shared cache for all workers.
main_directive!(set_cache_zone, "hls_dvr_cache_zone", |cf, _c, a| {
    let size = parse_size(a[1])?;
    if size < 1 << 20 {
        return Err("the zone needs at least 1m".into());
    }
    let zone = shared_zone(cf, a[0], size)?.as_ptr();
    if (*zone).init.is_some() {
        return Err(format!("zone {:?} is declared twice", a[0]));
    }
    (*zone).init = Some(crate::cache::init_zone);
    Ok(())
});

// `hls_dvr_cache NAME | off;`
loc_directive!(set_cache, "hls_dvr_cache", |cf, lc, a| {
    let zone = if a[0] == "off" { None } else { Some(shared_zone(cf, a[0], 0)?) };
    if let Some(z) = zone {
        let main = crate::HlsDvr::main_conf_mut(&*cf).ok_or("no main configuration")?;
        main.cache_refs.push((a[0].to_string(), z));
    }
    once(&mut lc.cache, zone)
});

/// `512k`, `64m`, `2g`, or bytes.
fn parse_size(s: &str) -> Result<usize, String> {
    let bad = || format!("{s:?} is not a size (such as 512m or 2g)");
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, ' '),
    };
    let n: usize = digits.parse().map_err(|_| bad())?;
    let shift = match unit {
        ' ' => 0,
        'k' => 10,
        'm' => 20,
        'g' => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

main_directive!(set_speculative_retry, "hls_dvr_speculative_retry", |c, a| {
    let d = if a[0] == "off" { Duration::ZERO } else { duration(a[0])? };
    once(&mut c.speculative_retry, d)
});

main_directive!(set_local_dc, "hls_dvr_local_dc", |c, a| once(&mut c.local_dc, parse_datacenter(a[0])?));

loc_directive!(set_window, "hls_dvr_window", |c, a| {
    let d = duration(a[0])?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    once(&mut c.window, d)
});

loc_directive!(set_max_range, "hls_dvr_max_range", |c, a| {
    let d = duration(a[0])?;
    if d < Duration::from_secs(60) {
        return Err("must be at least 1m".into());
    }
    once(&mut c.max_range, d)
});

loc_directive!(set_allow_origin, "hls_dvr_allow_origin", |c, a| {
    if a[0].is_empty() || a[0].bytes().any(|b| b.is_ascii_control()) {
        return Err("expects an origin, * or off".into());
    }
    once(&mut c.allow_origin, a[0].to_string())
});

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(format!("{other:?}: expects on or off")),
    }
}

loc_directive!(set_pass_args, "hls_dvr_pass_args", |c, a| once(&mut c.pass_args, on_off(a[0])?));

loc_directive!(set_ad_markers, "hls_dvr_ad_markers", |c, a| {
    let form = MarkerForm::parse(a[0]).ok_or_else(|| format!("{:?}: expects daterange, cue, both or off", a[0]))?;
    once(&mut c.ad_markers, form)
});

loc_directive!(set_sessions, "hls_dvr_sessions", |cf, c, a| {
    let on = on_off(a[0])?;
    if on {
        crate::HlsDvr::main_conf_mut(&*cf).ok_or("no main configuration")?.audience = true;
    }
    once(&mut c.sessions, on)
});

// `hls_dvr_session_secret FILE;`: read now, by the master (workers may not be allowed to).
loc_directive!(set_session_secret, "hls_dvr_session_secret", |cf, c, a| {
    let path = conf_file(cf, a[0])?;
    let secret = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let key = SessionKey::new(&secret).map_err(|e| format!("{}: {e}", path.display()))?;
    once(&mut c.session_secret, key)
});

// `hls_dvr_session_key $variable;`: the site's own per-viewer id (a cookie, a token's subject).
loc_directive!(set_session_key, "hls_dvr_session_key", |cf, c, a| {
    let name = a[0]
        .strip_prefix('$')
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{:?} is not a variable: expects one such as $cookie_viewer", a[0]))?;
    let mut n = ngx_str_t { len: name.len(), data: name.as_ptr() as *mut u8 };
    let index = ngx::ffi::ngx_http_get_variable_index(cf, &mut n);
    if index < 0 {
        return Err(format!("unknown variable ${name}"));
    }
    once(&mut c.session_key, index as usize)
});

main_directive!(set_edge_name, "hls_dvr_edge_name", |c, a| {
    let ok =
        !a[0].is_empty() && a[0].len() <= 64 && a[0].bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        return Err(format!("{:?} is not an edge name (1 to 64 letters, digits, '.', '_' or '-')", a[0]));
    }
    once(&mut c.edge_name, a[0].to_string())
});

/// A location's session directives make sense together (checked once merged).
pub fn check_loc(c: &LocConf) -> Result<(), String> {
    if c.enabled && c.sessions() && c.session_secret.is_none() && c.session_key.is_none() {
        return Err("\"hls_dvr_sessions on\" needs \"hls_dvr_session_secret FILE;\" (to sign the ids it gives) or \
                    \"hls_dvr_session_key $variable;\" (the site's own viewer id)"
            .into());
    }
    Ok(())
}

/// The location's core configuration, for a directive that gives it a content handler: one such
/// directive per location.
///
/// # Safety
/// `cf` is the `ngx_conf_t` nginx passes to a directive handler.
unsafe fn handled_location(cf: *mut ngx_conf_t) -> Result<&'static mut ngx_http_core_loc_conf_t, String> {
    // SAFETY: `cf` is the configuration being parsed (the contract above), on the master's thread.
    unsafe {
        let clcf: &mut ngx_http_core_loc_conf_t =
            NgxHttpCoreModule::location_conf_mut(&*cf).ok_or("no core location configuration")?;
        if clcf.handler.is_some() {
            return Err("the location already has a handler (hls_dvr, hls_dvr_status, hls_dvr_metrics, hls_dvr_stats \
                        or another module's): give each its own location"
                .into());
        }
        Ok(clcf)
    }
}

// `hls_dvr;` makes the location a DVR endpoint.
loc_directive!(set_hls_dvr, "hls_dvr", |cf, lc, _a| {
    if lc.enabled {
        return Err("is duplicate".into());
    }
    let clcf = handled_location(cf)?;
    // Routes are read from what follows the location's prefix, so it must be a plain prefix.
    if !clcf.regex.is_null() || clcf.exact_match() != 0 || clcf.named() != 0 || clcf.noname() != 0 {
        return Err("must be in a prefix location, such as \"location /live/ { hls_dvr; }\"".into());
    }
    let name = std::slice::from_raw_parts(clcf.name.data, clcf.name.len);
    lc.prefix = String::from_utf8(name.to_vec()).map_err(|_| "location name is not UTF-8")?;
    if !lc.prefix.ends_with('/') {
        lc.prefix.push('/');
    }
    lc.enabled = true;
    clcf.handler = crate::handler::CONTENT_HANDLER;
    let main = crate::HlsDvr::main_conf_mut(&*cf).ok_or("no main configuration")?;
    main.used = true;
    Ok(())
});

// `hls_dvr_status;`: the location answers the status document (JSON) from the store.
loc_directive!(set_status, "hls_dvr_status", |cf, lc, _a| {
    handled_location(cf)?.handler = crate::handler::CONTENT_HANDLER;
    lc.status = true;
    crate::HlsDvr::main_conf_mut(&*cf).ok_or("no main configuration")?.used = true;
    Ok(())
});

// `hls_dvr_stats;`: the location answers viewer statistics (JSON) from the store.
loc_directive!(set_stats, "hls_dvr_stats", |cf, lc, _a| {
    handled_location(cf)?.handler = crate::handler::CONTENT_HANDLER;
    lc.stats = true;
    let main = crate::HlsDvr::main_conf_mut(&*cf).ok_or("no main configuration")?;
    main.used = true;
    main.audience = true;
    Ok(())
});

// `hls_dvr_metrics;`: the location answers the shared counters in Prometheus's text format.
loc_directive!(set_metrics, "hls_dvr_metrics", |cf, _lc, _a| {
    handled_location(cf)?.handler = crate::metrics::HANDLER;
    crate::HlsDvr::main_conf_mut(&*cf).ok_or("no main configuration")?.metrics = true;
    Ok(())
});

/// The zone of the shared counters, added once the http block is read when anything uses it.
///
/// # Safety
/// `cf` is the `ngx_conf_t` of the http block being configured.
pub unsafe fn add_metrics_zone(cf: *mut ngx_conf_t, c: &mut MainConf) -> Result<(), String> {
    // SAFETY: `cf` is the configuration being parsed (the contract above), on the master's thread.
    unsafe {
        if !(c.used || c.metrics) {
            return Ok(());
        }
        let zone = shared_zone(cf, crate::metrics::ZONE, crate::metrics::zone_size())?;
        (*zone.as_ptr()).init = Some(crate::metrics::init_zone);
        c.metrics_zone = Some(zone);
        if c.audience {
            let zone = shared_zone(cf, crate::audience::ZONE, crate::audience::zone_size())?;
            (*zone.as_ptr()).init = Some(crate::audience::init_zone);
            c.audience_zone = Some(zone);
        }
        Ok(())
    }
}

/// After the whole http block is read: a DVR location needs a store to talk to, and the
/// connection's files must make sense together.
pub fn check_main(c: &mut MainConf) -> Result<(), String> {
    (c.credentials, c.tls) = c.secrets.load([
        "\"hls_dvr_username\"",
        "\"hls_dvr_password_file\"",
        "\"hls_dvr_tls_ca\"",
        "\"hls_dvr_tls_cert\"",
        "\"hls_dvr_tls_key\"",
    ])?;
    for (name, zone) in &c.cache_refs {
        // SAFETY: zones live as long as the configuration cycle.
        if unsafe { zone.as_ref() }.init.is_none() {
            return Err(format!(
                "\"hls_dvr_cache {name}\" names no zone: declare it with \"hls_dvr_cache_zone {name} SIZE;\""
            ));
        }
    }
    if !c.used {
        return Ok(());
    }
    if c.nodes.is_empty() {
        return Err("\"hls_dvr\" (or \"hls_dvr_status\") is used but \"hls_dvr_cassandra HOST:PORT ...;\" is missing in the http block".into());
    }
    if c.keyspace.is_none() {
        return Err(
            "\"hls_dvr\" (or \"hls_dvr_status\") is used but \"hls_dvr_keyspace NAME;\" is missing in the http block"
                .into(),
        );
    }
    Ok(())
}
