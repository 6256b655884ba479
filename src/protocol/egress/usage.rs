//! Usage read off answers the gateway relays in their own format (a
//! same-family vendor, or a Responses-native one): the ledger needs the
//! counts without the answer being translated. The vendor formats' own
//! wire types do the reading — the same ones the egress decoders use for
//! translated answers — so a vendor's usage fields are read one way.
//!
//! Only the usage object is built: everything else in the body is skipped
//! by serde without allocating.

use super::anthropic::WireUsage;
use super::gemini::wire::UsageMetadata;
use super::openai::UsageW;
use crate::protocol::chat::Usage;
use crate::protocol::json::Count;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::value::RawValue;

/// Which wire format carries the usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageFormat {
    /// OpenAI Chat Completions: top-level `usage` on the answer and on the
    /// stream's usage chunk; the latest is the total.
    OpenAiChat,
    /// Anthropic Messages: the answer's `usage`; in streams
    /// `message_start.message.usage`, then `message_delta.usage`, each
    /// replacing the counters it names.
    Anthropic,
    /// Gemini: `usageMetadata`, cumulative on every chunk.
    Gemini,
    /// OpenAI Responses: the answer's `usage`; in streams the final
    /// `response` object's (`response.completed`, `.incomplete`,
    /// `.failed`).
    Responses,
}

/// `{"usage": …}` with only the usage built.
#[derive(Deserialize)]
struct Probe<U> {
    usage: Option<U>,
}

/// Where a whole answer's usage object is, found without building it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProbe<'a> {
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
    #[serde(borrow)]
    usage_metadata: Option<&'a RawValue>,
}

/// An Anthropic stream event: `message_start` keeps its usage in
/// `message`, `message_delta` at the top.
#[derive(Deserialize)]
struct AnthropicEvent {
    message: Option<Probe<WireUsage>>,
    usage: Option<WireUsage>,
}

/// A Responses stream event; `type` is read borrowed when it can be.
#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'a"))]
struct ResponsesEvent<'a> {
    #[serde(rename = "type")]
    kind: Option<crate::protocol::json::S<'a>>,
    response: Option<Probe<ResponsesUsage>>,
}

/// Responses `usage`: `input_tokens` (cached included), `output_tokens`
/// (reasoning included) and their details.
#[derive(Deserialize, Default)]
struct ResponsesUsage {
    input_tokens: Option<Count>,
    output_tokens: Option<Count>,
    total_tokens: Option<Count>,
    input_tokens_details: Option<Details>,
    output_tokens_details: Option<Details>,
}

#[derive(Deserialize, Default)]
struct Details {
    cached_tokens: Option<Count>,
    reasoning_tokens: Option<Count>,
}

impl ResponsesUsage {
    fn usage(&self) -> Usage {
        let n = |c: Option<Count>| c.map_or(0, |c| c.0);
        let (prompt, completion) = (n(self.input_tokens), n(self.output_tokens));
        let detail =
            |d: &Option<Details>, f: fn(&Details) -> Option<Count>| n(d.as_ref().and_then(f));
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: Usage::total_or_sum(n(self.total_tokens), prompt, completion),
            cached_tokens: detail(&self.input_tokens_details, |d| d.cached_tokens).min(prompt),
            reasoning_tokens: detail(&self.output_tokens_details, |d| d.reasoning_tokens),
            ..Usage::default()
        }
    }
}

impl UsageFormat {
    /// A whole answer's usage from its top-level `usage` and
    /// `usageMetadata` values (raw JSON), whichever this format reads.
    pub fn usage_value(self, usage: Option<&[u8]>, metadata: Option<&[u8]>) -> Option<Usage> {
        fn read<U: DeserializeOwned>(raw: Option<&[u8]>, f: fn(U) -> Usage) -> Option<Usage> {
            crate::protocol::json::from_body(raw?).ok().map(f)
        }
        match self {
            UsageFormat::OpenAiChat => read(usage, |u: UsageW| u.read()),
            UsageFormat::Anthropic => read(usage, |u: WireUsage| u.usage()),
            UsageFormat::Responses => read(usage, |u: ResponsesUsage| u.usage()),
            UsageFormat::Gemini => read(metadata, |u: UsageMetadata| u.usage()),
        }
    }

    /// A whole answer's usage; `None` when it carries none.
    pub fn answer(self, body: &[u8]) -> Option<Usage> {
        let p = crate::protocol::json::from_body::<RawProbe>(body).ok()?;
        let [usage, metadata] = [p.usage, p.usage_metadata].map(|v| v.map(|v| v.get().as_bytes()));
        self.usage_value(usage, metadata)
    }
}

