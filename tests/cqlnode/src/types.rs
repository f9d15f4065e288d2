//! CQL types: their protocol option ids, text names, validation of serialized values, literal
//! conversion, and an order-preserving byte encoding used to keep clustering keys sorted.
//!
//! Values are kept in their native-protocol serialized form everywhere (that is what clients
//! bind and what rows results carry), so this module only needs to check, compare and produce
//! serialized bytes.

use bytes::{BufMut, Bytes, BytesMut};
use std::cmp::Ordering;
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CqlType {
    Ascii,
    BigInt,
    Blob,
    Boolean,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    Timeuuid,
    Inet,
    Text,
    List(Box<CqlType>),
    Set(Box<CqlType>),
    Map(Box<CqlType>, Box<CqlType>),
}

/// A literal as written in CQL text; converted to bytes once the target column type is known.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Str(String),
    /// Integer digits, with a leading '-' when negative.
    Int(String),
    Float(String),
    Bool(bool),
    Blob(Vec<u8>),
    Uuid([u8; 16]),
    Null,
    List(Vec<Literal>),
    /// `{a, b}`; an empty `{}` is `Map(vec![])` and also accepted for sets.
    Set(Vec<Literal>),
    Map(Vec<(Literal, Literal)>),
}

impl CqlType {
    pub fn is_collection(&self) -> bool {
        matches!(self, CqlType::List(_) | CqlType::Set(_) | CqlType::Map(..))
    }

    /// The `[option]` of the protocol (section 4.2.5.2 of the v4 spec).
    pub fn write_option(&self, buf: &mut BytesMut) {
        let id: u16 = match self {
            CqlType::Ascii => 0x0001,
            CqlType::BigInt => 0x0002,
            CqlType::Blob => 0x0003,
            CqlType::Boolean => 0x0004,
            CqlType::Double => 0x0007,
            CqlType::Float => 0x0008,
            CqlType::Int => 0x0009,
            CqlType::Timestamp => 0x000B,
            CqlType::Uuid => 0x000C,
            CqlType::Text => 0x000D,
            CqlType::Timeuuid => 0x000F,
            CqlType::Inet => 0x0010,
            CqlType::List(_) => 0x0020,
            CqlType::Map(..) => 0x0021,
            CqlType::Set(_) => 0x0022,
        };
        buf.put_u16(id);
        match self {
            CqlType::List(e) | CqlType::Set(e) => e.write_option(buf),
            CqlType::Map(k, v) => {
                k.write_option(buf);
                v.write_option(buf);
            }
            _ => {}
        }
    }

    /// The name as Cassandra prints it in `system_schema.columns.type`.
    pub fn cql_name(&self) -> String {
        match self {
            CqlType::Ascii => "ascii".into(),
            CqlType::BigInt => "bigint".into(),
            CqlType::Blob => "blob".into(),
            CqlType::Boolean => "boolean".into(),
            CqlType::Double => "double".into(),
            CqlType::Float => "float".into(),
            CqlType::Int => "int".into(),
            CqlType::Timestamp => "timestamp".into(),
            CqlType::Uuid => "uuid".into(),
            CqlType::Timeuuid => "timeuuid".into(),
            CqlType::Inet => "inet".into(),
            CqlType::Text => "text".into(),
            CqlType::List(e) => format!("list<{}>", e.cql_name()),
            CqlType::Set(e) => format!("set<{}>", e.cql_name()),
            CqlType::Map(k, v) => format!("map<{}, {}>", k.cql_name(), v.cql_name()),
        }
    }

