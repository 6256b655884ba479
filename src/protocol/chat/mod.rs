//! The chat model in the middle: one typed, borrowing description of a chat
//! exchange that every client API decodes into and every vendor API encodes
//! from (and back, for answers and streams).
//!
//! ```text
//!  client API        ingress adapter          chat model          egress adapter       vendor API
//!  OpenAI chat  ─┐                                                               ┌─ OpenAI chat
//!  Anthropic    ─┼─ decode_request ──▶  Request  ──▶ overrides ──▶ encode_request ┼─ Anthropic Messages
//!               │                                                                └─ Gemini generateContent
//!               └─ encode_answer / StreamEncoder ◀── Answer / Event ◀── decode_answer / StreamDecoder
//! ```
//!
//! Strings borrow from the bytes they were decoded from (`Cow`: owned only
//! when JSON escapes had to be undone). Tool-call arguments and JSON schemas
//! stay raw JSON text: parsed only by an adapter that must look inside.
//!
//! Same API in and out with no edits never comes here: the proxy relays the
//! client's bytes (see `proxy::relay`).

pub mod adapter;
pub mod error;
pub mod overrides;

pub use adapter::{
    Egress, EventSink, Ingress, StreamDecoder, StreamEncoder, Translation, VendorOptions,
};
pub use error::{ChatError, ErrorKind};

use serde_json::value::RawValue;
use std::borrow::Cow;

/// A string borrowed from the decoded bytes where it can be.
pub type Str<'a> = Cow<'a, str>;

/// The API family a thing came from. Opaque things (signatures, encrypted
/// reasoning, unknown fields, unknown content blocks) are only ever replayed
/// to their own family and dropped (with a debug line) elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    OpenAi,
    Anthropic,
    Gemini,
    /// The OpenAI Responses API: its own family, because its fields and
    /// encrypted reasoning mean nothing to an OpenAI chat endpoint.
    OpenAiResponses,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::OpenAi => "openai",
            Family::Anthropic => "anthropic",
            Family::Gemini => "gemini",
            Family::OpenAiResponses => "openai-responses",
        }
    }
}

// ---------------------------------------------------------------- request

/// A chat request, whatever API it arrived in.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The model the client asked for (routing has already resolved it; the
    /// egress adapter writes the upstream model it is given instead).
    pub model: Str<'a>,
    /// System / developer instructions, in order. Text parts (with their
    /// cache markers); other parts are rare and adapters may reject them.
    pub system: Vec<Part<'a>>,
    pub turns: Vec<Turn<'a>>,
    pub tools: Vec<Tool<'a>>,
    pub tool_choice: Option<ToolChoice<'a>>,
    /// `Some(false)`: at most one tool call per answer.
    pub parallel_tool_calls: Option<bool>,
    pub sampling: Sampling<'a>,
    /// Output token limit (OpenAI `max_tokens` / `max_completion_tokens`,
    /// Anthropic `max_tokens`, Gemini `maxOutputTokens`).
    pub max_tokens: Option<u64>,
    pub reasoning: Option<ReasoningConfig>,
    pub response_format: Option<ResponseFormat<'a>>,
    pub stream: bool,
    /// The client wants usage in its stream (OpenAI
    /// `stream_options.include_usage`; always true for Anthropic clients).
    pub include_usage: bool,
    /// Number of choices asked for (only 1 can be translated).
    pub n: Option<u64>,
    /// End-user identifier (OpenAI `user` / `safety_identifier`, Anthropic
    /// `metadata.user_id`).
    pub user: Option<Str<'a>>,
    /// Fields the model does not know, with the family they came from:
    /// re-emitted only to that family, dropped (debug line) elsewhere.
    pub extra: Extras<'a>,
}

impl<'a> Request<'a> {
    /// An empty request for `model` (used by probes and tests).
    pub fn new(model: impl Into<Str<'a>>, origin: Family) -> Self {
        Request {
            model: model.into(),
            system: Vec::new(),
            turns: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            sampling: Sampling::default(),
            max_tokens: None,
            reasoning: None,
            response_format: None,
            stream: false,
            include_usage: false,
            n: None,
            user: None,
            extra: Extras::new(origin),
        }
    }
}

/// Unknown top-level fields (raw JSON values) and their family.
#[derive(Debug, Clone)]
pub struct Extras<'a> {
    pub origin: Family,
    pub fields: Vec<(Str<'a>, Cow<'a, RawValue>)>,
}

