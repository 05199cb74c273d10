//! In-process fakes of the CRMs that cannot run offline. Each records exactly what it received
//! (method, path, query, headers, body fields) so tests can assert the documented request, and
//! can be told to answer with the vendor's documented errors.

pub mod dynamics;
pub mod hubspot;
pub mod marketo;
pub mod salesforce;

/// Splits a form body or query into decoded pairs. Written here rather than borrowed from the
/// crate that encodes them, so the fake checks our encoding independently.
pub(crate) fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(raw)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte, over UTF-8.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex()) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_plus_percent_and_utf8() {
        let pairs = form_pairs(b"a=1+2&b=Zo%C3%AB%0A%7C&c");
        assert_eq!(
            pairs,
            [("a".into(), "1 2".into()), ("b".into(), "Zo\u{eb}\n|".into()), ("c".into(), String::new())]
        );
        assert_eq!(percent_decode("100%"), "100%");
    }
}
