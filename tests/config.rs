//! `nginx -t` with the module: good configurations pass, each mistake fails with a message that
//! names the directive and the fix.

mod common;

use std::process::Command;

use common::*;

/// Runs `nginx -t` on a configuration built from http-level and location-level lines; the http
/// lines are line 7 of nginx.conf.
fn nginx_t(http: &str, location: &str) -> (bool, String) {
    nginx_t_with(&[], http, location)
}

/// [`nginx_t`] with `files` (name, contents) written beside nginx.conf first.
fn nginx_t_with(files: &[(&str, &[u8])], http: &str, location: &str) -> (bool, String) {
    let dir = TempDir::new("conf");
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let conf = format!(
        "load_module {};\nerror_log {d}/logs/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{\n  access_log off;\n  {http}\n  server {{\n    listen 127.0.0.1:1;\n    {location}\n  }}\n}}\n",
        module_path().display(),
        d = dir.path().display(),
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let out = Command::new("nginx")
        .args(["-t", "-p", &dir.path().display().to_string(), "-c", "nginx.conf"])
        .output()
        .expect("nginx");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const STORE: &str = "hls_dvr_cassandra 127.0.0.1:9042 127.0.0.2:9042; hls_dvr_keyspace dvr;";

#[test]
fn good_configurations_pass() {
    let (ok, err) = nginx_t(STORE, "location /live/ { hls_dvr; }");
    assert!(ok, "{err}");
    let full = format!(
        "{STORE} hls_dvr_consistency local_one; hls_dvr_timeout 1500ms; hls_dvr_connect_timeout 3s; \
         hls_dvr_max_in_flight 64; hls_dvr_playlist_cache off; hls_dvr_cache_zone edge 8m; \
         hls_dvr_speculative_retry 50ms;"
    );
    let (ok, err) = nginx_t(
        &full,
        "hls_dvr_allow_origin https://player.example; \
         location /live/ { hls_dvr; hls_dvr_window '1h 30m'; hls_dvr_max_range 12h; hls_dvr_cache edge; } location /short/ { hls_dvr; hls_dvr_window 5m; hls_dvr_allow_origin off; hls_dvr_pass_args off; hls_dvr_ad_markers both; } \
         location = /status { hls_dvr_status; } location = /metrics { hls_dvr_metrics; }",
    );
    assert!(ok, "{err}");
    // Production cluster settings: credentials from a file, TLS with a client certificate, a
    // local datacenter; relative file names are relative to nginx.conf's folder.
    let (cert, key) = self_signed();
    let files: &[(&str, &[u8])] =
        &[("pw", b"secret\n"), ("ca.pem", &cert), ("client.pem", &cert), ("client.key", &key)];
    let secure = format!(
        "{STORE} hls_dvr_username dvr; hls_dvr_password_file pw; hls_dvr_tls_ca ca.pem; \
         hls_dvr_tls_cert client.pem; hls_dvr_tls_key client.key; hls_dvr_local_dc eu-west-1;"
    );
    let (ok, err) = nginx_t_with(files, &secure, "location /live/ { hls_dvr; }");
    assert!(ok, "{err}");
    // Without any hls_dvr location the store directives are harmless.
    let (ok, err) = nginx_t("", "location / { return 204; }");
    assert!(ok, "{err}");
    // Metrics need no store: they count what the edge serves.
    let (ok, err) = nginx_t("", "location = /metrics { hls_dvr_metrics; }");
    assert!(ok, "{err}");
}

#[test]
fn mistakes_fail_with_clear_messages() {
    let cases: &[(&str, &str, &str)] = &[
        ("hls_dvr_keyspace dvr;", "location /live/ { hls_dvr; }", "\"hls_dvr_cassandra HOST:PORT ...;\" is missing"),
        ("hls_dvr_cassandra 127.0.0.1:9042;", "location /live/ { hls_dvr; }", "\"hls_dvr_keyspace NAME;\" is missing"),
        ("hls_dvr_cassandra 127.0.0.1; hls_dvr_keyspace dvr;", "", "expected HOST:PORT"),
        ("hls_dvr_cassandra 127.0.0.1:0; hls_dvr_keyspace dvr;", "", "port in 1..65535"),
        ("hls_dvr_cassandra 127.0.0.1:9042; hls_dvr_keyspace 9lives;", "", "is not a keyspace name"),
        ("hls_dvr_cassandra 127.0.0.1:9042; hls_dvr_keyspace a; hls_dvr_keyspace b;", "", "is duplicate"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_window 2 hours; }", "invalid number of arguments"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_window 2x; }", "is not a duration"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_window 0s; }", "must be greater than zero"),
        (&format!("{STORE} hls_dvr_consistency most;"), "", "unknown consistency level"),
        (&format!("{STORE} hls_dvr_timeout 0;"), "", "must be greater than zero"),
        (&format!("{STORE} hls_dvr_max_in_flight 0;"), "", "not a number between 1 and 1000000"),
        (&format!("{STORE} hls_dvr_playlist_cache 1m;"), "", "must be at most 5s"),
        (STORE, "location = /live/ { hls_dvr; }", "must be in a prefix location"),
        (STORE, "location ~ ^/live/ { hls_dvr; }", "must be in a prefix location"),
        (STORE, "location /live/ { hls_dvr; hls_dvr; }", "is duplicate"),
        (STORE, "location /live/ { hls_dvr on; }", "invalid number of arguments"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_max_range 30s; }", "must be at least 1m"),
        (&format!("{STORE} hls_dvr_cache_zone edge 100k;"), "", "at least 1m"),
        (&format!("{STORE} hls_dvr_speculative_retry soon;"), "", "is not a duration"),
        (&format!("{STORE} hls_dvr_cache_zone edge 10x;"), "", "is not a size"),
        (&format!("{STORE} hls_dvr_cache_zone edge 4m; hls_dvr_cache_zone edge 4m;"), "", "declared twice"),
        (&format!("{STORE} hls_dvr_cache_zone e/dge 4m;"), "", "is not a zone name"),
        (
            STORE,
            "location /live/ { hls_dvr; hls_dvr_cache nowhere; }",
            "declare it with \"hls_dvr_cache_zone nowhere SIZE;\"",
        ),
        (
            &format!("{STORE} hls_dvr_cache_zone edge 4m;"),
            "location /live/ { hls_dvr; hls_dvr_cache edge; hls_dvr_cache off; }",
            "is duplicate",
        ),
        (STORE, "location /live/ { hls_dvr; hls_dvr_max_range 2h; hls_dvr_max_range 3h; }", "is duplicate"),
        (&format!("{STORE} hls_dvr_username dvr;"), "", "\"hls_dvr_username\" needs \"hls_dvr_password_file\""),
        (&format!("{STORE} hls_dvr_local_dc \"dc 1\";"), "", "is not a datacenter name"),
        (&format!("{STORE} hls_dvr_username a; hls_dvr_username b;"), "", "is duplicate"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_pass_args yes; }", "expects on or off"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_pass_args on; hls_dvr_pass_args off; }", "is duplicate"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_ad_markers scte35; }", "expects daterange, cue, both or off"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_ad_markers cue; hls_dvr_ad_markers off; }", "is duplicate"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_metrics; }", "give each its own location"),
        (STORE, "location = /status { hls_dvr_status; hls_dvr_status; }", "give each its own location"),
        (STORE, "location = /status { proxy_pass http://127.0.0.1:1; hls_dvr_status; }", "already has a handler"),
        (STORE, "location = /metrics { hls_dvr_metrics now; }", "invalid number of arguments"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_sessions on; }", "needs \"hls_dvr_session_secret FILE;\""),
        (&format!("{STORE} hls_dvr_sessions on;"), "location /live/ { hls_dvr; }", "hls_dvr_session_key $variable;"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_sessions yes; }", "expects on or off"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_sessions on; hls_dvr_sessions off; }", "is duplicate"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_session_secret missing.key; }", "cannot read"),
        (STORE, "location /live/ { hls_dvr; hls_dvr_session_key cookie_v; }", "is not a variable"),
        (&format!("{STORE} hls_dvr_edge_name \"edge 1\";"), "", "is not an edge name"),
        (&format!("{STORE} hls_dvr_edge_name a; hls_dvr_edge_name b;"), "", "is duplicate"),
        (STORE, "location /live/ { hls_dvr_sessions on; hls_dvr_edge_name a; }", "directive is not allowed here"),
        (STORE, "location = /stats { hls_dvr_stats; hls_dvr_stats; }", "give each its own location"),
        (STORE, "location = /stats { hls_dvr_stats now; }", "invalid number of arguments"),
        (
            "hls_dvr_keyspace dvr;",
            "location = /status { hls_dvr_status; }",
            "\"hls_dvr_cassandra HOST:PORT ...;\" is missing",
        ),
    ];
    for (http, location, want) in cases {
        let (ok, err) = nginx_t(http, location);
        assert!(!ok, "accepted: http {{ {http} }} server {{ {location} }}");
        assert!(err.contains(want), "for http {{ {http} }} server {{ {location} }}\nwanted {want:?} in:\n{err}");
        assert!(err.contains("[emerg]") && err.contains("nginx.conf:"), "no directive line in:\n{err}");
    }
}

