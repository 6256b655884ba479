//! Masking secrets in text that came from outside: vendor error bodies can
//! echo the key they were sent (some OpenAI-compatible servers print it
//! whole), and that text reaches clients, log lines, stored rows and the
//! health endpoint. Every configured secret is replaced by its masked form
//! (`sk-…abcd`) in one pass. Used on error paths only, never on answers
//! that succeed.

use aho_corasick::{AhoCorasick, MatchKind};
use bytes::Bytes;
use std::borrow::Cow;

/// Secrets shorter than this are not searched for: they would match
/// ordinary words. Real vendor keys and tokens are far longer.
const MIN_SECRET: usize = 8;

pub struct Redactor {
    /// `None` when there is nothing to mask.
    finder: Option<AhoCorasick>,
    /// The masked form of each pattern, by pattern index.
    masks: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    // Never the secrets themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.masks.len())
            .finish()
    }
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut patterns: Vec<&str> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET)
            .collect();
        patterns.sort_unstable();
        patterns.dedup();
        let masks = patterns.iter().map(|s| mask_secret(s)).collect();
        // Leftmost-longest: a key that contains another one is masked whole.
        let finder = (!patterns.is_empty())
            .then(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .ok()
            })
            .flatten();
        Redactor { finder, masks }
    }

    fn replace(&self, text: &[u8]) -> Option<Vec<u8>> {
        let finder = self.finder.as_ref()?;
        let mut matches = finder.find_iter(text).peekable();
        matches.peek()?;
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for m in matches {
            out.extend_from_slice(&text[at..m.start()]);
            out.extend_from_slice(self.masks[m.pattern().as_usize()].as_bytes());
            at = m.end();
        }
        out.extend_from_slice(&text[at..]);
        Some(out)
    }

    /// `body` with every secret masked (the same bytes when none occurs).
    pub fn bytes(&self, body: Bytes) -> Bytes {
        match self.replace(&body) {
            Some(out) => Bytes::from(out),
            None => body,
        }
    }

    /// `text` with every secret masked.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.replace(text.as_bytes()) {
            // Secrets and masks are whole UTF-8 strings, so the result is too.
            Some(out) => Cow::Owned(String::from_utf8_lossy(&out).into_owned()),
            None => Cow::Borrowed(text),
        }
    }
}

/// Mask a secret for display: `sk-…abcd`; short secrets are hidden entirely.
pub fn mask_secret(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "…".to_string();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_is_masked_and_other_text_kept() {
        let r = Redactor::new([
            "sk-proj-abcdefghijklmnop",
            "sk-proj-abcdefghijklmnop-longer",
            "tok-0123456789",
            "short",
        ]);
        let body = Bytes::from_static(
            b"Incorrect API key provided: sk-proj-abcdefghijklmnop-longer; also sk-proj-abcdefghijklmnop and tok-0123456789, short",
        );
        let out = r.bytes(body);
        let out = std::str::from_utf8(&out).expect("utf8");
        assert_eq!(
            out,
            "Incorrect API key provided: sk-…nger; also sk-…mnop and tok…6789, short"
        );
        let clean = Bytes::from_static(b"nothing secret here");
        assert_eq!(r.bytes(clean.clone()).as_ptr(), clean.as_ptr(), "no copy");
        assert_eq!(r.text("a tok-0123456789 b"), "a tok…6789 b");
        assert!(!format!("{r:?}").contains("sk-proj"));
        assert_eq!(Redactor::new([]).text("x"), "x");
    }
}
