//! Native protocol v4 framing: reading request frames with length checks, decoding request
//! bodies, and encoding responses (section 2-4 of the v4 spec). No compression.

use crate::exec::{CqlError, ErrorExtra, Outcome, PrepInfo, ResultMeta, Value};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncReadExt};

pub const VERSION: u8 = 0x04;
pub const RESPONSE: u8 = 0x80;
/// Largest body accepted; Cassandra's default native_transport_max_frame_size is 256 MiB.
pub const MAX_BODY: usize = 256 << 20;

pub mod flags {
    pub const COMPRESSION: u8 = 0x01;
    pub const CUSTOM_PAYLOAD: u8 = 0x04;
}

pub mod opcode {
    pub const ERROR: u8 = 0x00;
    pub const STARTUP: u8 = 0x01;
    pub const READY: u8 = 0x02;
    pub const AUTHENTICATE: u8 = 0x03;
    pub const OPTIONS: u8 = 0x05;
    pub const SUPPORTED: u8 = 0x06;
    pub const QUERY: u8 = 0x07;
    pub const RESULT: u8 = 0x08;
    pub const PREPARE: u8 = 0x09;
    pub const EXECUTE: u8 = 0x0A;
    pub const REGISTER: u8 = 0x0B;
    pub const BATCH: u8 = 0x0D;
    pub const AUTH_RESPONSE: u8 = 0x0F;
}

#[derive(Debug)]
pub struct Frame {
    pub version: u8,
    pub flags: u8,
    pub stream: i16,
    pub opcode: u8,
    pub body: Bytes,
}

#[derive(Debug)]
pub enum ReadError {
    /// Clean end of stream between frames.
    Eof,
    Io(std::io::Error),
    /// The header is not a request frame we can even skip; the connection must close.
    /// Carries the stream id (when known) and a message for a last error frame.
    Fatal {
        stream: i16,
        message: String,
    },
}

/// Reads one frame. A frame of another protocol version is returned as is (with its body) so
/// the caller can answer with a protocol error that makes drivers downgrade.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Frame, ReadError> {
    let mut h = [0u8; 9];
    // Distinguish EOF before a frame (clean close) from EOF inside one.
    match r.read(&mut h[..1]).await {
        Ok(0) => return Err(ReadError::Eof),
        Ok(_) => {}
        Err(e) => return Err(ReadError::Io(e)),
    }
    r.read_exact(&mut h[1..]).await.map_err(ReadError::Io)?;
    let stream = i16::from_be_bytes([h[2], h[3]]);
    if h[0] & RESPONSE != 0 {
        return Err(ReadError::Fatal {
            stream,
            message: "Invalid frame: a response frame was sent to the server".into(),
        });
    }
    let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
    if len > MAX_BODY {
        return Err(ReadError::Fatal {
            stream,
            message: format!("Request is too big: length {len} exceeds maximum allowed length {MAX_BODY}"),
        });
    }
    let mut body = BytesMut::zeroed(len);
    r.read_exact(&mut body).await.map_err(ReadError::Io)?;
    Ok(Frame { version: h[0] & 0x7F, flags: h[1], stream, opcode: h[4], body: body.freeze() })
}

/// Encodes a response frame.
pub fn response(stream: i16, opcode: u8, body: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(9 + body.len());
    b.put_u8(RESPONSE | VERSION);
    b.put_u8(0);
    b.put_i16(stream);
    b.put_u8(opcode);
    b.put_u32(body.len() as u32);
    b.put_slice(body);
    b.freeze()
}

/// Decoding error of a request body: answered with a protocol error, connection kept.
#[derive(Debug)]
pub struct Malformed(pub String);

impl From<Malformed> for CqlError {
    fn from(m: Malformed) -> Self {
        CqlError::protocol(m.0)
    }
}

/// A cursor over a request body; every read is bounds-checked.
pub struct Body {
    b: Bytes,
}

type R<T> = Result<T, Malformed>;