/// Sessions: a secret shorter than 128 bits is refused; a good one, or the site's own key,
/// passes at http, server and location level.
#[test]
fn session_directives() {
    let files: &[(&str, &[u8])] = &[("short.key", b"tiny\n"), ("session.key", b"0123456789abcdef0123\n")];
    let loc = "location /live/ { hls_dvr; hls_dvr_sessions on; hls_dvr_session_secret short.key; }";
    let (ok, err) = nginx_t_with(files, STORE, loc);
    assert!(!ok && err.contains("at least 16"), "{err}");
    // nginx itself checks that a variable exists, once every module has declared its own.
    let (ok, err) = nginx_t(STORE, "location /live/ { hls_dvr; hls_dvr_session_key $no_such_thing; }");
    assert!(!ok && err.contains("unknown \"no_such_thing\" variable"), "{err}");
    for (http, location) in [
        (
            format!("{STORE} hls_dvr_sessions on; hls_dvr_session_secret session.key; hls_dvr_edge_name edge-1.a;"),
            "location /live/ { hls_dvr; } location = /stats { hls_dvr_stats; }",
        ),
        (STORE.to_string(), "hls_dvr_sessions on; hls_dvr_session_key $cookie_viewer; location /live/ { hls_dvr; }"),
        (
            STORE.to_string(),
            "location /live/ { hls_dvr; hls_dvr_sessions on; hls_dvr_session_secret session.key; } \
             location /free/ { hls_dvr; }",
        ),
    ] {
        let (ok, err) = nginx_t_with(files, &http, location);
        assert!(ok, "http {{ {http} }} server {{ {location} }}: {err}");
    }
}

