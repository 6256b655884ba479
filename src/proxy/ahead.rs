//! A translated stream's state, begun before the answer is committed: the
//! failover check translates the vendor's first read (`check_answer`), so
//! the translation's own decode tells garbage or an in-band vendor error
//! from an answer, and each event is parsed once; the relay goes on with
//! the same state. (`framing` checks relayed, same-format streams.)

use crate::protocol::chat::Translation;
use crate::protocol::sse::SseParser;
use bytes::BytesMut;

pub struct Ahead {
    pub parser: SseParser,
    pub tr: Translation,
    /// Translated output not yet written to the client.
    pub out: BytesMut,
}

impl Ahead {
    pub fn new(tr: Translation) -> Box<Ahead> {
        Box::new(Ahead {
            parser: SseParser::default(),
            tr,
            out: BytesMut::new(),
        })
    }

    /// The first read, translated. `Err` says why the answer is not one
    /// (undecodable, or the vendor's error event): the caller fails over.
    pub fn first(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.out.reserve(bytes.len() * 2 + 512);
        match feed(&mut self.parser, &mut self.tr, bytes, &mut self.out) {
            None => Ok(()),
            Some(Cut::Broken(why) | Cut::Reported(why)) => Err(why),
        }
    }
}

/// How a translated stream ended early.
pub enum Cut {
    /// The upstream failed or sent what cannot be decoded: the client gets
    /// our in-band error event.
    Broken(String),
    /// The vendor reported an error in-band: already encoded for the client
    /// by the translation, so nothing more is written.
    Reported(String),
}

/// One upstream read through the SSE parser into the translation; the first
/// event it cannot decode stops the read.
pub fn feed(
    parser: &mut SseParser,
    tr: &mut Translation,
    chunk: &[u8],
    out: &mut BytesMut,
) -> Option<Cut> {
    let mut broken = None;
    parser.push_each(chunk, |event, data| match tr.push(event, data, out) {
        Ok(()) => tr.failure().is_none(),
        Err(e) => {
            broken = Some(e);
            false
        }
    });
    match (broken, tr.failure()) {
        (Some(e), _) => Some(Cut::Broken(format!(
            "the vendor sent a stream event the gateway cannot translate: {e}"
        ))),
        (None, Some(e)) => Some(Cut::Reported(format!(
            "the vendor reported an error mid-stream: {e}"
        ))),
        (None, None) => None,
    }
}