    /// Checks that `v` is a well-formed serialized value of this type. Empty values are accepted
    /// like Cassandra does (they are "empty", not null); callers reject them where keys forbid it.
    pub fn validate(&self, v: &[u8]) -> Result<(), String> {
        let fixed = |n: usize| {
            if v.is_empty() || v.len() == n {
                Ok(())
            } else {
                Err(format!("expected {} bytes for a {} value, got {}", n, self.cql_name(), v.len()))
            }
        };
        match self {
            CqlType::BigInt | CqlType::Timestamp | CqlType::Double => fixed(8),
            CqlType::Int | CqlType::Float => fixed(4),
            CqlType::Boolean => fixed(1),
            CqlType::Uuid => fixed(16),
            CqlType::Timeuuid => {
                fixed(16)?;
                if v.len() == 16 && (v[6] >> 4) != 1 {
                    return Err("Unsupported UUID version for timeuuid: expected version 1".into());
                }
                Ok(())
            }
            CqlType::Inet => match v.len() {
                0 | 4 | 16 => Ok(()),
                n => Err(format!("invalid inet value of {n} bytes (expected 4 or 16)")),
            },
            CqlType::Blob => Ok(()),
            CqlType::Text => {
                std::str::from_utf8(v).map(|_| ()).map_err(|_| "String didn't validate: not UTF-8".to_string())
            }
            CqlType::Ascii => {
                if v.is_ascii() {
                    Ok(())
                } else {
                    Err("Invalid byte for ascii".into())
                }
            }
            CqlType::List(e) | CqlType::Set(e) => {
                let elems = split_collection(v, 1)?;
                for el in elems {
                    e.validate(el)?;
                }
                Ok(())
            }
            CqlType::Map(k, val) => {
                let elems = split_collection(v, 2)?;
                for (i, el) in elems.into_iter().enumerate() {
                    if i % 2 == 0 {
                        k.validate(el)?
                    } else {
                        val.validate(el)?
                    }
                }
                Ok(())
            }
        }
    }

