//! Client keys: per-application credentials for the data plane.
//!
//! A key is created through the admin API; its secret (`llmo-` + 40
//! url-safe characters from the OS RNG) is shown once and stored only as a
//! SHA-256 hash (hex). Everywhere afterwards the key appears in its masked
//! form (`llmo-…abcd`). The live table ([`KeyTable`]) maps hash to key and
//! sits in [`crate::control::live::Live`]: the request path hashes the
//! presented token and looks it up in memory, with no database access.
//! `AUTH_TOKEN` stays the master token (every model and API).
//!
//! A key may also carry request limits (`rpm`, `tpm`, `max_concurrent`),
//! enforced across instances by [`limits`]; a key without them costs the
//! request path nothing more than the table lookup.

pub mod hex;
pub mod limits;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use ring::rand::SecureRandom;

/// Every secret starts with this, so a leaked one is recognisable.
pub const PREFIX: &str = "llmo-";
/// Random characters after the prefix (64-letter alphabet: 240 bits).
const SECRET_CHARS: usize = 40;
/// The client APIs a key may be limited to. `responses` covers
/// `/v1/responses/compact` too.
pub const APIS: [&str; 4] = ["openai", "anthropic", "responses", "gemini"];
/// Bounds on what an admin may store in one key.
pub const MAX_NAME: usize = 200;
pub const MAX_PATTERNS: usize = 100;
pub const MAX_PATTERN: usize = 256;

/// What the store keeps of a key besides its hash and masked form; also the
/// JSON document in the `client_keys.doc` column.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyDoc {
    pub name: String,
    #[serde(default)]
    pub owner: String,
    /// Model globs (`gpt-4o*`, `claude-*`); empty means every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Client APIs from [`APIS`]; empty means every API.
    #[serde(default)]
    pub apis: Vec<String>,
    /// Unix ms after which the key stops working.
    #[serde(default)]
    pub expires_ms: Option<i64>,
    pub enabled: bool,
    /// Token and cost budgets per UTC day, month or in total (see
    /// [`crate::ledger::budgets`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<crate::ledger::Budget>,
    /// Requests per minute (sliding 60 s window); absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens (input + output) per minute; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Requests in flight at once; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
}

impl KeyDoc {
    /// The first problem with this document, as `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME {
            return Err((
                "name",
                format!("must be a non-empty string of at most {MAX_NAME} bytes"),
            ));
        }
        if self.owner.len() > MAX_NAME {
            return Err(("owner", format!("must be at most {MAX_NAME} bytes")));
        }
        if self.models.len() > MAX_PATTERNS
            || self
                .models
                .iter()
                .any(|m| m.trim().is_empty() || m.len() > MAX_PATTERN)
        {
            return Err((
                "models",
                format!(
                    "at most {MAX_PATTERNS} non-empty model names or globs of at most {MAX_PATTERN} bytes each"
                ),
            ));
        }
        if let Some(bad) = self.apis.iter().find(|a| !APIS.contains(&a.as_str())) {
            let bad: String = bad.chars().take(40).collect();
            return Err((
                "apis",
                format!("unknown client API `{bad}`; use {}", APIS.join(", ")),
            ));
        }
        crate::ledger::budgets::check_budgets(&self.budgets).map_err(|e| ("budgets", e))?;
        for (field, value, max) in [
            ("rpm", self.rpm.map(u64::from), u64::from(limits::MAX_RPM)),
            ("tpm", self.tpm, limits::MAX_TPM),
            (
                "max_concurrent",
                self.max_concurrent.map(u64::from),
                u64::from(limits::MAX_CONCURRENT),
            ),
        ] {
            if value.is_some_and(|v| v == 0 || v > max) {
                return Err((
                    field,
                    format!("must be between 1 and {max}, or absent for no limit"),
                ));
            }
        }
        Ok(())
    }

    /// The key's limits, `None` when it has none (the common case: such
    /// a key takes no limit work on the request path).
    pub fn limits(&self) -> Option<limits::Limits> {
        if self.rpm.is_none() && self.tpm.is_none() && self.max_concurrent.is_none() {
            return None;
        }
        Some(limits::Limits {
            rpm: self.rpm.unwrap_or(0),
            tpm: self.tpm.unwrap_or(0),
            max_concurrent: self.max_concurrent.unwrap_or(0),
        })
    }
}