impl Body {
    pub fn new(b: Bytes) -> Self {
        Body { b }
    }
    fn take(&mut self, n: usize, what: &str) -> R<Bytes> {
        if self.b.len() < n {
            return Err(Malformed(format!("truncated request body while reading {what}")));
        }
        Ok(self.b.split_to(n))
    }
    pub fn remaining(&self) -> usize {
        self.b.len()
    }
    pub fn u8(&mut self) -> R<u8> {
        Ok(self.take(1, "a byte")?[0])
    }
    pub fn u16(&mut self) -> R<u16> {
        let t = self.take(2, "a short")?;
        Ok(u16::from_be_bytes([t[0], t[1]]))
    }
    pub fn i32(&mut self) -> R<i32> {
        let t = self.take(4, "an int")?;
        Ok(i32::from_be_bytes([t[0], t[1], t[2], t[3]]))
    }
    pub fn i64(&mut self) -> R<i64> {
        let t = self.take(8, "a long")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&t);
        Ok(i64::from_be_bytes(a))
    }
    pub fn string(&mut self) -> R<String> {
        let n = self.u16()? as usize;
        let t = self.take(n, "a string")?;
        String::from_utf8(t.to_vec()).map_err(|_| Malformed("string is not UTF-8".into()))
    }
    pub fn long_string(&mut self) -> R<String> {
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| Malformed("negative long string length".into()))?;
        let t = self.take(n, "a long string")?;
        String::from_utf8(t.to_vec()).map_err(|_| Malformed("query string is not UTF-8".into()))
    }
    pub fn short_bytes(&mut self) -> R<Bytes> {
        let n = self.u16()? as usize;
        self.take(n, "short bytes")
    }
    /// `[bytes]`: a negative length is null.
    pub fn bytes(&mut self) -> R<Option<Bytes>> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(None);
        }
        self.take(n as usize, "bytes").map(Some)
    }
    /// `[value]`: -1 null, -2 unset.
    pub fn value(&mut self) -> R<Value> {
        let n = self.i32()?;
        match n {
            -1 => Ok(Value::Null),
            -2 => Ok(Value::Unset),
            n if n < 0 => Err(Malformed(format!("invalid value length {n}"))),
            n => self.take(n as usize, "a value").map(Value::Set),
        }
    }
    pub fn string_map(&mut self) -> R<HashMap<String, String>> {
        let n = self.u16()?;
        let mut m = HashMap::new();
        for _ in 0..n {
            let k = self.string()?;
            m.insert(k, self.string()?);
        }
        Ok(m)
    }
    pub fn string_list(&mut self) -> R<Vec<String>> {
        let n = self.u16()?;
        (0..n).map(|_| self.string()).collect()
    }
    /// Skips a custom payload (`[bytes map]`), which this node ignores.
    pub fn skip_bytes_map(&mut self) -> R<()> {
        let n = self.u16()?;
        for _ in 0..n {
            self.string()?;
            self.bytes()?;
        }
        Ok(())
    }
}

/// `<query_parameters>` of QUERY and EXECUTE.
#[derive(Debug, Default)]
pub struct QueryParams {
    pub values: Vec<Value>,
    pub skip_metadata: bool,
    pub page_size: Option<i32>,
    pub paging_state: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
}

pub fn query_params(b: &mut Body) -> Result<QueryParams, CqlError> {
    let _consistency = b.u16()?;
    let f = b.u8()?;
    let mut p = QueryParams { skip_metadata: f & 0x02 != 0, ..Default::default() };
    if f & 0x01 != 0 {
        let n = b.u16()?;
        for _ in 0..n {
            if f & 0x40 != 0 {
                return Err(CqlError::invalid("named bound values are not supported by hls-dvr-cqlnode"));
            }
            p.values.push(b.value()?);
        }
    }
    if f & 0x04 != 0 {
        p.page_size = Some(b.i32()?);
    }
    if f & 0x08 != 0 {
        p.paging_state = b.bytes()?.map(|x| x.to_vec());
    }
    if f & 0x10 != 0 {
        let _serial = b.u16()?;
    }
    if f & 0x20 != 0 {
        p.timestamp = Some(b.i64()?);
    }
    Ok(p)
}

/// `[string]`; longer ones (only possible with absurd quoted identifiers) are cut at a char
/// boundary rather than producing a corrupt frame.
fn put_string(b: &mut BytesMut, s: &str) {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    b.put_u16(end as u16);
    b.put_slice(&s.as_bytes()[..end]);
}

pub fn error_body(e: &CqlError) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i32(e.code);
    // Messages are ours; keep them within a [string].
    let msg: String = e.message.chars().take(8000).collect();
    put_string(&mut b, &msg);
    match &e.extra {
        ErrorExtra::None => {}
        ErrorExtra::AlreadyExists { keyspace, table } => {
            put_string(&mut b, keyspace);
            put_string(&mut b, table);
        }
        ErrorExtra::Unprepared(id) => {
            b.put_u16(id.len() as u16);
            b.put_slice(id);
        }
    }
    b
}

pub fn supported_body() -> BytesMut {
    let mut b = BytesMut::new();
    let opts: [(&str, &[&str]); 3] =
        [("CQL_VERSION", &[crate::system::CQL_VERSION]), ("COMPRESSION", &[]), ("PROTOCOL_VERSIONS", &["4/v4"])];
    b.put_u16(opts.len() as u16);
    for (k, vs) in opts {
        put_string(&mut b, k);
        b.put_u16(vs.len() as u16);
        for v in vs {
            put_string(&mut b, v);
        }
    }
    b
}

