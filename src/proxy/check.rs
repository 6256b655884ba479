//! Before an answer is committed to the client: is it the vendor's format
//! at all? (`framing` has the pure checks; this reads far enough to apply
//! them.)

use super::upstream::Committed;
use bytes::{Bytes, BytesMut};
use tokio::time::{timeout_at, Instant};

/// Largest whole answer held back to check that it is JSON before anything
/// reaches the client; a larger one is checked as far as this and then
/// streamed.
const CHECK_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// Most stream bytes read ahead looking for the first complete event.
const CHECK_EVENT_LIMIT: usize = 256 * 1024;

/// Before an answer is committed to the client: is it the vendor's
/// format? Reads a whole answer (up to [`CHECK_BODY_LIMIT`]) or a stream up
/// to its first complete event, into `c.first`, and checks it (see
/// `framing`). `Err` says why the answer is garbage or the vendor's error:
/// the caller fails over as for a 5xx.
///
/// `ahead`: a stream the relay translates. Its first read is translated
/// instead of walked by `framing` (the decode checks the same and more),
/// and moves out of `c.first` into the translation's output.
///
/// `whole`: how a whole answer the relay translates is translated. When it
/// arrives whole it is translated here instead of walked by `framing`
/// (into `c.translated`); one too large to hold is checked as far as held.
pub(super) async fn check_answer(
    c: &mut Committed,
    deadline: Instant,
    stats: &crate::metrics::EdgeStats,
    ahead: Option<&mut super::ahead::Ahead>,
    whole: Option<&Whole<'_>>,
) -> Result<(), String> {
    if c.header
        .headers
        .get("content-type")
        .is_some_and(|t| starts_with_ci(t, b"text/html"))
    {
        let body = c.first.as_deref().unwrap_or_default();
        return Err(format!(
            "answered 200 with an HTML page instead of the vendor's format: {}",
            super::framing::preview(body)
        ));
    }
    let sse = is_sse(c);
    // What is held back here counts against the gateway-wide budget for
    // buffered answers while it is held; when the budget is spent, the
    // answer is checked as far as it has arrived, like one too large to hold.
    let mut held = super::edge::Buffered::new(stats);
    let mut budget_spent = !held.try_grow(c.first.as_ref().map_or(0, Bytes::len));
    loop {
        let have: &[u8] = c.first.as_deref().unwrap_or_default();
        if sse {
            let checked = match crate::protocol::sse::last_boundary(have) {
                Some(end) => Some(&have[..end]),
                None if c.done => Some(have),
                None if have.len() > CHECK_EVENT_LIMIT || budget_spent => return Ok(()),
                None => None,
            };
            if let Some(events) = checked {
                return match ahead {
                    Some(a) => {
                        // Everything read so far: a partial last event
                        // waits in the translation's parser.
                        let first = c.first.take().unwrap_or_default();
                        a.first(&first)
                    }
                    None => {
                        c.checked = events.len();
                        super::framing::check_events(events).map_err(|f| f.why)
                    }
                };
            }
        } else if c.done {
            match whole {
                // Held beyond the budget: the relay refuses it (503) as it
                // does an answer read on after the check.
                Some(_) if budget_spent => {}
                Some(translate) => {
                    c.translated = Some(translate(have)?);
                    // Only the translation is sent: the vendor's bytes go.
                    c.first = None;
                }
                None => {
                    c.usage_at = Some(super::framing::check_body(have).map_err(|f| json_fault(&f))?)
                }
            }
            return Ok(());
        } else if have.len() > CHECK_BODY_LIMIT || budget_spent {
            return super::framing::check_body_prefix(have).map_err(|f| json_fault(&f));
        }
        let more = match timeout_at(deadline, c.session.read_response_body()).await {
            Ok(Ok(more)) => more,
            Ok(Err(e)) => return Err(format!("the vendor connection failed mid-answer: {e}")),
            Err(_) => return Err("the answer exceeded the provider's total timeout".to_string()),
        };
        match more {
            Some(more) => {
                budget_spent |= !held.try_grow(more.len());
                c.done = c.session.response_done();
                c.first = Some(match c.first.take() {
                    Some(f) if !f.is_empty() => {
                        let mut joined = BytesMut::with_capacity(f.len() + more.len());
                        joined.extend_from_slice(&f);
                        joined.extend_from_slice(&more);
                        joined.freeze()
                    }
                    _ => more,
                });
            }
            None => c.done = true,
        }
    }
}

/// A whole vendor answer into the client's format, and its usage (`Err`:
/// why it cannot be).
pub(super) type Whole<'a> =
    dyn Fn(&[u8]) -> Result<(Bytes, crate::protocol::chat::Usage), String> + Sync + 'a;

fn json_fault(f: &super::framing::JsonFault) -> String {
    match f {
        super::framing::JsonFault::VendorError => {
            "answered 200 with an error object instead of an answer".to_string()
        }
        super::framing::JsonFault::Malformed(why) => {
            format!("answered 200 with a body that is not the vendor's JSON: {why}")
        }
    }
}

pub(super) fn is_sse(c: &Committed) -> bool {
    c.header
        .headers
        .get("content-type")
        .is_some_and(|v| starts_with_ci(v, b"text/event-stream"))
}

/// A header value that starts (after blanks) with `prefix`, a lower-case
/// media type, in any case (media types are case-insensitive, RFC 9110
/// §8.3.1).
fn starts_with_ci(value: &[u8], prefix: &[u8]) -> bool {
    let v = value.trim_ascii_start();
    v.len() >= prefix.len() && v[..prefix.len()].eq_ignore_ascii_case(prefix)
}
