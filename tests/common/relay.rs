//! A relay between an encoder and a receiver that retries, as MediaLive and Elemental do when
//! their destination refuses a connection: it answers the encoder at once (201), keeps each
//! request, and delivers them in order to the receiver, trying again every 100 ms while the
//! receiver is down. (ffmpeg's `tee` drops a failed output for good; this keeps a receiver that
//! was killed and restarted fed.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// One request as the encoder sent it.
struct Held {
    method: String,
    path: String,
    body: Vec<u8>,
}

pub struct Relay {
    pub port: u16,
}

/// Reads one request (Content-Length or chunked body); None at the connection's end.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Held> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok()?,
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut t = String::new();
                    r.read_line(&mut t).ok()?;
                    if t.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let at = body.len();
            body.resize(at + n, 0);
            r.read_exact(&mut body[at..]).ok()?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Held { method, path, body })
}

/// Delivers one request; the status, or None when the receiver did not answer.
fn deliver(port: u16, h: &Held) -> Option<u16> {
    let mut c = TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        h.method,
        h.path,
        h.body.len()
    );
    c.write_all(head.as_bytes()).ok()?;
    c.write_all(&h.body).ok()?;
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).split(' ').nth(1)?.parse().ok()
}

impl Relay {
    /// Relays to the receiver on `target` (127.0.0.1). Runs until the test process ends.
    pub fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel::<Held>();
        std::thread::spawn(move || {
            for h in rx {
                // Retried while the receiver is down or failing (5xx); a 4xx is its answer.
                while deliver(target, &h).is_none_or(|s| s >= 500) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let Ok(mut w) = conn.try_clone() else { return };
                    let mut r = BufReader::new(conn);
                    while let Some(h) = read_request(&mut r) {
                        if tx.send(h).is_err()
                            || w.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n").is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Relay { port }
    }
}