/// `<metadata>` of a rows result (flags: global table spec, paging state, no metadata).
fn put_metadata(b: &mut BytesMut, meta: &ResultMeta, paging_state: Option<&[u8]>, no_metadata: bool) {
    let mut f = 0i32;
    if paging_state.is_some() {
        f |= 0x0002;
    }
    if no_metadata {
        f |= 0x0004;
    } else {
        f |= 0x0001;
    }
    b.put_i32(f);
    b.put_i32(meta.columns.len() as i32);
    if let Some(ps) = paging_state {
        b.put_i32(ps.len() as i32);
        b.put_slice(ps);
    }
    if !no_metadata {
        put_string(b, &meta.keyspace);
        put_string(b, &meta.table);
        for c in &meta.columns {
            put_string(b, &c.name);
            c.typ.write_option(b);
        }
    }
}

pub fn result_body(o: &Outcome, skip_metadata: bool) -> BytesMut {
    let mut b = BytesMut::new();
    match o {
        Outcome::Void => b.put_i32(1),
        Outcome::Rows(r) => {
            b.put_i32(2);
            put_metadata(&mut b, &r.meta, r.paging_state.as_deref(), skip_metadata);
            b.put_i32(r.rows.len() as i32);
            for row in &r.rows {
                for v in row {
                    match v {
                        Some(v) => {
                            b.put_i32(v.len() as i32);
                            b.put_slice(v);
                        }
                        None => b.put_i32(-1),
                    }
                }
            }
        }
        Outcome::SetKeyspace(ks) => {
            b.put_i32(3);
            put_string(&mut b, ks);
        }
        Outcome::SchemaChange { change, target, keyspace, table } => {
            b.put_i32(5);
            put_string(&mut b, change);
            put_string(&mut b, target);
            put_string(&mut b, keyspace);
            if let Some(t) = table {
                put_string(&mut b, t);
            }
        }
    }
    b
}

pub fn prepared_body(id: &[u8], info: &PrepInfo) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i32(4);
    b.put_u16(id.len() as u16);
    b.put_slice(id);
    // Bind-variable metadata: flags, count, partition key indexes, then the specs.
    let has_table = !info.bind.keyspace.is_empty();
    b.put_i32(if has_table && !info.bind.columns.is_empty() { 0x0001 } else { 0 });
    b.put_i32(info.bind.columns.len() as i32);
    b.put_i32(info.pk_indexes.len() as i32);
    for i in &info.pk_indexes {
        b.put_u16(*i);
    }
    if !info.bind.columns.is_empty() {
        if has_table {
            put_string(&mut b, &info.bind.keyspace);
            put_string(&mut b, &info.bind.table);
        }
        for c in &info.bind.columns {
            if !has_table {
                put_string(&mut b, "");
                put_string(&mut b, "");
            }
            put_string(&mut b, &c.name);
            c.typ.write_option(&mut b);
        }
    }
    // Result metadata; statements without rows get NO_METADATA and zero columns.
    match &info.result {
        Some(meta) => put_metadata(&mut b, meta, None, false),
        None => {
            b.put_i32(0x0004);
            b.put_i32(0);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_frames_and_rejects_oversized_and_truncated() {
        let mut ok: Vec<u8> = vec![0x04, 0, 0, 7, opcode::OPTIONS, 0, 0, 0, 0];
        ok.extend_from_slice(&[0x04, 0, 0, 8, opcode::QUERY, 0, 0, 0, 2, 0xAA, 0xBB]);
        let mut r = &ok[..];
        let f = read_frame(&mut r).await.unwrap();
        assert_eq!((f.stream, f.opcode, f.body.len()), (7, opcode::OPTIONS, 0));
        let f = read_frame(&mut r).await.unwrap();
        assert_eq!(&f.body[..], &[0xAA, 0xBB]);
        assert!(matches!(read_frame(&mut r).await, Err(ReadError::Eof)));

        let big = [0x04, 0, 0, 1, opcode::QUERY, 0x7F, 0xFF, 0xFF, 0xFF];
        assert!(matches!(read_frame(&mut &big[..]).await, Err(ReadError::Fatal { stream: 1, .. })));
        let short = [0x04, 0, 0, 1, opcode::QUERY, 0, 0, 0, 9, 1];
        assert!(matches!(read_frame(&mut &short[..]).await, Err(ReadError::Io(_))));
        let resp = [0x84, 0, 0, 1, opcode::QUERY, 0, 0, 0, 0];
        assert!(matches!(read_frame(&mut &resp[..]).await, Err(ReadError::Fatal { .. })));
    }

    #[test]
    fn body_reads_are_bounds_checked() {
        let mut b = Body::new(Bytes::from_static(&[0, 5, b'a']));
        assert!(b.string().is_err());
        let mut b = Body::new(Bytes::from_static(&[0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1, 9]));
        assert_eq!(b.value().unwrap(), Value::Unset);
        assert_eq!(b.value().unwrap(), Value::Null);
        assert_eq!(b.value().unwrap(), Value::Set(Bytes::from_static(&[9])));
        assert!(b.value().is_err());
        let mut b = Body::new(Bytes::from_static(&[0x80, 0, 0, 0]));
        assert!(b.long_string().is_err());
    }
}
