//! Viewer sessions carried in URIs (`hls_dvr_sessions`): the query parameter that names a
//! viewer's session, and playlists given it on every URI they list as they are sent
//! (ARCHITECTURE.md, "Audience").
//!
//! The parameter is never part of a playlist's identity: [`crate::params::PlaylistQuery`] drops
//! it, so cache keys and cached bodies are the same for every viewer, and each answer is given
//! its viewer's id only on its way out.

/// The query parameter of a session id.
pub const PARAM: &str = "hls_session";

/// Longest id accepted from a URL (a signed id is 32 characters).
pub const MAX_ID: usize = 64;

/// The session id a query names, undecoded, when it names one of a sane shape: URL-safe
/// characters only, so it can be copied into playlist lines and quoted attributes as it is.
pub fn find(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| {
        let v = pair.strip_prefix(PARAM)?.strip_prefix('=')?;
        let ok =
            !v.is_empty() && v.len() <= MAX_ID && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        ok.then_some(v)
    })
}

/// `playlist` with `PARAM=id` added to every URI it lists: URI lines, and the `URI="..."`
/// attributes of tags (maps, parts, hints, renditions, reports). `id` must be what [`find`]
/// accepts or what the edge made.
pub fn add_to_uris(playlist: &[u8], id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(playlist.len() + playlist.len() / 8);
    for line in playlist.split_inclusive(|b| *b == b'\n') {
        let (body, end) = match line.strip_suffix(b"\n") {
            Some(b) => match b.strip_suffix(b"\r") {
                Some(b2) => (b2, &b"\r\n"[..]),
                None => (b, &b"\n"[..]),
            },
            None => (line, &b""[..]),
        };
        if body.is_empty() {
            out.extend_from_slice(body);
        } else if body[0] == b'#' {
            // Most tag lines of a media playlist carry no URI: copied at once.
            if body.starts_with(b"#EXTINF") || body.starts_with(b"#EXT-X-PROGRAM-DATE-TIME") {
                out.extend_from_slice(body);
            } else {
                tag_with_id(&mut out, body, id);
            }
        } else {
            append(&mut out, body, id);
        }
        out.extend_from_slice(end);
    }
    out
}

/// A URI with the parameter added: `?` or `&` as the URI needs.
fn append(out: &mut Vec<u8>, uri: &[u8], id: &str) {
    out.extend_from_slice(uri);
    out.push(if uri.contains(&b'?') { b'&' } else { b'?' });
    out.extend_from_slice(PARAM.as_bytes());
    out.push(b'=');
    out.extend_from_slice(id.as_bytes());
}

/// A tag line with every `URI="..."` attribute given the parameter.
fn tag_with_id(out: &mut Vec<u8>, mut line: &[u8], id: &str) {
    const ATTR: &[u8] = b"URI=\"";
    while let Some(at) = line.windows(ATTR.len()).position(|w| w == ATTR) {
        // Only an attribute name: at the start of the attribute list or after a comma.
        let starts_attr = at == 0 || matches!(line[at - 1], b',' | b':');
        let value_from = at + ATTR.len();
        out.extend_from_slice(&line[..value_from]);
        line = &line[value_from..];
        let Some(close) = line.iter().position(|b| *b == b'"') else { break };
        if starts_attr {
            append(out, &line[..close], id);
        } else {
            out.extend_from_slice(&line[..close]);
        }
        line = &line[close..];
    }
    out.extend_from_slice(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_sane_id_only() {
        assert_eq!(find("a=1&hls_session=abc123&b=2"), Some("abc123"));
        assert_eq!(find("hls_session=abc"), Some("abc"));
        assert_eq!(find("hls_sessions=abc"), None);
        assert_eq!(find("hls_session="), None);
        assert_eq!(find("hls_session=a%22b"), None);
        assert_eq!(find(&format!("hls_session={}", "a".repeat(65))), None);
        assert_eq!(find(""), None);
    }

    #[test]
    fn every_listed_uri_gets_the_id() {
        let text = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"pt\",URI=\"pt/index.m3u8?start=5\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1\n\
            hi/index.m3u8\n\
            #EXT-X-MAP:URI=\"hi/init-1.mp4\"\n\
            #EXT-X-PART:DURATION=0.5,URI=\"hi/7.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-DATERANGE:ID=\"x\",X-COM-URI=\"not-a-uri\"\n\
            #EXTINF:2.000,\n\
            7.ts?token=t\n\
            \n";
        let out = String::from_utf8(add_to_uris(text.as_bytes(), "s1")).unwrap();
        let expected = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"pt\",URI=\"pt/index.m3u8?start=5&hls_session=s1\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1\n\
            hi/index.m3u8?hls_session=s1\n\
            #EXT-X-MAP:URI=\"hi/init-1.mp4?hls_session=s1\"\n\
            #EXT-X-PART:DURATION=0.5,URI=\"hi/7.0.m4s?hls_session=s1\",INDEPENDENT=YES\n\
            #EXT-X-DATERANGE:ID=\"x\",X-COM-URI=\"not-a-uri\"\n\
            #EXTINF:2.000,\n\
            7.ts?token=t&hls_session=s1\n\
            \n";
        assert_eq!(out, expected);
        // A last line without a newline, and CRLF lines.
        assert_eq!(add_to_uris(b"#EXTM3U\r\na.ts", "x"), b"#EXTM3U\r\na.ts?hls_session=x");
    }
}
