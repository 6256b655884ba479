//! The price table: per model glob and token class, in US dollars per
//! million tokens as operators write them, held as integer micro-dollars
//! per million tokens so that cost arithmetic has no floats in it.

use crate::protocol::types::Usage;
use crate::routing::ModelPattern;
use serde::{Deserialize, Serialize};

/// The date of the shipped default prices.
pub const DEFAULTS_AS_OF: &str = "2025-11-30";
/// The shipped default prices (see the file's header for their date).
pub const DEFAULT_PRICES: &str = include_str!("prices.toml");
/// Bounds on what one table may hold (config, API).
pub const MAX_ENTRIES: usize = 1000;
/// A price above this (USD per million tokens) is a typo.
const MAX_PRICE_USD: f64 = 1_000_000.0;

/// One `[[prices]]` entry as written: USD per million tokens.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceSection {
    /// Model glob (`gpt-4o*`), matched against the model name sent to the
    /// vendor, then against the name the client asked for.
    pub model: String,
    /// Only for answers from this provider (by name); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Uncached prompt tokens.
    pub input: f64,
    pub output: f64,
    /// Prompt tokens read from the vendor's cache (default: `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_read: Option<f64>,
    /// Prompt tokens written to a 5-minute cache (default: `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_5m: Option<f64>,
    /// Prompt tokens written to a 1-hour cache (default: `cache_write_5m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<f64>,
    /// Reasoning tokens, when priced apart (default: `output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
}

/// Micro-dollars per million tokens, per class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cached_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub reasoning: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The bytes (up to two: `gp`, `ge`, `cl`) every model the pattern
    /// matches starts with: the scan (every answer, ~50 entries) skips the
    /// others on a compare or two instead of a call to compare prefixes.
    /// `(bytes, mask)`, compared with [`lead2`] of the model.
    lead: (u16, u16),
    pattern: ModelPattern,
    provider: Option<String>,
    rates: Rates,
}

/// The compiled table: configured entries first, then the defaults; the
/// first entry that matches wins.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct PriceFile {
    prices: Vec<PriceSection>,
}

/// USD per million tokens to micro-dollars per million tokens.
fn micros(usd: f64) -> u64 {
    (usd * 1_000_000.0).round() as u64
}

