//! A production-like cluster: a Cassandra node of its own with PasswordAuthenticator and
//! client-certificate TLS (keystores made by `scripts/cassandra start --secure` with keytool).
//! Right credentials work for the uploader and the module; wrong ones are a clear error at the
//! uploader's start and 503s with one error-log line in nginx; the local datacenter is honoured.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use hls_dvr_core::clock::now_ms;
use hls_dvr_store::{Credentials, Store, StoreConfig, Tls};

/// The secure node, stopped when the test ends.
struct SecureNode {
    dir: PathBuf,
    addr: String,
}

impl SecureNode {
    fn start() -> SecureNode {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/cassandra-secure");
        // Ports of their own: the suite's plain node keeps 9042 and 7000.
        let out = Command::new(root.join("scripts/cassandra"))
            .args(["start", "--secure", "--port", "9142", "--storage-port", "7100", "--dir"])
            .arg(&dir)
            .output()
            .expect("scripts/cassandra");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "secure node: {text}{}", String::from_utf8_lossy(&out.stderr));
        let addr = text.lines().last().and_then(|l| l.strip_prefix("cassandra: ")).expect("address line").to_string();
        SecureNode { dir, addr }
    }

    fn tls(&self, name: &str) -> PathBuf {
        self.dir.join("tls").join(name)
    }
}

impl Drop for SecureNode {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cassandra"))
            .arg("stop")
            .arg("--dir")
            .arg(&self.dir)
            .status();
    }
}

#[test]
fn credentials_tls_and_local_datacenter() {
    let node = SecureNode::start();
    let files = TempDir::new("secure");
    let right = files.path().join("right.pw");
    let wrong = files.path().join("wrong.pw");
    std::fs::write(&right, "cassandra\n").unwrap();
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let (ca, cert, key) = (node.tls("ca.pem"), node.tls("client.pem"), node.tls("client.key"));
    let conn = |pw: &Path| -> Vec<String> {
        [
            "--cassandra",
            &node.addr,
            "--username",
            "cassandra",
            "--password-file",
            pw.to_str().unwrap(),
            "--tls-ca",
            ca.to_str().unwrap(),
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let ks = keyspace("secure");

    // The uploader: right credentials create the schema...
    let out = Command::new(upload_bin()).arg("schema").args(conn(&right)).args(["--keyspace", &ks]).output().unwrap();
    assert!(out.status.success(), "schema with the right password: {}", String::from_utf8_lossy(&out.stderr));
    // ...wrong ones stop it at start-up with the reason, exit 1.
    let dir = TempDir::new("secure-stream");
    let out = Command::new(upload_bin())
        .args(conn(&wrong))
        .args(["--keyspace", &ks, "--stream", "demo"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot use the store") && err.contains("\"cassandra\""), "{err}");
    assert!(err.to_lowercase().contains("password") || err.to_lowercase().contains("authentication"), "{err}");
    // No client certificate, though the node requires one: refused too.
    let out = Command::new(upload_bin())
        .args(&conn(&right)[..8])
        .args(["--keyspace", &ks, "--stream", "demo"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));

    // A segment stored over the same secure connection, through the store layer.
    let rt = rt();
    let mut cfg = StoreConfig::new(vec![node.addr.clone()], &ks);
    cfg.credentials = Some(Credentials::from_file("cassandra", &right).unwrap());
    cfg.tls = Some(Tls::load(&ca, Some(&cert), Some(&key)).unwrap());
    cfg.local_dc = Some("dc1".into());
    let store = rt.block_on(Store::connect(&cfg)).expect("store over TLS with credentials");
    let segment = Bytes::from(vec![0x47u8; 188 * 100]);
    let now = now_ms();
    for msn in 0..4 {
        let e = entry(msn, now - (4 - msn) * 2000, segment.len());
        store_segment(&rt, &store, "demo", &e, &segment, &head_of("hi", &e, false));
    }

    let nginx_conf = |pw: &Path, dc: &str| {
        format!(
            "hls_dvr_username cassandra; hls_dvr_password_file {}; hls_dvr_tls_ca {}; hls_dvr_tls_cert {}; \
             hls_dvr_tls_key {}; hls_dvr_local_dc {dc}; hls_dvr_timeout 1s;",
            pw.display(),
            ca.display(),
            cert.display(),
            key.display()
        )
    };
    // The module with the right credentials, in the node's datacenter: served.
    let ng = Nginx::start(&node.addr, &ks, 1, &nginx_conf(&right, "dc1"), "");
    ng.wait_ready("/live/demo/master.m3u8");
    assert_eq!(get(&ng.url("/live/demo/hi/index.m3u8")).status, 200);
    let r = get(&ng.url("/live/demo/hi/2.ts"));
    assert!(r.status == 200 && r.body == segment, "segment over TLS: {}", r.status);
    drop(ng);

    // Wrong credentials: 503 at once, and one clear line in the error log however long it lasts.
    let ng = Nginx::start(&node.addr, &ks, 1, &nginx_conf(&wrong, "dc1"), "");
    for _ in 0..10 {
        assert_eq!(get(&ng.url("/live/demo/hi/index.m3u8")).status, 503);
        std::thread::sleep(Duration::from_millis(400));
    }
    let log = ng.error_log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("[error]") && l.contains("hls_dvr: ")).collect();
    assert_eq!(lines.len(), 1, "one error line for the refused login:\n{log}");
    assert!(lines[0].contains("\"cassandra\"") && lines[0].contains("over TLS"), "{}", lines[0]);
    drop(ng);

    // A local datacenter the cluster does not have: no node may be asked, nothing is served.
    let ng = Nginx::start(&node.addr, &ks, 1, &nginx_conf(&right, "dc9"), "");
    std::thread::sleep(Duration::from_secs(3));
    let r = get(&ng.url("/live/demo/hi/index.m3u8"));
    assert!(r.status == 503 || r.status == 504, "served from outside the local datacenter: {}", r.status);
}
