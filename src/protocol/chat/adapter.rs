//! The two adapter traits and the stream pipeline that joins them.
//!
//! An **ingress** adapter is one client API: it decodes the client's request
//! into a [`Request`] and encodes answers, stream events and errors back
//! into that API. An **egress** adapter is one vendor API: it encodes a
//! [`Request`] into the vendor's body and decodes the vendor's answers,
//! stream events and errors. A new client API is one ingress adapter; a new
//! vendor one egress adapter; neither knows the other.

use super::{Answer, ChatError, Event, Family, Request, Usage};
use bytes::{Bytes, BytesMut};

/// Per-provider knobs an egress adapter reads (compiled once per provider).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorOptions {
    /// Output limit to send when the client gave none (Anthropic requires
    /// one; `None` lets the vendor decide where it may).
    pub default_max_tokens: Option<u64>,
    /// The Anthropic API version sent upstream (its rules: versions from
    /// 2026-10-21 reject temperature/top_p/top_k).
    pub anthropic_version: String,
}

/// Where decoded stream events go.
pub trait EventSink {
    fn event(&mut self, ev: Event<'_>);
}

impl<F: FnMut(Event<'_>)> EventSink for F {
    fn event(&mut self, ev: Event<'_>) {
        self(ev)
    }
}

/// A vendor's stream, decoded into canonical events. One per answer.
pub trait StreamDecoder: Send {
    /// One upstream SSE event (its name, empty when absent, and its data).
    /// An error the vendor reports in-band is delivered as [`Event::Error`]
    /// (the client gets it in its own format) and `Ok` is returned; events
    /// after it are ignored. `Err` means the event could not be decoded at
    /// all (garbage): the caller cuts the stream with its own error event.
    fn push(&mut self, event: &str, data: &str, sink: &mut dyn EventSink) -> Result<(), ChatError>;
    /// The upstream body ended (`clean`: HTTP framing complete). Emits what
    /// closes the answer (open blocks, `Stop`) or fails when the vendor's
    /// stream was truncated.
    fn finish(&mut self, clean: bool, sink: &mut dyn EventSink) -> Result<(), ChatError>;
}

/// Canonical events encoded into a client's stream format. One per answer.
pub trait StreamEncoder: Send {
    /// SSE-encoded output for `ev` is appended to `out`.
    fn event(&mut self, ev: &Event<'_>, out: &mut BytesMut);
    /// The stream is over (after `Stop`, or cut): anything the client's
    /// format needs to close (OpenAI `data: [DONE]`). Not called after an
    /// in-band error was encoded.
    fn finish(&mut self, out: &mut BytesMut);
    /// The stream is cut by the gateway (upstream died, garbage): an error
    /// event that needs the stream's state (Responses `response.failed`
    /// names the response) is appended and `true` returned; `false` leaves
    /// it to the stateless [`Ingress::stream_error`].
    fn fail(&mut self, _err: &ChatError, _out: &mut BytesMut) -> bool {
        false
    }
}

/// One client API.
pub trait Ingress: Sync {
    fn family(&self) -> Family;
    /// The client's body, decoded. Errors name the field (`param`).
    fn decode_request<'a>(&self, body: &'a [u8]) -> Result<Request<'a>, ChatError>;
    /// A whole answer in the client's format; `model` is the name the
    /// client asked for.
    fn encode_answer(&self, answer: &Answer<'_>, model: &str) -> Bytes;
    /// An encoder for one streamed answer.
    fn stream_encoder(&self, model: &str, include_usage: bool) -> Box<dyn StreamEncoder>;
    /// An error as a whole response body in the client's format (the status
    /// is `err.status`).
    fn encode_error(&self, err: &ChatError) -> Bytes;
    /// An in-band error event for a stream already under way.
    fn stream_error(&self, err: &ChatError) -> Bytes;
    /// [`Ingress::encode_answer`] with the client's decoded request at hand,
    /// for APIs whose answers echo it (Responses: which tools were
    /// freeform, what `include` asked for).
    fn encode_answer_for(
        &self,
        _req: Option<&Request<'_>>,
        answer: &Answer<'_>,
        model: &str,
    ) -> Bytes {
        self.encode_answer(answer, model)
    }
    /// [`Ingress::stream_encoder`] with the client's decoded request at hand.
    fn stream_encoder_for(
        &self,
        _req: Option<&Request<'_>>,
        model: &str,
        include_usage: bool,
    ) -> Box<dyn StreamEncoder> {
        self.stream_encoder(model, include_usage)
    }
}

/// One vendor API.
pub trait Egress: Sync {
    fn family(&self) -> Family;
    /// The vendor's request body. `model` is the upstream model (formats
    /// that carry it in the URL ignore it).
    fn encode_request(
        &self,
        req: &Request<'_>,
        model: &str,
        opts: &VendorOptions,
    ) -> Result<Bytes, ChatError>;
    /// A whole success body.
    fn decode_answer<'a>(&self, body: &'a [u8]) -> Result<Answer<'a>, ChatError>;
    /// A decoder for one streamed answer.
    fn stream_decoder(&self) -> Box<dyn StreamDecoder>;
    /// An error answer (any non-2xx) in canonical terms.
    fn decode_error(&self, status: u16, body: &[u8]) -> ChatError;
}

/// A vendor stream translated into a client's: decoder and encoder joined,
/// with the usage the vendor reported kept on the way.
pub struct Translation {
    decoder: Box<dyn StreamDecoder>,
    encoder: Box<dyn StreamEncoder>,
    usage: Usage,
    failure: Option<ChatError>,
}

struct Through<'e> {
    encoder: &'e mut dyn StreamEncoder,
    usage: &'e mut Usage,
    failure: &'e mut Option<ChatError>,
    out: &'e mut BytesMut,
}