/// One key as the data plane sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientKey {
    pub id: i64,
    /// `llmo-…abcd`: what logs, the API and the console show.
    pub masked: String,
    pub doc: KeyDoc,
    pub created_ms: i64,
    /// Names the key's limit state in Redis: the start of its hash, the
    /// same on every instance (ids differ between instances that each
    /// keep their own SQLite copy). Set by [`KeyTable::new`].
    pub limit_id: Arc<str>,
    /// How the request log names the key (see [`ClientKey::log_label`]),
    /// formatted once by [`KeyTable::new`], not per request.
    pub label: Arc<str>,
}

/// Why a presented key may not make this call.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// Unknown, disabled or expired: 401, as a wrong token.
    Invalid,
    /// The key may not use this client API: 403.
    Api,
}

impl ClientKey {
    /// May this key call `api` (a [`crate::proxy::client::ClientApi`] name) at `now_ms`?
    pub fn admit(&self, api: &str, now_ms: i64) -> Result<(), Denied> {
        if !self.doc.enabled || self.doc.expires_ms.is_some_and(|t| now_ms >= t) {
            return Err(Denied::Invalid);
        }
        let api = if api == "responses_compact" {
            "responses"
        } else {
            api
        };
        if self.doc.apis.is_empty() || self.doc.apis.iter().any(|a| a == api) {
            Ok(())
        } else {
            Err(Denied::Api)
        }
    }

    /// How the request log names the key: `#id name (llmo-…abcd)`, bounded.
    pub fn log_label(&self) -> String {
        let name: String = self.doc.name.chars().take(120).collect();
        format!("#{} {name} ({})", self.id, self.masked)
    }

    /// May this key use `model`? `resolved` is the alias target when
    /// `model` is an alias: a pattern may name either, so a key limited
    /// to `gpt-4o*` can use an alias that points there.
    pub fn allows_model(&self, model: &str, resolved: Option<&str>) -> bool {
        self.doc.models.is_empty()
            || self.doc.models.iter().any(|p| {
                crate::routing::route::ModelPattern::parse(p).is_some_and(|pat| {
                    pat.matches(model) || resolved.is_some_and(|r| pat.matches(r))
                })
            })
    }
}

/// The live key table: SHA-256 of the secret -> key.
///
/// Keyed by the raw digest with [`DigestHasher`]: a lookup hashes the
/// presented token once (SHA-256) and nothing more — no hex string, no
/// SipHash over it (about 2,000 instructions a keyed request).
#[derive(Debug, Default, PartialEq)]
pub struct KeyTable {
    by_hash: HashMap<[u8; 32], Arc<ClientKey>, BuildHasherDefault<DigestHasher>>,
}

/// Hashes a SHA-256 digest by its first eight bytes: the digest is already
/// uniform, and which secrets exist is the admin's choice, not a caller's
/// (a caller only picks which token to present, and cannot aim a digest).
#[derive(Default)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // A `[u8; 32]` key arrives as its length, then its 32 bytes:
        // everything folds in eight bytes at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

impl KeyTable {
    /// `keys` are (SHA-256 hex of the secret, key), as the store holds
    /// them; a hash that is not 64 hex digits cannot match any token and
    /// is left out.
    pub fn new(keys: impl IntoIterator<Item = (String, ClientKey)>) -> KeyTable {
        KeyTable {
            by_hash: keys
                .into_iter()
                .filter_map(|(h, mut k)| {
                    let digest = hex::decode32(&h)?;
                    k.limit_id = Arc::from(h.get(..24).unwrap_or(&h));
                    k.label = Arc::from(k.log_label());
                    Some((digest, Arc::new(k)))
                })
                .collect(),
        }
    }

    /// The key whose secret is `token`, if any. Only tokens shaped like a
    /// secret are hashed: anything else is not a client key.
    pub fn find(&self, token: &[u8]) -> Option<&Arc<ClientKey>> {
        if self.by_hash.is_empty()
            || token.len() != PREFIX.len() + SECRET_CHARS
            || !token.starts_with(PREFIX.as_bytes())
        {
            return None;
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, token);
        let digest: &[u8; 32] = digest.as_ref().try_into().ok()?;
        self.by_hash.get(digest)
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// A new secret from the OS RNG.
pub fn generate() -> Result<String, ring::error::Unspecified> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; SECRET_CHARS];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    let mut out = String::with_capacity(PREFIX.len() + SECRET_CHARS);
    out.push_str(PREFIX);
    // 256 is a multiple of 64: the low six bits of a uniform byte are uniform.
    out.extend(
        bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 63)])),
    );
    Ok(out)
}

