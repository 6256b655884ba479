//! Stream translation is independent of how the bytes arrive: each vendor
//! fixture (tests/fixtures/, shaped on the vendors' documented sequences)
//! is fed whole and then split at every byte offset, through the SSE parser
//! and the decoder/encoder pair the proxy uses (`chat::Translation`), and
//! must give the same events.

use llm_orchestrator::protocol::chat::Translation;
use llm_orchestrator::protocol::sse::SseParser;
use llm_orchestrator::providers::{Vendor, ANTHROPIC, GEMINI, OPENAI};
use llm_orchestrator::proxy::ClientApi;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

/// Translate `chunks` and return the client's events, with per-run fields
/// (`created`, generated ids) removed so two runs compare equal.
fn run(vendor: &Vendor, client: ClientApi, chunks: &[&[u8]]) -> Vec<(String, Value)> {
    let mut parser = SseParser::default();
    let mut tr = Translation::new(
        vendor.egress.stream_decoder(),
        client.ingress().stream_encoder("client-model", true),
    );
    let mut out = bytes::BytesMut::new();
    for chunk in chunks {
        for ev in parser.push(chunk) {
            tr.push(&ev.event, &ev.data, &mut out).expect("translates");
        }
    }
    if let Some(ev) = parser.finish() {
        tr.push(&ev.event, &ev.data, &mut out).expect("translates");
    }
    tr.finish(true, &mut out).expect("ends cleanly");
    assert!(tr.failure().is_none(), "{:?}", tr.failure());
    let mut events = Vec::new();
    let mut client_parser = SseParser::default();
    for ev in client_parser.push(&out) {
        let mut v: Value = serde_json::from_str(&ev.data).unwrap_or(Value::String(ev.data.clone()));
        if let Some(o) = v.as_object_mut() {
            o.remove("created");
            o.remove("id");
            if let Some(m) = o.get_mut("message").and_then(Value::as_object_mut) {
                m.remove("id");
            }
        }
        events.push((ev.event, v));
    }
    events
}

fn every_split(vendor: &Vendor, client: ClientApi, name: &str) -> Vec<(String, Value)> {
    let bytes = fixture(name);
    let whole = run(vendor, client, &[&bytes]);
    assert!(whole.len() >= 3, "{name}: too few events: {whole:?}");
    for cut in 1..bytes.len() {
        let split = run(vendor, client, &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(
            split, whole,
            "{name} -> {client:?}: different output when split at byte {cut}"
        );
    }
    // Byte by byte, the harshest split.
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run(vendor, client, &singles), whole, "{name}: byte-by-byte");
    whole
}

fn tool_arguments(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, v)| {
            v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .collect()
}

#[test]
fn anthropic_tool_stream_to_openai_at_every_split() {
    let events = every_split(&ANTHROPIC, ClientApi::OPENAI, "anthropic_tool_stream.sse");
    let args: Value = serde_json::from_str(&tool_arguments(&events)).expect("arguments are JSON");
    assert_eq!(
        args,
        serde_json::json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    assert_eq!(
        events.last().map(|e| &e.1),
        Some(&Value::String("[DONE]".into()))
    );
}

#[test]
fn anthropic_thinking_stream_to_openai_at_every_split() {
    let events = every_split(
        &ANTHROPIC,
        ClientApi::OPENAI,
        "anthropic_thinking_stream.sse",
    );
    let reasoning: String = events
        .iter()
        .filter_map(|(_, v)| v["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert!(reasoning.contains("Euclidean"));
    assert!(
        !format!("{events:?}").contains("EqQBCgIY"),
        "signatures are dropped"
    );
}

#[test]
fn gemini_stream_to_openai_and_anthropic_at_every_split() {
    let events = every_split(&GEMINI, ClientApi::OPENAI, "gemini_stream.sse");
    assert_eq!(
        serde_json::from_str::<Value>(&tool_arguments(&events)).ok(),
        Some(serde_json::json!({"location": "Paris"}))
    );
    let anthropic = every_split(&GEMINI, ClientApi::ANTHROPIC, "gemini_stream.sse");
    assert_eq!(
        anthropic.first().map(|e| e.0.as_str()),
        Some("message_start")
    );
    assert_eq!(anthropic.last().map(|e| e.0.as_str()), Some("message_stop"));
}

#[test]
fn openai_tool_stream_to_anthropic_at_every_split() {
    let events = every_split(&OPENAI, ClientApi::ANTHROPIC, "openai_tool_stream.sse");
    let json: String = events
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json).ok(),
        Some(serde_json::json!({"location": "Paris"}))
    );
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let delta = events
        .iter()
        .find(|e| e.0 == "message_delta")
        .expect("message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta.1["usage"]["output_tokens"], 17,
        "the usage chunk after finish_reason reaches message_delta"
    );
}

/// The text of the OpenAI chunks' content deltas, joined.
fn openai_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, v)| v["choices"][0]["delta"]["content"].as_str())
        .collect()
}