    /// Appends an encoding of `v` whose bytewise order is this type's CQL order and which no
    /// other value's encoding has as a prefix (so components can be concatenated). `desc`
    /// inverts it, giving the reversed order.
    pub fn sort_key(&self, v: &[u8], desc: bool, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            CqlType::Text | CqlType::Ascii | CqlType::Blob => {
                // 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x00: prefix-free, order-preserving.
                for &b in v {
                    out.push(b);
                    if b == 0 {
                        out.push(0xFF);
                    }
                }
                out.extend_from_slice(&[0, 0]);
            }
            _ if v.is_empty() => out.push(0), // "empty" sorts before every real value
            CqlType::Int | CqlType::BigInt | CqlType::Timestamp => {
                out.push(1);
                let mut b = v.to_vec();
                b[0] ^= 0x80;
                out.extend_from_slice(&b);
            }
            CqlType::Double | CqlType::Float => {
                out.push(1);
                let mut b = v.to_vec();
                if b[0] & 0x80 != 0 {
                    b.iter_mut().for_each(|x| *x = !*x);
                } else {
                    b[0] ^= 0x80;
                }
                out.extend_from_slice(&b);
            }
            CqlType::Boolean => {
                out.push(1);
                out.push(u8::from(v[0] != 0));
            }
            CqlType::Uuid | CqlType::Timeuuid => {
                out.push(1);
                let version = v[6] >> 4;
                if *self == CqlType::Uuid {
                    out.push(version);
                }
                if version == 1 {
                    // Time-based: order by the 60-bit timestamp first, as Cassandra does.
                    out.extend_from_slice(&[v[6] & 0x0F, v[7], v[4], v[5], v[0], v[1], v[2], v[3]]);
                }
                out.extend_from_slice(v);
            }
            CqlType::Inet => {
                out.push(1);
                out.push(v.len() as u8);
                out.extend_from_slice(v);
            }
            CqlType::List(_) | CqlType::Set(_) | CqlType::Map(..) => {
                // Not allowed as key columns; only reached by filtering. Length-prefixed bytes
                // keep it prefix-free and deterministic.
                out.extend_from_slice(&(v.len() as u64).to_be_bytes());
                out.extend_from_slice(v);
            }
        }
        if desc {
            out[start..].iter_mut().for_each(|b| *b = !*b);
        }
    }

    /// CQL order of two serialized values of this type.
    pub fn compare(&self, a: &[u8], b: &[u8]) -> Ordering {
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        self.sort_key(a, false, &mut ka);
        self.sort_key(b, false, &mut kb);
        ka.cmp(&kb)
    }

    /// Serializes a literal for a column of this type.
    pub fn from_literal(&self, lit: &Literal) -> Result<Option<Bytes>, String> {
        let bad = || format!("Invalid literal {} for a value of type {}", lit_desc(lit), self.cql_name());
        let v: Vec<u8> = match (self, lit) {
            (_, Literal::Null) => return Ok(None),
            (CqlType::Text, Literal::Str(s)) => s.as_bytes().to_vec(),
            (CqlType::Ascii, Literal::Str(s)) => {
                if !s.is_ascii() {
                    return Err(format!("Invalid ASCII character in string literal {s:?}"));
                }
                s.as_bytes().to_vec()
            }
            (CqlType::Int, Literal::Int(d)) => {
                let n: i32 = d.parse().map_err(|_| format!("Invalid int value {d} (out of range)"))?;
                n.to_be_bytes().to_vec()
            }
            (CqlType::BigInt, Literal::Int(d)) | (CqlType::Timestamp, Literal::Int(d)) => {
                let n: i64 = d.parse().map_err(|_| format!("Invalid bigint value {d} (out of range)"))?;
                n.to_be_bytes().to_vec()
            }
            (CqlType::Timestamp, Literal::Str(s)) => parse_timestamp(s)?.to_be_bytes().to_vec(),
            (CqlType::Double, Literal::Int(d) | Literal::Float(d)) => {
                let f: f64 = d.parse().map_err(|_| bad())?;
                f.to_be_bytes().to_vec()
            }
            (CqlType::Float, Literal::Int(d) | Literal::Float(d)) => {
                let f: f32 = d.parse().map_err(|_| bad())?;
                f.to_be_bytes().to_vec()
            }
            (CqlType::Boolean, Literal::Bool(b)) => vec![u8::from(*b)],
            (CqlType::Blob, Literal::Blob(b)) => b.clone(),
            (CqlType::Uuid | CqlType::Timeuuid, Literal::Uuid(u)) => u.to_vec(),
            (CqlType::Uuid | CqlType::Timeuuid, Literal::Str(s)) => parse_uuid(s).ok_or_else(bad)?.to_vec(),
            (CqlType::Inet, Literal::Str(s)) => match s.parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => a.octets().to_vec(),
                Ok(IpAddr::V6(a)) => a.octets().to_vec(),
                Err(_) => return Err(format!("Unable to make inet address from '{s}'")),
            },
            (CqlType::List(e), Literal::List(items)) => encode_collection(items.iter().map(|i| e.from_literal(i)))?,
            (CqlType::Set(e), Literal::Set(items)) => {
                let mut enc = items
                    .iter()
                    .map(|i| e.from_literal(i)?.ok_or_else(null_in_collection))
                    .collect::<Result<Vec<_>, _>>()?;
                enc.sort_by(|a, b| e.compare(a, b));
                enc.dedup();
                encode_collection(enc.into_iter().map(|b| Ok(Some(b))))?
            }
            (CqlType::Set(_), Literal::Map(m)) if m.is_empty() => encode_collection(std::iter::empty())?,
            (CqlType::Map(k, v), Literal::Map(pairs)) => {
                let mut enc = Vec::new();
                for (lk, lv) in pairs {
                    let kb = k.from_literal(lk)?.ok_or_else(null_in_collection)?;
                    let vb = v.from_literal(lv)?.ok_or_else(null_in_collection)?;
                    enc.push((kb, vb));
                }
                enc.sort_by(|a, b| k.compare(&a.0, &b.0));
                // Later duplicates win, as in Cassandra.
                let mut dedup: Vec<(Bytes, Bytes)> = Vec::new();
                for (kb, vb) in enc {
                    match dedup.last_mut() {
                        Some(last) if last.0 == kb => last.1 = vb,
                        _ => dedup.push((kb, vb)),
                    }
                }
                encode_map(&dedup)
            }
            _ => return Err(bad()),
        };
        Ok(Some(Bytes::from(v)))
    }
}

fn null_in_collection() -> String {
    "null is not supported inside collections".into()
}

fn lit_desc(l: &Literal) -> String {
    match l {
        Literal::Str(s) => format!("'{s}'"),
        Literal::Int(d) | Literal::Float(d) => d.clone(),
        Literal::Bool(b) => b.to_string(),
        Literal::Blob(_) => "blob".into(),
        Literal::Uuid(_) => "uuid".into(),
        Literal::Null => "null".into(),
        Literal::List(_) => "list".into(),
        Literal::Set(_) => "set".into(),
        Literal::Map(_) => "map".into(),
    }
}