impl EventSink for Through<'_> {
    fn event(&mut self, ev: Event<'_>) {
        match &ev {
            Event::Usage(u) => *self.usage = *u,
            Event::Error(e) => *self.failure = Some(e.clone()),
            _ => {}
        }
        self.encoder.event(&ev, self.out);
    }
}

impl Translation {
    pub fn new(decoder: Box<dyn StreamDecoder>, encoder: Box<dyn StreamEncoder>) -> Self {
        Translation {
            decoder,
            encoder,
            usage: Usage::default(),
            failure: None,
        }
    }

    /// One upstream event through both; output appended to `out`.
    pub fn push(&mut self, event: &str, data: &str, out: &mut BytesMut) -> Result<(), ChatError> {
        if self.failure.is_some() {
            return Ok(());
        }
        let mut sink = Through {
            encoder: self.encoder.as_mut(),
            usage: &mut self.usage,
            failure: &mut self.failure,
            out,
        };
        self.decoder.push(event, data, &mut sink)
    }

    /// The upstream ended (`clean`: framing complete).
    pub fn finish(&mut self, clean: bool, out: &mut BytesMut) -> Result<(), ChatError> {
        let mut sink = Through {
            encoder: self.encoder.as_mut(),
            usage: &mut self.usage,
            failure: &mut self.failure,
            out,
        };
        self.decoder.finish(clean, &mut sink)?;
        if self.failure.is_none() {
            self.encoder.finish(out);
        }
        Ok(())
    }

    /// The error the vendor reported in-band (already encoded for the
    /// client), if any: the answer failed.
    pub fn failure(&self) -> Option<&ChatError> {
        self.failure.as_ref()
    }

    /// The stream is cut by the gateway: the encoder's own error event, if
    /// its format needs the stream's state (see [`StreamEncoder::fail`]).
    pub fn fail(&mut self, err: &ChatError) -> Option<Bytes> {
        let mut out = BytesMut::new();
        self.encoder.fail(err, &mut out).then(|| out.freeze())
    }

    /// The usage the vendor reported so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }
}
