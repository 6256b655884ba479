//! Stream translation is independent of how the bytes arrive: each vendor
//! fixture (tests/fixtures/, shaped on the vendors' documented sequences)
//! is fed whole and then split at every byte offset, through the SSE parser
//! and the translator the proxy uses, and must give the same events. The
//! proxy's path (`providers::feed`: whole events in the vendor's exact form
//! go straight to the translator) must also give what the plain
//! event-by-event parse gives.

use llm_orchestrator::config::ProviderKind;
use llm_orchestrator::protocol::sse::SseParser;
use llm_orchestrator::providers::{feed, vendor, ClientApi};
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
    run_with(kind, client, chunks, true)
}

/// `proxy_path`: through `providers::feed`, as the relay does; otherwise
/// every event through the parser and `StreamTranslate::push`.
fn run_with(
    kind: ProviderKind,
    client: ClientApi,
    chunks: &[&[u8]],
    proxy_path: bool,
) -> Vec<(String, Value)> {
    let mut parser = SseParser::default();
    let mut translator = vendor(kind).stream(client, "client-model", true);
    let mut out = bytes::BytesMut::new();
    for chunk in chunks {
        if proxy_path {
            feed(&mut parser, translator.as_mut(), chunk, &mut out).expect("translates");
        } else {
            for ev in parser.push(chunk) {
                translator.push(&ev, &mut out).expect("translates");
            }
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
    assert_eq!(
        run_with(kind, client, &[&bytes], false),
        whole,
        "{name} -> {client:?}: the proxy's path differs from the plain parse"
    );
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
    let events = every_split(
        ProviderKind::Anthropic,
        ClientApi::OpenAi,
        "anthropic_text_stream.sse",
    );
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
    let events = every_split(
        ProviderKind::OpenAi,
        ClientApi::Anthropic,
        "openai_text_stream.sse",
    );
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

/// The exact-form events of the wire fixtures are taken whole by the
/// translators (so the comparisons above cover that path), and the rest is
/// left to the parser.
#[test]
fn exact_form_events_are_taken_whole() {
    for (kind, client, name, first) in [
        (
            ProviderKind::Anthropic,
            ClientApi::OpenAi,
            "anthropic_text_stream.sse",
            "event: content_block_delta",
        ),
        (
            ProviderKind::OpenAi,
            ClientApi::Anthropic,
            "openai_text_stream.sse",
            "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion.chunk\",\"created\":1741569952,\"model\":\"gpt-4o-2024-08-06\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_eb9dce56a8\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}",
        ),
    ] {
        let text = String::from_utf8(fixture(name)).expect("UTF-8");
        let at = text.find(first).expect("a text delta");
        let mut translator = vendor(kind).stream(client, "client-model", false);
        let mut out = bytes::BytesMut::new();
        // The events before (message start, block start) through the parser.
        let mut parser = SseParser::default();
        feed(&mut parser, translator.as_mut(), &text.as_bytes()[..at], &mut out).expect("start");
        let taken = translator.push_raw(&text[at..], &mut out);
        let expected = if kind == ProviderKind::Anthropic {
            // The five text deltas in a row (the sixth follows a comment).
            text[at..].match_indices("\n\n").nth(4).map(|(i, _)| i + 2)
        } else {
            // Every chunk the typed path covers, through `[DONE]`.
            Some(text.len() - at)
        };
        assert_eq!(Some(taken), expected, "{name}");
        // Anything else is declined.
        assert_eq!(translator.push_raw(": comment\n\n", &mut out), 0, "{name}");
    }
    // Events as the documentation prints them (spaces after colons) are
    // not the wire form: left to the parser.
    let text = String::from_utf8(fixture("anthropic_thinking_stream.sse")).expect("UTF-8");
    let mut translator = vendor(ProviderKind::Anthropic).stream(ClientApi::OpenAi, "m", false);
    assert_eq!(translator.push_raw(&text, &mut bytes::BytesMut::new()), 0);
    // A tool-call chunk needs the general path: the OpenAI stream stops
    // before it.
    let text = String::from_utf8(fixture("openai_tool_stream.sse")).expect("UTF-8");
    let mut translator = vendor(ProviderKind::OpenAi).stream(ClientApi::Anthropic, "m", false);
    assert_eq!(translator.push_raw(&text, &mut bytes::BytesMut::new()), 0);
    // The wire form's message start, block start and ping are taken too.
    let text = String::from_utf8(fixture("anthropic_text_stream.sse")).expect("UTF-8");
    let mut translator = vendor(ProviderKind::Anthropic).stream(ClientApi::OpenAi, "m", false);
    let taken = translator.push_raw(&text, &mut bytes::BytesMut::new());
    assert_eq!(&text[taken..taken + 2], ": ", "stops at the comment");
}