impl PriceSection {
    /// The first problem with this entry, as `(field, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if ModelPattern::parse(&self.model).is_none() || self.model.len() > 256 {
            return Err((
                "model",
                "must be a model name or glob of 1 to 256 bytes".into(),
            ));
        }
        if self
            .provider
            .as_ref()
            .is_some_and(|p| p.trim().is_empty() || p.len() > 256)
        {
            return Err((
                "provider",
                "must be a provider name of 1 to 256 bytes".into(),
            ));
        }
        for (field, v) in [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cached_read", self.cached_read),
            ("cache_write_5m", self.cache_write_5m),
            ("cache_write_1h", self.cache_write_1h),
            ("reasoning", self.reasoning),
        ] {
            if v.is_some_and(|v| !(v.is_finite() && (0.0..=MAX_PRICE_USD).contains(&v))) {
                return Err((
                    field,
                    format!(
                        "must be a price in USD per million tokens between 0 and {MAX_PRICE_USD}"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn rates(&self) -> Rates {
        let input = micros(self.input);
        let output = micros(self.output);
        let write_5m = self.cache_write_5m.map_or(input, micros);
        Rates {
            input,
            output,
            cached_read: self.cached_read.map_or(input, micros),
            cache_write_5m: write_5m,
            cache_write_1h: self.cache_write_1h.map_or(write_5m, micros),
            reasoning: self.reasoning.map_or(output, micros),
        }
    }
}

/// The shipped defaults, parsed (checked by a unit test, so the fallback
/// to an empty list never happens in a released build).
pub fn default_sections() -> Vec<PriceSection> {
    match toml::from_str::<PriceFile>(DEFAULT_PRICES) {
        Ok(f) => f.prices,
        Err(e) => {
            tracing::error!(error = %e, "the built-in price table does not parse");
            Vec::new()
        }
    }
}

impl PriceTable {
    /// `configured` (already checked) before the shipped defaults.
    pub fn new(configured: &[PriceSection]) -> PriceTable {
        let entries = configured
            .iter()
            .cloned()
            .chain(default_sections())
            .filter_map(|s| {
                let pattern = ModelPattern::parse(&s.model)?;
                Some(Entry {
                    lead: {
                        let (bytes, n) = pattern.lead();
                        (lead2(&bytes[..n]), [0, 0xff, 0xffff][n])
                    },
                    pattern,
                    rates: s.rates(),
                    provider: s.provider,
                })
            })
            .collect();
        PriceTable { entries }
    }

    /// The rates for `model` as served by `provider`.
    pub fn rates(&self, provider: Option<&str>, model: &str) -> Option<Rates> {
        let lead = lead2(model.as_bytes());
        self.entries
            .iter()
            .find(|e| {
                lead & e.lead.1 == e.lead.0
                    && e.provider.as_deref().is_none_or(|p| Some(p) == provider)
                    && e.pattern.matches(model)
            })
            .map(|e| e.rates)
    }

    /// The cost of `usage` in micro-dollars, priced by the first of
    /// `models` (the name sent to the vendor, then the client's) that has a
    /// price; `None` when none has.
    pub fn cost(&self, provider: Option<&str>, models: &[&str], usage: &Usage) -> Option<u64> {
        let rates = models.iter().find_map(|m| self.rates(provider, m))?;
        Some(cost_micros(&rates, usage))
    }
}

/// A name's first two bytes as one number (0 where it is shorter).
fn lead2(name: &[u8]) -> u16 {
    match name {
        [a, b, ..] => u16::from_le_bytes([*a, *b]),
        [a] => u16::from(*a),
        [] => 0,
    }
}

/// Token classes as billed. The canonical [`Usage`] counts cache reads and
/// writes inside `prompt_tokens` and reasoning inside `completion_tokens`;
/// each token is billed in exactly one class here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classes {
    pub input: u64,
    pub cached_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub output: u64,
    pub reasoning: u64,
}

impl Classes {
    pub fn of(u: &Usage) -> Classes {
        let write = u.cache_write_tokens;
        let write_1h = u.cache_write_1h_tokens.min(write);
        let reasoning = u.reasoning_tokens.min(u.completion_tokens);
        Classes {
            input: u
                .prompt_tokens
                .saturating_sub(u.cached_tokens)
                .saturating_sub(write),
            cached_read: u.cached_tokens.min(u.prompt_tokens),
            cache_write_5m: write - write_1h,
            cache_write_1h: write_1h,
            output: u.completion_tokens - reasoning,
            reasoning,
        }
    }
}

/// Σ tokens × rate / 10^6, rounded half up once at the end (u128: no
/// overflow for any u64 counts).
pub fn cost_micros(r: &Rates, u: &Usage) -> u64 {
    let c = Classes::of(u);
    let sum: u128 = [
        (c.input, r.input),
        (c.cached_read, r.cached_read),
        (c.cache_write_5m, r.cache_write_5m),
        (c.cache_write_1h, r.cache_write_1h),
        (c.output, r.output),
        (c.reasoning, r.reasoning),
    ]
    .iter()
    .map(|&(t, p)| u128::from(t) * u128::from(p))
    .sum();
    u64::try_from((sum + 500_000) / 1_000_000).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_check() {
        let d = default_sections();
        assert!(d.len() > 20, "{}", d.len());
        for s in &d {
            s.check().unwrap_or_else(|e| panic!("{}: {e:?}", s.model));
        }
    }

    #[test]
    fn first_match_wins_and_config_comes_first() {
        let t = PriceTable::new(&[]);
        // gpt-4o-mini is listed before gpt-4o*.
        assert_eq!(
            t.rates(None, "gpt-4o-mini-2024-07-18").unwrap().input,
            150_000
        );
        assert_eq!(t.rates(None, "gpt-4o-2024-08-06").unwrap().input, 2_500_000);
        assert!(t.rates(None, "my-local-llama").is_none());
        let mine = PriceSection {
            model: "gpt-4o*".into(),
            provider: Some("azure".into()),
            input: 1.0,
            output: 2.0,
            ..PriceSection::default()
        };
        let t = PriceTable::new(&[mine]);
        assert_eq!(t.rates(Some("azure"), "gpt-4o").unwrap().input, 1_000_000);
        assert_eq!(t.rates(Some("openai"), "gpt-4o").unwrap().input, 2_500_000);
    }

    #[test]
    fn the_lead_byte_skip_finds_what_a_full_scan_finds() {
        let t = PriceTable::new(&[]);
        for name in [
            "",
            "g",
            "o",
            "gp",
            "gpt-4o",
            "gpt-4o-mini",
            "gemini-2.5-flash",
            "claude-sonnet-4-5",
            "o3-mini",
            "x",
            "\u{e9}t\u{e9}",
        ] {
            let scan = t
                .entries
                .iter()
                .find(|e| e.provider.is_none() && e.pattern.matches(name));
            assert_eq!(
                t.rates(None, name).map(|r| r.input),
                scan.map(|e| e.rates.input),
                "{name}"
            );
        }
    }

    #[test]
    fn each_token_is_billed_once() {
        // Anthropic-shaped: 100 uncached + 50 read + 30 written (10 of them 1 h).
        let u = Usage {
            prompt_tokens: 180,
            completion_tokens: 40,
            total_tokens: 220,
            cached_tokens: 50,
            cache_write_tokens: 30,
            cache_write_1h_tokens: 10,
            reasoning_tokens: 15,
        };
        let r = Rates {
            input: 3_000_000,
            output: 15_000_000,
            cached_read: 300_000,
            cache_write_5m: 3_750_000,
            cache_write_1h: 6_000_000,
            reasoning: 20_000_000,
        };
        // 100*3 + 50*0.3 + 20*3.75 + 10*6 + 25*15 + 15*20 = 300+15+75+60+375+300 = 1125 micro$
        assert_eq!(cost_micros(&r, &u), 1125);
        assert_eq!(cost_micros(&r, &Usage::default()), 0);
    }
}
