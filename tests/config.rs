//! `nginx -t` with the module: good configurations pass, each mistake fails with a message that
//! names the directive and the fix.

mod common;

use std::process::Command;

use common::*;

/// Runs `nginx -t` on a configuration built from http-level and location-level lines.
fn nginx_t(http: &str, location: &str) -> (bool, String) {
    let dir = TempDir::new("conf");
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
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
         hls_dvr_max_in_flight 64; hls_dvr_playlist_cache off;"
    );
    let (ok, err) = nginx_t(
        &full,
        "hls_dvr_allow_origin https://player.example; \
         location /live/ { hls_dvr; hls_dvr_window 1h30m; } location /short/ { hls_dvr; hls_dvr_window 5m; hls_dvr_allow_origin off; }",
    );
    assert!(ok, "{err}");
    // Without any hls_dvr location the store directives are harmless.
    let (ok, err) = nginx_t("", "location / { return 204; }");
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
    ];
    for (http, location, want) in cases {
        let (ok, err) = nginx_t(http, location);
        assert!(!ok, "accepted: http {{ {http} }} server {{ {location} }}");
        assert!(err.contains(want), "for http {{ {http} }} server {{ {location} }}\nwanted {want:?} in:\n{err}");
        assert!(err.contains("[emerg]") && err.contains("nginx.conf:"), "no directive line in:\n{err}");
    }
}