/// The usage of a stream so far, event by event.
#[derive(Default)]
pub struct UsageFold {
    usage: Option<Usage>,
    /// Anthropic's counters as reported so far (a later event replaces
    /// what it names).
    anthropic: WireUsage,
}

impl UsageFold {
    /// Fold in one event's data; `false` when it carries no usage.
    pub fn event(&mut self, format: UsageFormat, data: &[u8]) -> bool {
        let usage = match format {
            UsageFormat::OpenAiChat | UsageFormat::Gemini => format.answer(data),
            UsageFormat::Anthropic => {
                let Ok(ev) = serde_json::from_slice::<AnthropicEvent>(data) else {
                    return false;
                };
                let Some(u) = ev.message.and_then(|m| m.usage).or(ev.usage) else {
                    return false;
                };
                self.anthropic.update(&u);
                Some(self.anthropic.usage())
            }
            UsageFormat::Responses => {
                let Ok(ev) = serde_json::from_slice::<ResponsesEvent<'_>>(data) else {
                    return false;
                };
                let done = ev.kind.as_ref().is_some_and(|k| {
                    matches!(
                        &*k.0,
                        "response.completed" | "response.incomplete" | "response.failed"
                    )
                });
                ev.response
                    .and_then(|r| r.usage)
                    .filter(|_| done)
                    .map(|u| u.usage())
            }
        };
        match usage {
            Some(u) => {
                self.usage = Some(u);
                true
            }
            None => false,
        }
    }

    /// The usage read so far; `None` when no event carried any.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::{Usage, UsageFold, UsageFormat};

    /// (prompt, cached, completion, reasoning, total)
    fn five(u: Usage) -> [u64; 5] {
        [
            u.prompt_tokens,
            u.cached_tokens,
            u.completion_tokens,
            u.reasoning_tokens,
            u.total_tokens,
        ]
    }

    #[test]
    fn usage_is_read_in_each_formats_shape() {
        use UsageFormat::*;
        let mut f = UsageFold::default();
        let openai = br#"{"choices":[],"usage":{"prompt_tokens":10.0,"completion_tokens":5,"prompt_cache_hit_tokens":30}}"#;
        assert!(f.event(OpenAiChat, openai));
        assert_eq!(
            f.usage().map(five),
            Some([10, 10, 5, 0, 15]),
            "cached capped"
        );
        assert!(!f.event(OpenAiChat, br#"{"usage":null}"#));

        let mut f = UsageFold::default();
        let start = br#"{"type":"message_start","message":{"usage":{"input_tokens":3,"cache_read_input_tokens":7,"output_tokens":1}}}"#;
        assert!(f.event(Anthropic, start));
        assert!(f.event(
            Anthropic,
            br#"{"type":"message_delta","usage":{"output_tokens":9}}"#
        ));
        assert!(!f.event(Anthropic, br#"{"type":"ping"}"#));
        assert_eq!(f.usage().map(five), Some([10, 7, 9, 0, 19]));
        let answer = br#"{"content":[],"usage":{"input_tokens":4,"output_tokens":2}}"#;
        assert_eq!(Anthropic.answer(answer).map(|u| u.total_tokens), Some(6));

        let mut f = UsageFold::default();
        let chunk = br#"{"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":3,"thoughtsTokenCount":2,"totalTokenCount":10,"cachedContentTokenCount":9}}"#;
        assert!(f.event(Gemini, chunk));
        assert_eq!(
            f.usage().map(five),
            Some([5, 5, 5, 2, 10]),
            "thoughts are output"
        );
        assert!(!f.event(Gemini, br#"{"usage":{}}"#));
    }

    #[test]
    fn responses_usage_is_read_from_the_final_event_and_whole_answers() {
        let r = UsageFormat::Responses;
        let mut f = UsageFold::default();
        assert!(!f.event(
            r,
            br#"{"type":"response.created","response":{"usage":null}}"#
        ));
        let early = br#"{"type":"response.in_progress","response":{"usage":{"input_tokens":1}}}"#;
        assert!(!f.event(r, early), "only the final response object counts");
        let done = br#"{"type":"response.completed","response":{"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":15}}}"#;
        assert!(f.event(r, done));
        assert_eq!(f.usage().map(five), Some([10, 4, 5, 2, 15]));
        let answer = br#"{"output":[],"usage":{"input_tokens":3,"output_tokens":1}}"#;
        assert_eq!(r.answer(answer).map(|u| u.total_tokens), Some(4));
    }
}