const FIXTURE_TEXT: &str =
    "Hello! Here is a \"quoted\" word, a backslash \\ and a\nnew line; some UTF-8: é 日本語 🦀.";

#[test]
fn anthropic_text_stream_as_sent_on_the_wire_at_every_split() {
    let events = every_split(&ANTHROPIC, ClientApi::OPENAI, "anthropic_text_stream.sse");
    assert_eq!(openai_text(&events), format!("{FIXTURE_TEXT} Done."));
    let finish: Vec<&Value> = events
        .iter()
        .filter_map(|(_, v)| v["choices"][0].get("finish_reason"))
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, vec![&Value::String("stop".into())]);
    let usage = &events[events.len() - 2].1["usage"];
    assert_eq!(usage["prompt_tokens"], 33);
    assert_eq!(usage["completion_tokens"], 15);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 8);
}

#[test]
fn openai_text_stream_as_sent_on_the_wire_at_every_split() {
    let events = every_split(&OPENAI, ClientApi::ANTHROPIC, "openai_text_stream.sse");
    let text: String = events
        .iter()
        .filter_map(|(_, v)| v["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, FIXTURE_TEXT);
    let names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let delta = &events[8].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 10);
}

/// The client's bytes for `chunks`, whole (Gemini-native output carries no
/// per-run field, so runs compare byte for byte).
fn translated(vendor: &Vendor, client: ClientApi, chunks: &[&[u8]]) -> Vec<u8> {
    let mut parser = SseParser::default();
    let mut tr = Translation::new(
        vendor.egress.stream_decoder(),
        client.ingress().stream_encoder("client-model", true),
    );
    let mut out = bytes::BytesMut::new();
    for chunk in chunks {
        for ev in parser.push(chunk) {
            tr.push(&ev.event, &ev.data, &mut out).expect("translates");
        }
    }
    if let Some(ev) = parser.finish() {
        tr.push(&ev.event, &ev.data, &mut out).expect("translates");
    }
    tr.finish(true, &mut out).expect("ends cleanly");
    assert!(tr.failure().is_none(), "{:?}", tr.failure());
    out.to_vec()
}

/// Gemini-native chunks (SSE `data:` events, or the JSON array), after
/// checking that every split of the fixture gives the same bytes.
fn gemini_chunks_at_every_split(vendor: &Vendor, client: ClientApi, name: &str) -> Vec<Value> {
    let bytes = fixture(name);
    let whole = translated(vendor, client, &[&bytes]);
    for cut in 1..bytes.len() {
        let split = translated(vendor, client, &[&bytes[..cut], &bytes[cut..]]);
        assert!(
            split == whole,
            "{name} -> {client:?}: different output when split at byte {cut}"
        );
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert!(
        translated(vendor, client, &singles) == whole,
        "{name}: byte-by-byte"
    );
    let text = String::from_utf8(whole).expect("UTF-8");
    if client.reframes_streams() {
        serde_json::from_str(&text).expect("one JSON array")
    } else {
        (text.split("\r\n\r\n").filter(|e| !e.is_empty()))
            .map(|e| {
                serde_json::from_str(e.strip_prefix("data: ").expect("data event")).expect("JSON")
            })
            .collect()
    }
}

fn gemini_parts(chunks: &[Value]) -> Vec<&Value> {
    chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .collect()
}

#[test]
fn vendor_streams_to_gemini_native_clients_at_every_split() {
    let chunks = gemini_chunks_at_every_split(&OPENAI, ClientApi::GEMINI, "openai_tool_stream.sse");
    let calls: Vec<&Value> = gemini_parts(&chunks)
        .into_iter()
        .filter_map(|p| p.get("functionCall"))
        .collect();
    assert_eq!(calls.len(), 1, "a call arrives whole: {chunks:?}");
    assert_eq!(calls[0]["args"], serde_json::json!({"location": "Paris"}));
    let last = chunks.last().expect("chunks");
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 17);

    let chunks = gemini_chunks_at_every_split(
        &ANTHROPIC,
        ClientApi::GEMINI,
        "anthropic_thinking_stream.sse",
    );
    let parts = gemini_parts(&chunks);
    let thought: String = (parts.iter())
        .filter(|p| p["thought"] == true)
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert!(thought.contains("Euclidean"), "{thought}");
    assert!(
        parts.iter().any(|p| p["thoughtSignature"]
            .as_str()
            .is_some_and(|s| s.starts_with("bGxtbz"))),
        "the Anthropic signature travels in the codec: {parts:?}"
    );

    let chunks = gemini_chunks_at_every_split(
        &ANTHROPIC,
        ClientApi::GEMINI_ARRAY,
        "anthropic_text_stream.sse",
    );
    let text: String = (gemini_parts(&chunks).iter())
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(text, format!("{FIXTURE_TEXT} Done."));
    let usage = &chunks.last().expect("chunks")["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 33);
    assert_eq!(usage["cachedContentTokenCount"], 8);
}

/// Responses events with per-run fields (`id`, `item_id`, `created_at`:
/// generated when the vendor gives no id) removed at every depth.
fn without_run_fields(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for k in ["id", "item_id", "created_at"] {
                o.remove(k);
            }
            o.values_mut().for_each(without_run_fields);
        }
        Value::Array(a) => a.iter_mut().for_each(without_run_fields),
        _ => {}
    }
}

