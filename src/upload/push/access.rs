//! Who may push (`--ingest-token-file`, `--ingest-basic-file`, `--ingest-allow`): a bearer
//! token as ffmpeg sends it with `-headers`, basic credentials as MediaLive and Elemental send
//! them to a WebDAV origin, and address ranges. With none configured, anyone who reaches the
//! port may push (the operator's firewall decides).

use std::net::IpAddr;
use std::path::Path;

use base64::Engine as _;
use ipnet::IpNet;

/// The rules, read once at start.
#[derive(Debug, Clone, Default)]
pub struct Access {
    tokens: Vec<String>,
    /// `user:password`, as sent after `Basic ` once decoded.
    basic: Vec<String>,
    allow: Vec<IpNet>,
}

/// Why a request may not push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no credentials, or wrong ones.
    Unauthorized(&'static str),
    /// 403: from an address outside every allowed range.
    Forbidden,
}

/// Lines of a secrets file: trimmed, without blank lines and `#` comments.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

impl Access {
    pub fn new(token_file: Option<&Path>, basic_file: Option<&Path>, allow: &[String]) -> Result<Access, String> {
        let read = |flag: &str, p: &Path| {
            std::fs::read_to_string(p).map(|t| lines(&t)).map_err(|e| format!("{flag} {}: {e}", p.display()))
        };
        let tokens = match token_file {
            Some(p) => read("--ingest-token-file", p)?,
            None => Vec::new(),
        };
        let basic = match basic_file {
            Some(p) => read("--ingest-basic-file", p)?,
            None => Vec::new(),
        };
        if token_file.is_some() && tokens.is_empty() {
            return Err("--ingest-token-file holds no token".into());
        }
        if let Some(bad) = basic.iter().find(|l| !l.contains(':')) {
            return Err(format!("--ingest-basic-file: {bad:?} is not user:password"));
        }
        if basic_file.is_some() && basic.is_empty() {
            return Err("--ingest-basic-file holds no user:password line".into());
        }
        let allow = allow.iter().map(|c| parse_range(c)).collect::<Result<_, _>>()?;
        Ok(Access { tokens, basic, allow })
    }

    /// Whether basic credentials are configured (a 401 then asks for them).
    pub fn wants_basic(&self) -> bool {
        !self.basic.is_empty()
    }

    /// Whether a request from `peer` with this `Authorization` header may push.
    pub fn check(&self, peer: IpAddr, authorization: Option<&[u8]>) -> Result<(), Refusal> {
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(&peer)) {
            return Err(Refusal::Forbidden);
        }
        if self.tokens.is_empty() && self.basic.is_empty() {
            return Ok(());
        }
        let Some(header) = authorization.and_then(|h| std::str::from_utf8(h).ok()) else {
            return Err(Refusal::Unauthorized("credentials required"));
        };
        let (scheme, value) = header.trim().split_once(' ').unwrap_or((header, ""));
        let value = value.trim();
        let ok = if scheme.eq_ignore_ascii_case("bearer") {
            self.tokens.iter().any(|t| same(t.as_bytes(), value.as_bytes()))
        } else if scheme.eq_ignore_ascii_case("basic") {
            match base64::engine::general_purpose::STANDARD.decode(value) {
                Ok(pair) => self.basic.iter().any(|b| same(b.as_bytes(), &pair)),
                Err(_) => false,
            }
        } else {
            false
        };
        if ok {
            Ok(())
        } else {
            Err(Refusal::Unauthorized("wrong credentials"))
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address.
pub fn parse_range(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("--ingest-allow {s:?}: not an address range (such as 10.0.0.0/8 or 2001:db8::/32)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn open_without_rules_and_ranges_checked_first() {
        assert_eq!(Access::default().check(ip("192.0.2.1"), None), Ok(()));
        let a = Access {
            allow: vec![parse_range("10.0.0.0/8").unwrap(), parse_range("::1").unwrap()],
            ..Default::default()
        };
        assert_eq!(a.check(ip("10.1.2.3"), None), Ok(()));
        assert_eq!(a.check(ip("::ffff:10.1.2.3"), None), Ok(()));
        assert_eq!(a.check(ip("::1"), None), Ok(()));
        assert_eq!(a.check(ip("11.0.0.1"), None), Err(Refusal::Forbidden));
        assert!(parse_range("10.0.0.0/33").is_err());
        assert!(parse_range("example.com").is_err());
    }

    #[test]
    fn bearer_tokens_and_basic_credentials() {
        let a = Access { tokens: vec!["s3cret".into()], basic: vec!["enc:pw:with:colons".into()], allow: vec![] };
        let peer = ip("127.0.0.1");
        assert_eq!(a.check(peer, Some(b"Bearer s3cret")), Ok(()));
        assert_eq!(a.check(peer, Some(b"bearer  s3cret ")), Ok(()));
        assert!(matches!(a.check(peer, Some(b"Bearer s3cre")), Err(Refusal::Unauthorized(_))));
        assert!(matches!(a.check(peer, None), Err(Refusal::Unauthorized(_))));
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("enc:pw:with:colons"));
        assert_eq!(a.check(peer, Some(basic.as_bytes())), Ok(()));
        assert!(a.check(peer, Some(b"Basic !!notbase64")).is_err());
        assert!(a.check(peer, Some(b"Digest x")).is_err());
        assert!(a.check(peer, Some(&[0xff, 0xfe])).is_err());
    }

    #[test]
    fn secrets_files_are_checked_at_start() {
        let dir = std::env::temp_dir().join(format!("hls-dvr-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (t, b) = (dir.join("tokens"), dir.join("basic"));
        std::fs::write(&t, "# comment\n\n tok1 \n").unwrap();
        std::fs::write(&b, "user:pw\n").unwrap();
        let a = Access::new(Some(&t), Some(&b), &["127.0.0.1".into()]).unwrap();
        assert_eq!(a.tokens, vec!["tok1"]);
        std::fs::write(&b, "nocolon\n").unwrap();
        assert!(Access::new(None, Some(&b), &[]).unwrap_err().contains("not user:password"));
        std::fs::write(&t, "# only a comment\n").unwrap();
        assert!(Access::new(Some(&t), None, &[]).unwrap_err().contains("no token"));
        assert!(Access::new(Some(&dir.join("missing")), None, &[]).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
