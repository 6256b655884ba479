use super::*;
use crate::protocol::chat::{
    Block, Delta, Event, Finish, MediaSource, Part, ReasoningConfig, ResponseFormat, Signature,
    ToolChoice, Usage,
};
use bytes::BytesMut;
use serde_json::{json, Value};
use std::borrow::Cow;

fn decode(v: &Value) -> Request<'static> {
    let body: &'static [u8] = Box::leak(serde_json::to_vec(v).unwrap().into_boxed_slice());
    GeminiNative::SSE.decode_request(body).unwrap()
}

#[test]
fn camel_and_snake_case_requests_decode_alike() {
    let camel = json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}]},
            {"role": "model", "parts": [
                {"text": "hm", "thought": true},
                {"text": "", "thought": true, "thoughtSignature": "c2lnX001"},
                {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "c2lnX002"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"error": "boom"}}}]},
        ],
        "generationConfig": {"maxOutputTokens": 9, "topK": 3.0, "stopSequences": ["X"],
            "responseMimeType": "application/json",
            "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": true}},
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}}]},
                  {"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    });
    let snake = json!({
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}, {"inline_data": {"mime_type": "image/png", "data": "iVBOR"}}]},
            {"role": "model", "parts": [
                {"text": "hm", "thought": true},
                {"text": "", "thought": true, "thought_signature": "c2lnX001"},
                {"function_call": {"name": "f", "args": {"a": 1}}, "thought_signature": "c2lnX002"}]},
            {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"error": "boom"}}}]},
        ],
        "generation_config": {"max_output_tokens": 9, "top_k": 3, "stop_sequences": ["X"],
            "response_mime_type": "application/json",
            "thinking_config": {"thinking_budget": -1, "include_thoughts": true}},
        "tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}}]},
                  {"google_search": {}}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    });
    for v in [camel, snake] {
        let r = decode(&v);
        assert!(matches!(&r.system[..], [Part::Text(t)] if t.text == "Be brief."));
        assert_eq!(r.turns.len(), 3);
        assert!(
            matches!(&r.turns[0].parts[1], Part::Media(m) if matches!(&m.source, MediaSource::Base64 { data } if data == "iVBOR"))
        );
        // The split thought merged, signed by the part after it.
        let Part::Reasoning(th) = &r.turns[1].parts[0] else {
            panic!("{:?}", r.turns[1].parts)
        };
        assert_eq!(th.text, "hm");
        assert_eq!(
            th.signature.as_ref().map(|s| (s.family, &*s.value)),
            Some((Family::Gemini, "c2lnX001"))
        );
        let Part::ToolCall(c) = &r.turns[1].parts[1] else {
            panic!()
        };
        assert_eq!(
            (&*c.name, &*c.arguments, &*c.id),
            ("f", r#"{"a":1}"#, "call_0_f")
        );
        assert_eq!(c.signature.as_ref().map(|s| &*s.value), Some("c2lnX002"));
        let Part::ToolResult(res) = &r.turns[2].parts[0] else {
            panic!()
        };
        assert_eq!(&*res.call_id, "call_0_f", "paired with the call by name");
        assert!(res.is_error);
        assert_eq!(r.max_tokens, Some(9));
        assert_eq!(r.sampling.top_k, Some(3));
        assert_eq!(r.sampling.stop, vec![Cow::Borrowed("X")]);
        assert!(matches!(
            r.response_format,
            Some(ResponseFormat::JsonObject)
        ));
        assert_eq!(r.reasoning, Some(ReasoningConfig::Dynamic));
        assert_eq!(r.tools.len(), 1, "googleSearch is not a function");
        let params = r.tools[0].parameters.as_ref().unwrap().get();
        assert_eq!(
            params,
            r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#
        );
        assert_eq!(r.tool_choice, Some(ToolChoice::Tool(Cow::Borrowed("f"))));
        assert_eq!(r.extra.origin, Family::Gemini);
        let extra: Vec<&str> = r.extra.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert!(
            extra == ["safetySettings"] || extra == ["safety_settings"],
            "{extra:?}"
        );
    }
}

#[test]
fn bad_requests_name_the_field() {
    let body = br#"{"contents":[{"role":"robot","parts":[{"text":"x"}]}]}"#;
    let e = GeminiNative::SSE.decode_request(body).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("contents[0].role"));
    let body =
        br#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":2}}"#;
    let e = GeminiNative::SSE.decode_request(body).unwrap_err();
    assert_eq!(e.param.as_deref(), Some("generationConfig.candidateCount"));
    assert_eq!(e.status, 400);
    assert!(GeminiNative::SSE.decode_request(b"[]").is_err());
    assert!(GeminiNative::SSE
        .decode_request(br#"{"contents":[]}"#)
        .is_err());
}

#[test]
fn other_vendors_signatures_round_trip_as_base64() {
    let sig = Signature::new(Family::Anthropic, Cow::Borrowed("EqQBCgIYAhIM+/sig=="));
    let wire = signature::encode_signature(&sig, false).into_owned();
    assert!(wire.starts_with("bGxtbz"), "{wire}");
    assert_eq!(wire.len() % 4, 0);
    // Google's SDK sends bytes back URL-safe.
    let back = signature::decode_signature(Cow::Owned(wire.replace('+', "-").replace('/', "_")));
    assert_eq!(
        (back.family, &*back.value),
        (Family::Anthropic, "EqQBCgIYAhIM+/sig==")
    );
    let gemini = signature::decode_signature(Cow::Borrowed("c2lnX001"));
    assert_eq!(
        (gemini.family, &*gemini.value),
        (Family::Gemini, "c2lnX001")
    );
}

