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
    /// Of `cache_write_tokens`, those kept 1 h (Anthropic `ephemeral_1h_input_tokens`).
    #[serde(default)]
    pub cache_write_1h_tokens: u64,
}

impl Usage {
    /// The vendor's total, or prompt + completion when it reported none
    /// (or 0).
    pub fn total_or_sum(reported: u64, prompt: u64, completion: u64) -> u64 {
        match reported {
            0 => prompt.saturating_add(completion),
            t => t,
        }
    }
}