/// Splits a serialized collection (`[int n]` then n `[bytes]`, `per_item` per element) into its
/// element values. Nulls inside collections are invalid.
fn split_collection(v: &[u8], per_item: usize) -> Result<Vec<&[u8]>, String> {
    let err = || "malformed collection value".to_string();
    if v.len() < 4 {
        return Err(err());
    }
    let n = i32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    if n < 0 {
        return Err(err());
    }
    let mut rest = &v[4..];
    let mut out = Vec::new();
    for _ in 0..(n as usize).saturating_mul(per_item) {
        if rest.len() < 4 {
            return Err(err());
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len < 0 {
            return Err(null_in_collection());
        }
        let len = len as usize;
        if rest.len() < 4 + len {
            return Err(err());
        }
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    if !rest.is_empty() {
        return Err(err());
    }
    Ok(out)
}

fn encode_collection(items: impl Iterator<Item = Result<Option<Bytes>, String>>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut n: i32 = 0;
    for it in items {
        let b = it?.ok_or_else(null_in_collection)?;
        body.extend_from_slice(&(b.len() as i32).to_be_bytes());
        body.extend_from_slice(&b);
        n += 1;
    }
    let mut out = n.to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

fn encode_map(pairs: &[(Bytes, Bytes)]) -> Vec<u8> {
    let mut out = (pairs.len() as i32).to_be_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as i32).to_be_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
        out.extend_from_slice(v);
    }
    out
}

// Encoders for building system-table rows.
pub fn enc_text(s: &str) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(s.as_bytes()))
}
pub fn enc_int(n: i32) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&n.to_be_bytes()))
}
pub fn enc_bool(b: bool) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&[u8::from(b)]))
}
pub fn enc_double(f: f64) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&f.to_be_bytes()))
}
pub fn enc_uuid(u: [u8; 16]) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(&u))
}
pub fn enc_inet(ip: IpAddr) -> Option<Bytes> {
    Some(match ip {
        IpAddr::V4(a) => Bytes::copy_from_slice(&a.octets()),
        IpAddr::V6(a) => Bytes::copy_from_slice(&a.octets()),
    })
}
/// A set<text> or list<text>; sets must be passed sorted.
pub fn enc_text_list(items: &[&str]) -> Option<Bytes> {
    encode_collection(items.iter().map(|s| Ok(enc_text(s)))).ok().map(Bytes::from)
}
/// A map<text, text>, sorted by key as Cassandra sends it.
pub fn enc_text_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Bytes> {
    let mut v: Vec<(Bytes, Bytes)> = pairs
        .into_iter()
        .map(|(k, v)| (Bytes::copy_from_slice(k.as_bytes()), Bytes::copy_from_slice(v.as_bytes())))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    Some(Bytes::from(encode_map(&v)))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (case-insensitive) to bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nib = 0usize;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = (c as char).to_digit(16)? as u8;
        out[nib / 2] |= if nib.is_multiple_of(2) { d << 4 } else { d };
        nib += 1;
    }
    Some(out)
}

