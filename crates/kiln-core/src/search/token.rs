//! Page tokens: opaque to clients, an offset into the ordered result for us.

use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageToken {
    pub offset: u64,
}

impl PageToken {
    pub fn encode(self) -> String {
        let text = format!("{{\"offset\": {}}}", self.offset);
        hex_encode(text.as_bytes())
    }

    /// Decodes a token a previous answer handed out; an empty token is the first page.
    pub fn decode(token: Option<&str>) -> Result<PageToken, Error> {
        let token = match token {
            None => return Ok(PageToken::default()),
            Some(t) if t.is_empty() => return Ok(PageToken::default()),
            Some(t) => t,
        };
        let invalid = || Error::invalid(format!("Invalid page token '{}': pass the next_page_token of a previous answer unchanged", truncate(token)));
        let bytes = hex_decode(token).ok_or_else(invalid)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let digits = text
            .strip_prefix("{\"offset\": ")
            .and_then(|rest| rest.strip_suffix('}'))
            .ok_or_else(invalid)?;
        let offset = digits.parse::<u64>().map_err(|_| invalid())?;
        Ok(PageToken { offset })
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 128 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for offset in [0, 1, 1000, u64::MAX] {
            let token = PageToken { offset }.encode();
            assert_eq!(PageToken::decode(Some(&token)).unwrap().offset, offset);
        }
    }

    #[test]
    fn empty_is_first_page() {
        assert_eq!(PageToken::decode(Some("")).unwrap().offset, 0);
        assert_eq!(PageToken::decode(None).unwrap().offset, 0);
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["zz", "abc", "7b7d", "' OR 1=1 --"] {
            assert!(PageToken::decode(Some(bad)).is_err(), "{bad}");
        }
    }
}
