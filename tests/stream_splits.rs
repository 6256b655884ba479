//! Stream translation is independent of how the bytes arrive: each vendor
//! fixture (tests/fixtures/, shaped on the vendors' documented sequences)
//! is fed whole and then split at every byte offset, through the SSE parser
//! and the translator the proxy uses, and must give the same events.

use llm_orchestrator::config::ProviderKind;
use llm_orchestrator::protocol::sse::SseParser;
use llm_orchestrator::providers::{vendor, ClientApi};
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
fn run(kind: ProviderKind, client: ClientApi, chunks: &[&[u8]]) -> Vec<(String, Value)> {
    let mut parser = SseParser::default();
    let mut translator = vendor(kind).stream(client, "client-model", true);
    let mut out = bytes::BytesMut::new();
    for chunk in chunks {
        for ev in parser.push(chunk) {
            translator.push(&ev, &mut out).expect("translates");
        }
    }
    if let Some(ev) = parser.finish() {
        translator.push(&ev, &mut out).expect("translates");
    }
    translator.finish(true, &mut out).expect("ends cleanly");
    let mut events = Vec::new();
    let mut client_parser = SseParser::default();
    {
        for ev in client_parser.push(&out) {
            let mut v: Value =
                serde_json::from_str(&ev.data).unwrap_or(Value::String(ev.data.clone()));
            if let Some(o) = v.as_object_mut() {
                o.remove("created");
                o.remove("id");
                if let Some(m) = o.get_mut("message").and_then(Value::as_object_mut) {
                    m.remove("id");
                }
            }
            events.push((ev.event, v));
        }
    }
    events
}

fn every_split(kind: ProviderKind, client: ClientApi, name: &str) -> Vec<(String, Value)> {
    let bytes = fixture(name);
    let whole = run(kind, client, &[&bytes]);
    assert!(whole.len() >= 3, "{name}: too few events: {whole:?}");
    for cut in 1..bytes.len() {
        let split = run(kind, client, &[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(
            split, whole,
            "{name} -> {client:?}: different output when split at byte {cut}"
        );
    }
    // Byte by byte, the harshest split.
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(run(kind, client, &singles), whole, "{name}: byte-by-byte");
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
    let events = every_split(
        ProviderKind::Anthropic,
        ClientApi::OpenAi,
        "anthropic_tool_stream.sse",
    );
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
        ProviderKind::Anthropic,
        ClientApi::OpenAi,
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
    let events = every_split(ProviderKind::Gemini, ClientApi::OpenAi, "gemini_stream.sse");
    assert_eq!(
        serde_json::from_str::<Value>(&tool_arguments(&events)).ok(),
        Some(serde_json::json!({"location": "Paris"}))
    );
    let anthropic = every_split(
        ProviderKind::Gemini,
        ClientApi::Anthropic,
        "gemini_stream.sse",
    );
    assert_eq!(
        anthropic.first().map(|e| e.0.as_str()),
        Some("message_start")
    );
    assert_eq!(anthropic.last().map(|e| e.0.as_str()), Some("message_stop"));
}

#[test]
fn openai_tool_stream_to_anthropic_at_every_split() {
    let events = every_split(
        ProviderKind::OpenAi,
        ClientApi::Anthropic,
        "openai_tool_stream.sse",
    );
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