/// A certificate and key made with the openssl command line, for configurations that need PEM.
fn self_signed() -> (Vec<u8>, Vec<u8>) {
    let dir = TempDir::new("pem");
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=hls-dvr-test"])
        .arg("-keyout")
        .arg(dir.path().join("k.pem"))
        .arg("-out")
        .arg(dir.path().join("c.pem"))
        .output()
        .expect("openssl");
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    (std::fs::read(dir.path().join("c.pem")).unwrap(), std::fs::read(dir.path().join("k.pem")).unwrap())
}

#[test]
fn unusable_connection_files_fail_with_their_line() {
    let (cert, key) = self_signed();
    let files: &[(&str, &[u8])] = &[("junk.pem", b"not a certificate\n"), ("cert.pem", &cert), ("key.pem", &key)];
    let cases = [
        // A file that cannot be read: the directive's own line (7).
        ("hls_dvr_username dvr; hls_dvr_password_file /nonexistent/pw;", "cannot read /nonexistent/pw", true),
        ("hls_dvr_tls_ca /nonexistent/ca.pem;", "cannot read /nonexistent/ca.pem", true),
        ("hls_dvr_tls_ca ca.pem;", "ca.pem: No such file", true),
        // Files that do not go together or do not parse: named once the http block is read.
        ("hls_dvr_tls_ca junk.pem;", "CA", false),
        ("hls_dvr_tls_cert cert.pem; hls_dvr_tls_key key.pem;", "need \"hls_dvr_tls_ca\"", false),
        ("hls_dvr_tls_ca cert.pem; hls_dvr_tls_cert cert.pem;", "needs its private key", false),
        ("hls_dvr_tls_ca cert.pem; hls_dvr_tls_cert cert.pem; hls_dvr_tls_key junk.pem;", "client key", false),
    ];
    for (http, want, line7) in cases {
        let (ok, err) = nginx_t_with(files, &format!("{STORE} {http}"), "location /live/ { hls_dvr; }");
        assert!(!ok, "accepted: {http}");
        assert!(err.contains(want), "for {http}\nwanted {want:?} in:\n{err}");
        assert!(err.contains("[emerg]"), "{err}");
        if line7 {
            assert!(err.contains("nginx.conf:7"), "not reported at its line: {err}");
        }
    }
}