fn responses_run(vendor: &Vendor, chunks: &[&[u8]]) -> Vec<(String, Value)> {
    let mut events = run(vendor, ClientApi::RESPONSES, chunks);
    events.iter_mut().for_each(|(_, v)| without_run_fields(v));
    events
}

/// A vendor fixture to a Responses client, whole, split at every byte and
/// byte by byte; the event sequence numbers count up from 0.
fn responses_every_split(vendor: &Vendor, name: &str) -> Vec<(String, Value)> {
    let bytes = fixture(name);
    let whole = responses_run(vendor, &[&bytes]);
    for cut in 1..bytes.len() {
        let split = responses_run(vendor, &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(split, whole, "{name} -> responses: split at byte {cut}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(
        responses_run(vendor, &singles),
        whole,
        "{name}: byte-by-byte"
    );
    for (i, (name, v)) in whole.iter().enumerate() {
        assert_eq!(v["type"].as_str(), Some(name.as_str()));
        assert_eq!(v["sequence_number"], i);
    }
    assert_eq!(whole[0].0, "response.created");
    whole
}

#[test]
fn vendor_streams_to_responses_at_every_split() {
    let text = responses_every_split(&ANTHROPIC, "anthropic_text_stream.sse");
    let deltas: String = text
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .filter_map(|(_, v)| v["delta"].as_str())
        .collect();
    assert_eq!(deltas, format!("{FIXTURE_TEXT} Done."));
    let done = &text.last().expect("events").1;
    assert_eq!(done["type"], "response.completed");
    assert_eq!(done["response"]["usage"]["input_tokens"], 33);
    assert_eq!(
        done["response"]["usage"]["input_tokens_details"]["cached_tokens"],
        8
    );
    assert_eq!(
        done["response"]["output"][0]["content"][0]["text"],
        deltas.as_str()
    );

    for (vendor, name, want) in [
        (
            &ANTHROPIC,
            "anthropic_tool_stream.sse",
            serde_json::json!({"location": "San Francisco, CA", "unit": "fahrenheit"}),
        ),
        (
            &GEMINI,
            "gemini_stream.sse",
            serde_json::json!({"location": "Paris"}),
        ),
        (
            &OPENAI,
            "openai_tool_stream.sse",
            serde_json::json!({"location": "Paris"}),
        ),
    ] {
        let events = responses_every_split(vendor, name);
        let args: String = events
            .iter()
            .filter(|(n, _)| n == "response.function_call_arguments.delta")
            .filter_map(|(_, v)| v["delta"].as_str())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args).ok(),
            Some(want),
            "{name}"
        );
        assert_eq!(
            events.last().map(|e| e.0.as_str()),
            Some("response.completed"),
            "{name}"
        );
    }

    let thinking = responses_every_split(&ANTHROPIC, "anthropic_thinking_stream.sse");
    let summary: String = thinking
        .iter()
        .filter(|(n, _)| n == "response.reasoning_summary_text.delta")
        .filter_map(|(_, v)| v["delta"].as_str())
        .collect();
    assert!(summary.contains("Euclidean"), "{summary}");
    let out = &thinking.last().expect("events").1["response"]["output"];
    assert_eq!(out[0]["type"], "reasoning");
    assert!(
        out[0].get("encrypted_content").is_none(),
        "not asked for in `include`"
    );
}
