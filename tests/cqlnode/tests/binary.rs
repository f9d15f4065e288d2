//! The `hls-dvr-cqlnode` binary: startup line, signals, exit codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hls-dvr-cqlnode");

fn wait(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn prints_address_serves_and_exits_zero_on_sigterm() {
    let mut child =
        Command::new(BIN).args(["--listen", "127.0.0.1:0", "--delay-ms", "1"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr =
        line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("bad first line {line:?}")).to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let s = scylla::client::session_builder::SessionBuilder::new().known_node(&addr).build().await.unwrap();
        s.query_unpaged("SELECT key FROM system.local", ()).await.unwrap();
    });
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let st = wait(&mut child, Duration::from_secs(10)).expect("exits on SIGTERM");
    assert_eq!(st.code(), Some(0));
}

#[test]
fn bad_arguments_and_busy_port_exit_two() {
    for args in [&["--bogus"][..], &["--listen"], &["--delay-ms", "soon"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage"), "{args:?}");
    }
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(BIN).args(["--listen", &addr]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}