fn stream(array: bool) -> String {
    let ingress = if array {
        GeminiNative::ARRAY
    } else {
        GeminiNative::SSE
    };
    let mut enc = ingress.stream_encoder("m", true);
    let mut out = BytesMut::new();
    let sig = Signature::new(Family::Gemini, Cow::Borrowed("c2lnX001"));
    for ev in [
        Event::Start {
            id: "r1".into(),
            model: "up".into(),
        },
        Event::BlockStart {
            index: 0,
            block: Block::Text,
        },
        Event::Delta {
            index: 0,
            delta: Delta::Text("Hel".into()),
        },
        Event::Delta {
            index: 0,
            delta: Delta::Text("lo".into()),
        },
        Event::BlockStop { index: 0 },
        Event::BlockStart {
            index: 1,
            block: Block::ToolCall {
                id: "c1".into(),
                name: "f".into(),
                kind: Default::default(),
            },
        },
        Event::Delta {
            index: 1,
            delta: Delta::Signature(sig),
        },
        Event::Delta {
            index: 1,
            delta: Delta::ToolArguments("{\"a\":".into()),
        },
        Event::Delta {
            index: 1,
            delta: Delta::ToolArguments("1}".into()),
        },
        Event::BlockStop { index: 1 },
        Event::Usage(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            ..Usage::default()
        }),
        Event::Stop {
            finish: Finish::ToolCalls,
        },
    ] {
        enc.event(&ev, &mut out);
    }
    enc.finish(&mut out);
    String::from_utf8(out.to_vec()).unwrap()
}

#[test]
fn streams_are_framed_as_sse_or_as_googles_json_array() {
    let sse = stream(false);
    let chunks: Vec<Value> = (sse.split("\r\n\r\n").filter(|e| !e.is_empty()))
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let array = stream(true);
    assert!(
        array.starts_with("[{") && array.ends_with("}]") && array.contains("},\r\n{"),
        "{array}"
    );
    let parsed: Vec<Value> = serde_json::from_str(&array).unwrap();
    assert_eq!(parsed, chunks);
    assert_eq!(chunks.len(), 4);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["text"],
        "Hel"
    );
    assert_eq!(chunks[0]["responseId"], "r1");
    assert_eq!(chunks[0]["modelVersion"], "m");
    assert_eq!(
        chunks[2]["candidates"][0]["content"]["parts"][0],
        json!({"functionCall": {"id": "c1", "name": "f", "args": {"a": 1}}, "thoughtSignature": "c2lnX001"})
    );
    assert!(chunks[2]["usageMetadata"].is_null());
    let last = &chunks[3];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 7})
    );
}

#[test]
fn errors_are_googles() {
    let err = crate::protocol::chat::ChatError::new(
        crate::protocol::chat::ErrorKind::RateLimited,
        429,
        "slow down",
    );
    let body: Value = serde_json::from_slice(&GeminiNative::SSE.encode_error(&err)).unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
    );
    let inband = GeminiNative::ARRAY.stream_error(&err);
    assert!(inband.starts_with(b",\r\n{\"error\"") && inband.ends_with(b"]"));
    let inband = GeminiNative::SSE.stream_error(&err);
    assert!(inband.starts_with(b"data: {\"error\"") && inband.ends_with(b"\r\n\r\n"));
}

#[test]
fn text_chunks_are_json_with_model_and_id() {
    use crate::protocol::chat::StreamEncoder;
    let mut enc = encode::Encoder::new("m\"1", false);
    let mut out = BytesMut::new();
    let start = Event::Start {
        id: "r\\1 é".into(),
        model: "up".into(),
    };
    enc.event(&start, &mut out);
    let t = "a\"b\\c\nd\u{1}é 日本";
    enc.event(
        &Event::Delta {
            index: 0,
            delta: Delta::Text(t.into()),
        },
        &mut out,
    );
    let text = std::str::from_utf8(&out).unwrap();
    let v: Value = serde_json::from_str(text.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], t);
    assert_eq!(
        (v["modelVersion"].as_str(), v["responseId"].as_str()),
        (Some("m\"1"), Some("r\\1 é"))
    );
}

#[test]
#[rustfmt::skip] // a table: one case a line
fn bad_requests_name_the_field_or_say_the_json_is_broken() {
    // (body, the field named, how the message starts); broken JSON, inside a field or not, names none.
    let cases: &[(&[u8], Option<&str>, &str)] = &[
        (br#"{"contents":"nope"}"#, Some("contents"), "invalid type: string \"nope\""),
        (br#"{"contents":[{"parts":[{"text":"Hi"}]}],"generation_config":{"temperature":"hot"}}"#, Some("generation_config"), "invalid type"),
        (br#"{"contents":[{"parts":[{"text":"Hi"}"#, None, "Invalid JSON payload received."),
        (b"[1,2]", None, "Invalid JSON payload received."),
        (b"{\"contents\":[}", None, "Invalid JSON payload received."),
    ];
    for (body, param, start) in cases {
        let e = GeminiNative::SSE.decode_request(body).map(|_| ()).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, *param), "{}", e.message);
        let positioned = param.is_some() && e.message.contains(" at line ");
        assert!(e.message.starts_with(start) && !e.message.contains('\u{1}') && !positioned, "{}", e.message);
    }
    // Unknown fields are kept in order; the model in the body is dropped.
    let r = decode(&json!({"labels": {"a": "b"}, "model": "x", "contents": [{"parts": [{"text": "Hi"}]}], "cachedContent": "c/1"}));
    let extra: Vec<&str> = r.extra.fields.iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(extra, ["labels", "cachedContent"]);
}