impl<'a> Extras<'a> {
    pub fn new(origin: Family) -> Self {
        Extras {
            origin,
            fields: Vec::new(),
        }
    }

    /// The fields to re-emit for `target`: all of them for the same family,
    /// none elsewhere (their names are logged at debug level once).
    pub fn for_family(&self, target: Family) -> &[(Str<'a>, Cow<'a, RawValue>)] {
        if target == self.origin {
            &self.fields
        } else {
            if !self.fields.is_empty() && tracing::enabled!(tracing::Level::DEBUG) {
                let names: Vec<&str> = self.fields.iter().map(|(k, _)| k.as_ref()).collect();
                tracing::debug!(from = self.origin.as_str(), to = target.as_str(), fields = ?names, "fields with no equivalent at this vendor are dropped");
            }
            &[]
        }
    }
}

/// Serialised as Anthropic's and OpenAI's role words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation. Tool results are parts of a user turn (as
/// Anthropic and Gemini have them); OpenAI's `role: "tool"` messages are
/// decoded into, and encoded from, such parts.
#[derive(Debug, Clone)]
pub struct Turn<'a> {
    pub role: Role,
    pub parts: Vec<Part<'a>>,
}

/// One piece of content.
#[derive(Debug, Clone)]
pub enum Part<'a> {
    Text(Text<'a>),
    Media(Media<'a>),
    ToolCall(ToolCall<'a>),
    ToolResult(ToolResult<'a>),
    Reasoning(Reasoning<'a>),
    /// The model declined (OpenAI `refusal`).
    Refusal(Str<'a>),
    /// A block this model does not know (Anthropic server-tool blocks, …):
    /// replayed only to its own family.
    Opaque {
        family: Family,
        raw: Cow<'a, RawValue>,
    },
}

impl<'a> Part<'a> {
    /// A reasoning part: its text, the signature over it, and encrypted
    /// reasoning (see [`Reasoning`]).
    pub fn reasoning(
        text: impl Into<Str<'a>>,
        signature: Option<Signature<'a>>,
        redacted: Option<Signature<'a>>,
    ) -> Self {
        Part::Reasoning(Reasoning {
            text: text.into(),
            signature,
            redacted,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Text<'a> {
    pub text: Str<'a>,
    /// A prompt-caching marker (Anthropic `cache_control`, also accepted on
    /// OpenAI content parts), raw.
    pub cache: Option<Cow<'a, RawValue>>,
}

impl<'a> Text<'a> {
    pub fn plain(text: impl Into<Str<'a>>) -> Self {
        Text {
            text: text.into(),
            cache: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Audio,
    /// PDFs, plain-text documents, any other file.
    Document,
}

#[derive(Debug, Clone)]
pub enum MediaSource<'a> {
    /// Inline bytes, base64 (no `data:` prefix).
    Base64 {
        data: Str<'a>,
    },
    Url(Str<'a>),
    /// A vendor file id (OpenAI `file_id`, Anthropic Files API, Gemini file
    /// URI); meaningful only to the family that issued it.
    FileId {
        family: Family,
        id: Str<'a>,
    },
}

#[derive(Debug, Clone)]
pub struct Media<'a> {
    pub kind: MediaKind,
    /// MIME type when known (`image/png`, `application/pdf`, `audio/wav`).
    pub mime: Option<Str<'a>>,
    pub source: MediaSource<'a>,
    /// File name or document title, when given.
    pub name: Option<Str<'a>>,
    /// Image detail hint (OpenAI `detail`).
    pub detail: Option<Str<'a>>,
    pub cache: Option<Cow<'a, RawValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolKind {
    #[default]
    Function,
    /// Freeform input (OpenAI `type: "custom"`, e.g. Codex's `apply_patch`):
    /// the "arguments" are plain text, not JSON.
    Custom,
}

/// A signature the vendor attached to reasoning or a call, to be sent back
/// with it on the next turn (Anthropic thinking signature, Gemini thought
/// signature, OpenAI encrypted reasoning).
#[derive(Debug, Clone)]
pub struct Signature<'a> {
    pub family: Family,
    pub value: Str<'a>,
}

impl<'a> Signature<'a> {
    pub fn new(family: Family, value: impl Into<Str<'a>>) -> Self {
        Signature {
            family,
            value: value.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    pub id: Str<'a>,
    pub name: Str<'a>,
    pub kind: ToolKind,
    /// The arguments as the raw JSON text the model produced (Function), or
    /// the freeform input (Custom). Empty means `{}`; malformed JSON stays as
    /// sent until an adapter must parse it.
    pub arguments: Str<'a>,
    /// Gemini's thought signature on a function call.
    pub signature: Option<Signature<'a>>,
}

#[derive(Debug, Clone)]
pub struct ToolResult<'a> {
    pub call_id: Str<'a>,
    /// The function's name when the client said it (Gemini needs it; the
    /// egress adapter finds it from the matching call otherwise).
    pub name: Option<Str<'a>>,
    /// Text and media parts.
    pub content: Vec<Part<'a>>,
    pub is_error: bool,
    pub cache: Option<Cow<'a, RawValue>>,
}

#[derive(Debug, Clone)]
pub struct Reasoning<'a> {
    /// The readable reasoning (may be empty, e.g. redacted or encrypted).
    pub text: Str<'a>,
    /// Signature over `text` (Anthropic `thinking.signature`, Gemini
    /// `thoughtSignature`).
    pub signature: Option<Signature<'a>>,
    /// Encrypted reasoning the vendor can read back (Anthropic
    /// `redacted_thinking.data`, OpenAI `encrypted_content`).
    pub redacted: Option<Signature<'a>>,
}

#[derive(Debug, Clone)]
pub struct Tool<'a> {
    pub kind: ToolKind,
    pub name: Str<'a>,
    pub description: Option<Str<'a>>,
    /// JSON schema of the arguments (Function), raw.
    pub parameters: Option<Cow<'a, RawValue>>,
    pub strict: Option<bool>,
    /// Custom tools: the input grammar/format, raw.
    pub format: Option<Cow<'a, RawValue>>,
    pub cache: Option<Cow<'a, RawValue>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice<'a> {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(Str<'a>),
}

#[derive(Debug, Clone, Default)]
pub struct Sampling<'a> {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub stop: Vec<Str<'a>>,
}

/// How much the model should think.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningConfig {
    /// OpenAI-style effort.
    Effort(Effort),
    /// An explicit token budget (Anthropic `thinking.budget_tokens`, Gemini
    /// `thinkingBudget`); 0 turns thinking off.
    Budget(u64),
    /// Thinking on, the vendor decides how much (Anthropic `adaptive`,
    /// Gemini `thinkingBudget: -1`).
    Dynamic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}

impl Effort {
    pub fn parse(s: &str) -> Option<Effort> {
        Some(match s {
            "none" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::XHigh,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Effort::None => "none",
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::XHigh => "xhigh",
        }
    }

    /// The one table from effort to a thinking budget (tokens). 0 = off.
    /// 1024 is Anthropic's minimum budget; 24576 the largest Gemini Flash
    /// accepts.
    pub fn budget(self) -> u64 {
        match self {
            Effort::None => 0,
            Effort::Minimal => 512,
            Effort::Low => 1024,
            Effort::Medium => 8192,
            Effort::High | Effort::XHigh => 24576,
        }
    }
}

#[derive(Debug, Clone)]
pub enum ResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema {
        name: Option<Str<'a>>,
        schema: Option<Cow<'a, RawValue>>,
        strict: Option<bool>,
    },
}

// ---------------------------------------------------------------- answer

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Natural end of turn.
    Stop,
    /// A stop sequence matched (which one, when the vendor says).
    StopSequence(Option<String>),
    /// Output token limit.
    Length,
    ToolCalls,
    /// Blocked by a safety filter.
    ContentFilter,
    /// The model refused.
    Refusal,
    /// A long-running turn paused (Anthropic `pause_turn`).
    Pause,
    /// Something this model has no name for (the vendor's word).
    Other(String),
}

/// Token usage, every class any vendor reports.
pub use crate::protocol::types::Usage;

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    pub id: Str<'a>,
    /// The model the vendor says answered.
    pub model: Str<'a>,
    /// Unix seconds (vendors that give none: now).
    pub created: u64,
    /// Text, reasoning, tool calls and refusals in the order they came.
    pub parts: Vec<Part<'a>>,
    pub finish: Option<Finish>,
    pub usage: Usage,
}

impl Answer<'_> {
    /// The bytes of text the answer carries (ids, model, texts, calls,
    /// signatures, raw blocks), with an eighth more for escapes: an
    /// encoder's buffer is this plus its own fixed part, so it is allocated
    /// once and never grown (callgrind: a grown answer buffer cost ~550
    /// instructions per translated request).
    pub fn buffer_hint(&self) -> usize {
        let sig = |s: &Option<Signature<'_>>| s.as_ref().map_or(0, |s| s.value.len());
        let parts = self.parts.iter().map(|p| match p {
            Part::Text(t) => t.text.len(),
            Part::Refusal(r) => r.len(),
            Part::Reasoning(r) => r.text.len() + sig(&r.signature) + sig(&r.redacted),
            Part::ToolCall(c) => {
                64 + c.id.len() + c.name.len() + c.arguments.len() + sig(&c.signature)
            }
            Part::Opaque { raw, .. } => raw.get().len(),
            Part::Media(_) | Part::ToolResult(_) => 0,
        });
        (self.id.len() + self.model.len() + parts.sum::<usize>()) * 9 / 8
    }
}

// ---------------------------------------------------------------- stream

/// What a block holds; announced by [`Event::BlockStart`].
#[derive(Debug, Clone)]
pub enum Block<'a> {
    Text,
    Reasoning,
    /// A tool call: id and name are known when the block opens.
    ToolCall {
        id: Str<'a>,
        name: Str<'a>,
        kind: ToolKind,
    },
    Refusal,
}

#[derive(Debug, Clone)]
pub enum Delta<'a> {
    Text(Str<'a>),
    Reasoning(Str<'a>),
    /// A signature for the current block (reasoning, or a Gemini tool call).
    Signature(Signature<'a>),
    /// Encrypted / redacted reasoning for the current block.
    Redacted(Signature<'a>),
    /// A piece of a tool call's argument text.
    ToolArguments(Str<'a>),
    Refusal(Str<'a>),
}

/// A canonical stream event. Decoders normalise each vendor's habits (OpenAI
/// tool deltas carry only an index after the first; Gemini sends whole
/// calls without ids; Anthropic has explicit blocks) into this one
/// lifecycle: `Start` first, then per block `BlockStart`, `Delta`*,
/// `BlockStop` (indices count up from 0 in the order blocks open; blocks do
/// not interleave: a new block starts only after the previous one stopped),
/// `Usage` whenever the vendor reports it (cumulative totals: the latest
/// value wins; a decoder adds up what its vendor splits), and `Stop` last —
/// after the final `Usage` (a decoder that sees the finish reason before
/// the usage holds `Stop` back until the usage arrives or the stream ends).
/// A vendor's in-band error is `Error` (nothing follows it).
#[derive(Debug, Clone)]
pub enum Event<'a> {
    Start {
        id: Str<'a>,
        model: Str<'a>,
    },
    BlockStart {
        index: usize,
        block: Block<'a>,
    },
    Delta {
        index: usize,
        delta: Delta<'a>,
    },
    BlockStop {
        index: usize,
    },
    Usage(Usage),
    Stop {
        finish: Finish,
    },
    /// The vendor reported an error in-band; the stream ends after it.
    Error(ChatError),
}

// ---------------------------------------------------------------- helpers

/// Unix seconds now (0 if the clock is before 1970).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `id` when there is a non-empty one, else a [`generated_id`].
pub fn id_or_new<'a>(id: Option<Str<'a>>, prefix: &str) -> Str<'a> {
    id.filter(|i| !i.is_empty())
        .unwrap_or_else(|| Cow::Owned(generated_id(prefix)))
}

/// An id for something that arrived without one (a Gemini answer, a Gemini
/// function call): `prefix` + time + a process counter, unique within the
/// process without a random source.
pub fn generated_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!("{prefix}{nanos:x}{n:04x}")
}

/// `data:<mime>[;param]*;base64,<data>` -> (mime, data); `None` for
/// anything else (not a data URL, or not base64).
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    let (header, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mut params = header.split(';');
    let mime = params.next()?;
    (params.any(|p| p.trim().eq_ignore_ascii_case("base64"))).then_some((mime, data))
}

/// [`data_url`] of a decoded string: borrowed from the body when it is.
pub fn data_url_str<'a>(url: &Str<'a>) -> Option<(Str<'a>, Str<'a>)> {
    Some(match url {
        Cow::Borrowed(u) => {
            let (mime, data) = data_url(u)?;
            (Cow::Borrowed(mime), Cow::Borrowed(data))
        }
        Cow::Owned(u) => {
            let (mime, data) = data_url(u)?;
            (Cow::Owned(mime.to_string()), Cow::Owned(data.to_string()))
        }
    })
}

/// An `http://` or `https://` URL, the scheme in any case.
pub fn is_http(url: &str) -> bool {
    ["http://", "https://"].iter().any(|p| {
        url.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    })
}
