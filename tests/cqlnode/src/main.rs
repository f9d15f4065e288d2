//! `hls-dvr-cqlnode [--listen ADDR] [--delay-ms N]`: runs the in-memory CQL test node until
//! SIGTERM or SIGINT. A test fixture, not a store: data lives in memory only.

use hls_dvr_cqlnode::server::{serve, Shared};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "usage: hls-dvr-cqlnode [--listen ADDR (default 127.0.0.1:9042)] [--delay-ms N]";

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let mut listen = "127.0.0.1:9042".to_string();
    let mut delay_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            "--listen" | "--delay-ms" => {
                let Some(v) = inline.or_else(|| args.next()) else {
                    eprintln!("hls-dvr-cqlnode: {flag} needs a value\n{USAGE}");
                    return 2;
                };
                if flag == "--listen" {
                    listen = v;
                } else {
                    match v.parse() {
                        Ok(n) => delay_ms = n,
                        Err(_) => {
                            eprintln!("hls-dvr-cqlnode: --delay-ms {v:?} is not a number of milliseconds\n{USAGE}");
                            return 2;
                        }
                    }
                }
            }
            _ => {
                eprintln!("hls-dvr-cqlnode: unknown argument {a:?}\n{USAGE}");
                return 2;
            }
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hls-dvr-cqlnode: cannot start runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hls-dvr-cqlnode: cannot listen on {listen}: {e}");
                return 2;
            }
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("hls-dvr-cqlnode: {e}");
                return 1;
            }
        };
        let shared = Arc::new(Shared::new(addr.port()));
        shared.set_delay(Duration::from_millis(delay_ms));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(serve(listener, shared, stop_rx));
        // Handlers first: a supervisor may signal as soon as it reads the line below.
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("hls-dvr-cqlnode: cannot install SIGTERM handler: {e}");
                return 1;
            }
        };
        let mut int = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("hls-dvr-cqlnode: cannot install SIGINT handler: {e}");
                return 1;
            }
        };
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.send_replace(true);
        let _ = server.await;
        0
    })
}