pub fn format_uuid(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Parses the timestamp literal forms Cassandra accepts most often:
/// `yyyy-mm-dd[( |T)hh:mm[:ss[.fff]]][Z|(+|-)hh[:]mm]`, returning milliseconds since the epoch.
/// Without a zone the time is UTC (Cassandra would use the server's zone; ours is UTC).
pub fn parse_timestamp(s: &str) -> Result<i64, String> {
    let err = || format!("Unable to coerce '{s}' to a formatted date (long)");
    let b = s.trim().as_bytes();
    let num = |r: &[u8]| -> Option<i64> {
        if r.is_empty() || !r.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(r).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err());
    }
    let (y, mo, d) = (num(&b[0..4]).ok_or_else(err)?, num(&b[5..7]).ok_or_else(err)?, num(&b[8..10]).ok_or_else(err)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(err());
    }
    let mut ms = days_from_civil(y, mo, d) * 86_400_000;
    let mut rest = &b[10..];
    if !rest.is_empty() && (rest[0] == b' ' || rest[0] == b'T') {
        rest = &rest[1..];
        if rest.len() < 5 || rest[2] != b':' {
            return Err(err());
        }
        let (h, mi) = (num(&rest[0..2]).ok_or_else(err)?, num(&rest[3..5]).ok_or_else(err)?);
        ms += (h * 3600 + mi * 60) * 1000;
        rest = &rest[5..];
        if rest.first() == Some(&b':') {
            if rest.len() < 3 {
                return Err(err());
            }
            ms += num(&rest[1..3]).ok_or_else(err)? * 1000;
            rest = &rest[3..];
            if rest.first() == Some(&b'.') {
                let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits == 0 || digits > 9 {
                    return Err(err());
                }
                let frac = &rest[1..1 + digits.min(3)];
                let mut f = num(frac).ok_or_else(err)?;
                for _ in frac.len()..3 {
                    f *= 10;
                }
                ms += f;
                rest = &rest[1 + digits..];
            }
        }
    }
    match rest {
        [] | [b'Z'] => {}
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let tz: Vec<u8> = tz.iter().copied().filter(|c| *c != b':').collect();
            if tz.len() != 4 {
                return Err(err());
            }
            let off = (num(&tz[0..2]).ok_or_else(err)? * 60 + num(&tz[2..4]).ok_or_else(err)?) * 60_000;
            ms -= if *sign == b'+' { off } else { -off };
        }
        _ => return Err(err()),
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &CqlType, v: &[u8], desc: bool) -> Vec<u8> {
        let mut o = Vec::new();
        t.sort_key(v, desc, &mut o);
        o
    }

    #[test]
    fn sort_keys_follow_cql_order() {
        let i = CqlType::BigInt;
        assert!(key(&i, &(-5i64).to_be_bytes(), false) < key(&i, &3i64.to_be_bytes(), false));
        assert!(key(&i, &(-5i64).to_be_bytes(), true) > key(&i, &3i64.to_be_bytes(), true));
        let d = CqlType::Double;
        let ds = [-10.5f64, -1.0, 0.0, 2.5, 1e9];
        for w in ds.windows(2) {
            assert!(key(&d, &w[0].to_be_bytes(), false) < key(&d, &w[1].to_be_bytes(), false));
        }
        let t = CqlType::Text;
        assert!(key(&t, b"a", false) < key(&t, b"a\0", false));
        assert!(key(&t, b"a\0", false) < key(&t, b"ab", false));
        assert!(key(&t, b"", false) < key(&t, b"a", false));
        assert!(key(&t, b"ab", true) < key(&t, b"a", true));
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(parse_timestamp("1970-01-01").unwrap(), 0);
        assert_eq!(parse_timestamp("2021-03-04 05:06:07.089Z").unwrap(), 1614834367089);
        assert_eq!(parse_timestamp("2021-03-04T05:06:07+0100").unwrap(), 1614834367000 - 3_600_000);
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn literals_and_validation() {
        assert_eq!(
            CqlType::Int.from_literal(&Literal::Int("-2".into())).unwrap().unwrap().as_ref(),
            &(-2i32).to_be_bytes()
        );
        assert!(CqlType::Int.from_literal(&Literal::Int("3000000000".into())).is_err());
        assert!(CqlType::Int.from_literal(&Literal::Str("x".into())).is_err());
        let m = CqlType::Map(Box::new(CqlType::Text), Box::new(CqlType::Text));
        let v = m
            .from_literal(&Literal::Map(vec![
                (Literal::Str("b".into()), Literal::Str("2".into())),
                (Literal::Str("a".into()), Literal::Str("1".into())),
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(Some(v.clone()), enc_text_map([("a", "1"), ("b", "2")]));
        assert!(m.validate(&v).is_ok());
        assert!(m.validate(&v[..v.len() - 1]).is_err());
        assert!(CqlType::Int.validate(&[1, 2, 3]).is_err());
        assert!(CqlType::Text.validate(&[0xff]).is_err());
        let u = parse_uuid("123e4567-e89b-12d3-a456-426614174000").unwrap();
        assert_eq!(format_uuid(&u), "123e4567-e89b-12d3-a456-426614174000");
    }
}