/// SHA-256 of the secret, lower-case hex: what the store keeps.
pub fn hash(secret: &[u8]) -> String {
    hex::hex(ring::digest::digest(&ring::digest::SHA256, secret).as_ref())
}

/// `llmo-…abcd`: enough to tell keys apart, useless to an attacker.
pub fn mask(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{PREFIX}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_lower_case_hex_sha256() {
        // FIPS 180-2's "abc" example.
        assert_eq!(
            hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn key(models: &[&str], apis: &[&str]) -> ClientKey {
        ClientKey {
            id: 1,
            masked: "llmo-…abcd".into(),
            doc: KeyDoc {
                name: "k".into(),
                owner: String::new(),
                models: models.iter().map(|s| s.to_string()).collect(),
                apis: apis.iter().map(|s| s.to_string()).collect(),
                expires_ms: None,
                enabled: true,
                budgets: Vec::new(),
                rpm: None,
                tpm: None,
                max_concurrent: None,
            },
            created_ms: 0,
            limit_id: Arc::from(""),
            label: Arc::from(""),
        }
    }

    #[test]
    fn secrets_hash_and_mask() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == 45, "{a}");
        assert!(a[5..]
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(
            hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(mask("llmo-xxxxwxyz"), "llmo-…wxyz");
        let table = KeyTable::new([(hash(a.as_bytes()), key(&[], &[]))]);
        let found = table.find(a.as_bytes()).map(|k| k.label.to_string());
        assert_eq!(
            found.as_deref(),
            Some("#1 k (llmo-…abcd)"),
            "label set once"
        );
        // A stored hash that is not 64 hex digits matches nothing.
        assert!(KeyTable::new([("zz".to_string(), key(&[], &[]))]).is_empty());
        assert!(table.find(b.as_bytes()).is_none());
        assert!(table.find(b"short").is_none());
    }

    #[test]
    fn models_apis_expiry() {
        let k = key(&["gpt-4o*"], &["openai", "responses"]);
        assert!(k.allows_model("gpt-4o-mini", None));
        assert!(!k.allows_model("claude-3", None));
        assert!(k.allows_model("fast", Some("gpt-4o")), "alias target");
        assert_eq!(k.admit("openai", 0), Ok(()));
        assert_eq!(k.admit("responses_compact", 0), Ok(()));
        assert_eq!(k.admit("anthropic", 0), Err(Denied::Api));
        let mut old = key(&[], &[]);
        old.doc.expires_ms = Some(10);
        assert_eq!(old.admit("gemini", 9), Ok(()));
        assert_eq!(old.admit("gemini", 10), Err(Denied::Invalid));
        old.doc.enabled = false;
        assert_eq!(old.admit("gemini", 0), Err(Denied::Invalid));
        assert!(key(&[], &["nope"]).doc.check().is_err());
    }

    #[test]
    fn limits_are_bounded_and_absent_means_none() {
        let mut k = key(&[], &[]);
        assert_eq!(k.doc.limits(), None);
        k.doc.rpm = Some(60);
        assert_eq!(
            k.doc.limits(),
            Some(limits::Limits {
                rpm: 60,
                tpm: 0,
                max_concurrent: 0
            })
        );
        assert!(k.doc.check().is_ok());
        k.doc.rpm = Some(0);
        assert_eq!(k.doc.check().map_err(|e| e.0), Err("rpm"));
        k.doc.rpm = None;
        k.doc.tpm = Some(limits::MAX_TPM + 1);
        assert_eq!(k.doc.check().map_err(|e| e.0), Err("tpm"));
        k.doc.tpm = None;
        k.doc.max_concurrent = Some(limits::MAX_CONCURRENT + 1);
        assert_eq!(k.doc.check().map_err(|e| e.0), Err("max_concurrent"));
        // Stored documents from before limits existed still read.
        let old: KeyDoc = serde_json::from_str(r#"{"name":"a","enabled":true}"#).unwrap();
        assert_eq!(old.limits(), None);
    }
}
