//! Wire-level behaviour the driver tests cannot provoke: protocol version negotiation,
//! malformed frames, and requests before STARTUP.

use hls_dvr_cqlnode::Node;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn frame(version: u8, stream: i16, opcode: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![version, 0];
    f.extend_from_slice(&stream.to_be_bytes());
    f.push(opcode);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// Reads one response: (version byte, stream, opcode, body).
fn read(s: &mut TcpStream) -> std::io::Result<(u8, i16, u8, Vec<u8>)> {
    let mut h = [0u8; 9];
    s.read_exact(&mut h)?;
    let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok((h[0], i16::from_be_bytes([h[2], h[3]]), h[4], body))
}

fn error_code(body: &[u8]) -> i32 {
    i32::from_be_bytes([body[0], body[1], body[2], body[3]])
}

fn error_message(body: &[u8]) -> String {
    let n = u16::from_be_bytes([body[4], body[5]]) as usize;
    String::from_utf8_lossy(&body[6..6 + n]).into_owned()
}

fn open(node: &Node) -> TcpStream {
    let s = TcpStream::connect(node.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn startup_body() -> Vec<u8> {
    let mut b = vec![0, 1];
    for s in ["CQL_VERSION", "3.0.0"] {
        b.extend_from_slice(&(s.len() as u16).to_be_bytes());
        b.extend_from_slice(s.as_bytes());
    }
    b
}

fn query_body(q: &str) -> Vec<u8> {
    let mut b = (q.len() as i32).to_be_bytes().to_vec();
    b.extend_from_slice(q.as_bytes());
    b.extend_from_slice(&[0, 1, 0]); // consistency ONE, no flags
    b
}

#[test]
fn other_protocol_versions_get_a_v4_protocol_error() {
    let node = Node::spawn("127.0.0.1:0").unwrap();
    for v in [5u8, 3, 6] {
        let mut s = open(&node);
        s.write_all(&frame(v, 3, 0x05, &[])).unwrap();
        let (ver, stream, op, body) = read(&mut s).unwrap();
        assert_eq!((ver, stream, op), (0x84, 3, 0x00));
        assert_eq!(error_code(&body), 0x000A);
        assert!(error_message(&body).contains("unsupported protocol version"), "{}", error_message(&body));
        assert!(closed(&mut s));
    }
}

#[test]
fn handshake_and_simple_query() {
    let node = Node::spawn("127.0.0.1:0").unwrap();
    let mut s = open(&node);
    // Before STARTUP only OPTIONS and STARTUP are accepted.
    s.write_all(&frame(4, 1, 0x07, &query_body("SELECT * FROM system.local"))).unwrap();
    let (_, _, op, body) = read(&mut s).unwrap();
    assert_eq!((op, error_code(&body)), (0x00, 0x000A));
    s.write_all(&frame(4, 2, 0x05, &[])).unwrap();
    let (_, stream, op, body) = read(&mut s).unwrap();
    assert_eq!((stream, op), (2, 0x06));
    assert!(String::from_utf8_lossy(&body).contains("CQL_VERSION"));
    s.write_all(&frame(4, 3, 0x01, &startup_body())).unwrap();
    assert_eq!(read(&mut s).unwrap().2, 0x02, "READY");
    s.write_all(&frame(4, 4, 0x07, &query_body("SELECT key, release_version FROM system.local"))).unwrap();
    let (_, stream, op, body) = read(&mut s).unwrap();
    assert_eq!((stream, op), (4, 0x08));
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), 2, "Rows");
    assert!(String::from_utf8_lossy(&body).contains("4.0.11"));
    // A truncated QUERY body is a protocol error; the connection stays usable.
    s.write_all(&frame(4, 5, 0x07, &[0, 0, 0, 50, b'S'])).unwrap();
    let (_, stream, _, body) = read(&mut s).unwrap();
    assert_eq!((stream, error_code(&body)), (5, 0x000A));
    // An unknown prepared id asks the client to re-prepare.
    s.write_all(&frame(4, 6, 0x0A, &[0, 2, 0xAB, 0xCD, 0, 1, 0])).unwrap();
    let (_, _, _, body) = read(&mut s).unwrap();
    assert_eq!(error_code(&body), 0x2500);
    // Compression was not negotiated.
    let mut f = frame(4, 7, 0x07, &query_body("SELECT * FROM system.local"));
    f[1] = 0x01;
    s.write_all(&f).unwrap();
    assert_eq!(error_code(&read(&mut s).unwrap().3), 0x000A);
    s.write_all(&frame(4, 8, 0x07, &query_body("SELECT key FROM system.local"))).unwrap();
    assert_eq!(read(&mut s).unwrap().2, 0x08);
}

#[test]
fn bad_headers_and_oversized_frames_close_the_connection() {
    let node = Node::spawn("127.0.0.1:0").unwrap();
    // A response frame sent to the server.
    let mut s = open(&node);
    s.write_all(&frame(0x84, 1, 0x05, &[])).unwrap();
    assert_eq!(error_code(&read(&mut s).unwrap().3), 0x000A);
    assert!(closed(&mut s));
    // A body length above 256 MiB.
    let mut s = open(&node);
    s.write_all(&[4, 0, 0, 1, 0x07, 0x10, 0, 0, 1]).unwrap();
    assert_eq!(error_code(&read(&mut s).unwrap().3), 0x000A);
    assert!(closed(&mut s));
    // A client that hangs up mid-frame does not disturb the node.
    let mut s = open(&node);
    s.write_all(&[4, 0, 0, 1, 0x07, 0, 0, 0, 100, 1, 2]).unwrap();
    drop(s);
    let mut s = open(&node);
    s.write_all(&frame(4, 1, 0x05, &[])).unwrap();
    assert_eq!(read(&mut s).unwrap().2, 0x06);
}

#[test]
fn set_down_closes_and_refuses_connections() {
    let node = Node::spawn("127.0.0.1:0").unwrap();
    let mut s = open(&node);
    s.write_all(&frame(4, 1, 0x05, &[])).unwrap();
    read(&mut s).unwrap();
    node.set_down(true);
    assert!(closed(&mut s), "existing connection closed");
    let mut s2 = open(&node);
    assert!(closed(&mut s2), "new connection accepted then closed");
    node.set_down(false);
    let mut s3 = open(&node);
    s3.write_all(&frame(4, 1, 0x05, &[])).unwrap();
    assert_eq!(read(&mut s3).unwrap().2, 0x06);
}

/// Deterministic xorshift, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_request_bodies_get_answers_not_crashes() {
    let node = Node::spawn("127.0.0.1:0").unwrap();
    let mut s = open(&node);
    s.write_all(&frame(4, 0, 0x01, &startup_body())).unwrap();
    read(&mut s).unwrap();
    // Give EXECUTE a real statement id to chew on sometimes.
    let mut b = query_body("CREATE KEYSPACE k WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    s.write_all(&frame(4, 0, 0x07, &b)).unwrap();
    read(&mut s).unwrap();
    b = query_body("CREATE TABLE k.t (p int, c int, v blob, PRIMARY KEY (p, c))");
    s.write_all(&frame(4, 0, 0x07, &b)).unwrap();
    read(&mut s).unwrap();
    let q = "INSERT INTO k.t (p, c, v) VALUES (?, ?, ?)";
    let mut pb = (q.len() as i32).to_be_bytes().to_vec();
    pb.extend_from_slice(q.as_bytes());
    s.write_all(&frame(4, 0, 0x09, &pb)).unwrap();
    let (_, _, _, prepared) = read(&mut s).unwrap();
    let id = prepared[6..6 + u16::from_be_bytes([prepared[4], prepared[5]]) as usize].to_vec();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let opcodes = [0x07u8, 0x09, 0x0A, 0x0D, 0x0B, 0x05, 0x01];
    for n in 0..3000i16 {
        let op = opcodes[rng.below(opcodes.len())];
        let mut body: Vec<u8> = Vec::new();
        // Sometimes start from a plausible prefix so parsing gets deeper.
        match (op, rng.below(3)) {
            (0x0A, 0) => {
                body.extend_from_slice(&(id.len() as u16).to_be_bytes());
                body.extend_from_slice(&id);
                body.extend_from_slice(&[0, 1, rng.below(256) as u8]);
            }
            (0x07, 0) => {
                body = query_body("SELECT * FROM k.t WHERE p = ?");
                body.pop();
                body.push(rng.below(256) as u8);
            }
            (0x0D, 0) => body.extend_from_slice(&[rng.below(3) as u8, 0, 1, 1]),
            _ => {}
        }
        for _ in 0..rng.below(40) {
            body.push(match rng.below(4) {
                0 => 0,
                1 => 0xFF,
                _ => rng.next() as u8,
            });
        }
        s.write_all(&frame(4, n, op, &body)).unwrap();
        let (ver, stream, _, _) =
            read(&mut s).unwrap_or_else(|e| panic!("no answer to frame {n} (opcode {op:#x}, body {body:?}): {e}"));
        assert_eq!((ver, stream), (0x84, n));
    }
}
