//! Types shared by every wire format.

use serde::{Deserialize, Serialize};

/// Token usage in OpenAI's vocabulary, whatever the vendor called it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    /// Prompt tokens served from the vendor's cache, when reported.
    pub cached_tokens: u64,
    /// Prompt tokens written to the vendor's cache (Anthropic
    /// `cache_creation_input_tokens`), when reported.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Output tokens spent on reasoning (OpenAI `reasoning_tokens`, Gemini
    /// `thoughtsTokenCount`), when reported; part of `completion_tokens`.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// The part of `cache_write_tokens` written for one hour (Anthropic
    /// `cache_creation.ephemeral_1h_input_tokens`), priced apart from the
    /// 5-minute writes; the rest of `cache_write_tokens` is 5-minute.
    #[serde(default)]
    pub cache_write_1h_tokens: u64,
}
