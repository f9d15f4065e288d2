//! Session ids an edge gives viewers (`hls_dvr_sessions`): 16 random hex digits and 16 of their
//! HMAC-SHA256 under the site's secret, so any edge with the secret tells its own ids from
//! made-up ones, without a lookup. A made-up id is counted apart, never as a viewer.

use openssl::sha::Sha256;

use hls_dvr_core::hash::fnv1a;
use hls_dvr_core::sketch::mix;

const RANDOM_HEX: usize = 16;
const TAG_HEX: usize = 16;
/// An id's length.
pub const ID_LEN: usize = RANDOM_HEX + TAG_HEX;
/// The shortest secret accepted: 128 bits.
pub const MIN_SECRET: usize = 16;

/// A secret, with HMAC's two padded keys computed once (RFC 2104).
#[derive(Clone)]
pub struct SessionKey {
    inner: [u8; 64],
    outer: [u8; 64],
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// A key from a secret file's contents (surrounding whitespace ignored).
    pub fn new(secret: &[u8]) -> Result<SessionKey, String> {
        let secret = secret.trim_ascii();
        if secret.len() < MIN_SECRET {
            return Err(format!("the secret has {} bytes: at least {MIN_SECRET} are needed", secret.len()));
        }
        let mut key = [0u8; 64];
        if secret.len() > 64 {
            key[..32].copy_from_slice(&openssl::sha::sha256(secret));
        } else {
            key[..secret.len()].copy_from_slice(secret);
        }
        Ok(SessionKey { inner: key.map(|b| b ^ 0x36), outer: key.map(|b| b ^ 0x5c) })
    }

    fn hmac(&self, message: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&self.inner);
        h.update(message);
        let inner = h.finish();
        let mut h = Sha256::new();
        h.update(&self.outer);
        h.update(&inner);
        h.finish()
    }

    fn tag(&self, random: &[u8]) -> String {
        hex(&self.hmac(random)[..TAG_HEX / 2])
    }

    /// A new id.
    pub fn issue(&self) -> String {
        let mut random = [0u8; RANDOM_HEX / 2];
        if openssl::rand::rand_bytes(&mut random).is_err() {
            // The OS's generator failing is not a reason to fail a request: a clock-derived id
            // is still unique enough to count a viewer.
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            random = mix(t.as_nanos() as u64 ^ std::process::id() as u64).to_le_bytes();
        }
        let r = hex(&random);
        let tag = self.tag(r.as_bytes());
        r + &tag
    }

    /// The id was issued with this secret.
    pub fn verify(&self, id: &str) -> bool {
        id.len() == ID_LEN && id.is_char_boundary(RANDOM_HEX) && {
            let (r, tag) = id.split_at(RANDOM_HEX);
            // Not a secret comparison that leaks timing usefully: the tag of a chosen id is
            // 64 bits, and an id only ever counts a viewer.
            self.tag(r.as_bytes()) == tag
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What a sketch counts for a viewer: a well-spread hash of its id (or key, or address and
/// user agent).
pub fn viewer_hash(parts: &[&[u8]]) -> u64 {
    mix(fnv1a(parts.iter().flat_map(|p| p.iter().copied().chain([0xff]))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_is_openssls() {
        for secret in [&b"0123456789abcdef"[..], &[7u8; 100][..]] {
            let k = SessionKey::new(secret).unwrap();
            let pkey = openssl::pkey::PKey::hmac(secret).unwrap();
            let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
            signer.update(b"0011223344556677").unwrap();
            assert_eq!(k.hmac(b"0011223344556677").to_vec(), signer.sign_to_vec().unwrap());
        }
    }

    #[test]
    fn ids_verify_under_their_secret_only() {
        let k = SessionKey::new(b"  a secret of some length\n").unwrap();
        let id = k.issue();
        assert_eq!(id.len(), ID_LEN);
        assert!(k.verify(&id));
        assert_ne!(k.issue(), id);
        let other = SessionKey::new(b"another secret, another site").unwrap();
        assert!(!other.verify(&id));
        let mut forged = id.clone().into_bytes();
        forged[3] = if forged[3] == b'0' { b'1' } else { b'0' };
        assert!(!k.verify(std::str::from_utf8(&forged).unwrap()));
        assert!(!k.verify("short"));
        assert!(!k.verify(&"é".repeat(16)));
        assert!(SessionKey::new(b"short").unwrap_err().contains("at least 16"));
    }
}
