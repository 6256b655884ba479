use super::*;
use crate::protocol::chat::*;
use crate::protocol::chat::{Block, Delta, Event, Ingress, Translation, Turn};
use crate::protocol::ingress::openai::OpenAiChat as OpenAiClient;
use crate::protocol::sse::SseParser;
use bytes::BytesMut;
use serde_json::{json, Value};
use std::borrow::Cow;

fn encode(req: &Request<'_>) -> Value {
    let body = OpenAiChat
        .encode_request(req, "up-model", &VendorOptions::default())
        .expect("encodes");
    serde_json::from_slice(&body).expect("JSON")
}

fn leak(v: &Value) -> &'static [u8] {
    Box::leak(v.to_string().into_bytes().into_boxed_slice())
}

#[test]
fn an_openai_request_round_trips_with_an_edit() {
    // Already in the shape the encoder writes (one system message first,
    // tool messages after the calls), so only the edit may differ.
    let original = json!({
        "model": "up-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
                {"type": "file", "file": {"file_id": "file-1"}}
            ]},
            {"role": "assistant", "content": null, "reasoning_content": "hmm",
             "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"},
                 "extra_content": {"google": {"thought_signature": "SIG1"}}},
                {"id": "call_2", "type": "custom", "custom": {"name": "patch", "input": "*** Begin"}}
             ]},
            {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
            {"role": "tool", "content": "ok", "tool_call_id": "call_2"},
            {"role": "user", "content": "thanks"},
            {"role": "assistant", "content": "No.", "refusal": "can't"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}, "strict": true}},
            {"type": "custom", "custom": {"name": "patch", "format": {"type": "text"}}}
        ],
        "parallel_tool_calls": false,
        "tool_choice": {"type": "function", "function": {"name": "get"}},
        "temperature": 0.5, "top_p": 0.9, "top_k": 40, "seed": -3,
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "stop": ["END"],
        "max_completion_tokens": 300, "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": true}},
        "stream": true, "stream_options": {"include_usage": true}, "n": 1,
        "safety_identifier": "u-1", "logprobs": true, "metadata": {"k": "v"}
    });
    let mut req = OpenAiClient
        .decode_request(leak(&original))
        .expect("decodes");
    req.sampling.temperature = Some(0.2);
    let mut want = original.clone();
    want["temperature"] = json!(0.2);
    assert_eq!(encode(&req), want);
}

#[test]
fn encodes_another_familys_request() {
    // Built by the OpenAI ingress, then claimed by another family: what
    // only an OpenAI client may send back (cache markers, top_k, echoed
    // reasoning, extras) goes; a thinking budget is not sent.
    let body = json!({"model": "x", "messages": [
        {"role": "system", "content": "A"}, {"role": "system", "content": "B"},
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": "Calling.", "reasoning_content": "thought",
         "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": [{"type": "text", "text": "see"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QQ=="}}]},
        {"role": "user", "content": "next"}
    ], "tools": [{"type": "function", "function": {"name": "get"}, "cache_control": {"type": "ephemeral"}}],
       "tool_choice": "required", "top_k": 5, "max_tokens": 100, "stream": true, "user": "u", "service_tier": "flex"});
    let mut req = OpenAiClient.decode_request(leak(&body)).expect("decodes");
    req.extra.origin = Family::Anthropic;
    req.reasoning = Some(ReasoningConfig::Budget(2000));
    assert_eq!(
        encode(&req),
        json!({
            "model": "up-model",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Calling.",
                 "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
                {"role": "tool", "content": "see", "tool_call_id": "toolu_1"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QQ=="}},
                                             {"type": "text", "text": "next"}]}
            ],
            "tools": [{"type": "function", "function": {"name": "get"}}],
            "tool_choice": "required",
            "max_tokens": 100,
            "stream": true, "stream_options": {"include_usage": true}, "user": "u"
        })
    );
}

#[test]
#[rustfmt::skip]
fn what_cannot_be_expressed_is_a_400_naming_the_part() {
    let media = |kind, source| Part::Media(Media { kind, mime: None, source, name: None, detail: None, cache: None });
    let cases = [
        media(MediaKind::Document, MediaSource::FileId { family: Family::Anthropic, id: "file_a".into() }),
        media(MediaKind::Audio, MediaSource::Url("https://a/b.wav".into())),
        media(MediaKind::Document, MediaSource::Url("https://a/b.pdf".into())),
    ];
    for p in cases {
        let mut req = Request::new("m", Family::Anthropic);
        req.turns = vec![Turn { role: Role::User, parts: vec![Part::Text(Text::plain("x")), p] }];
        let e = OpenAiChat.encode_request(&req, "m", &VendorOptions::default()).expect_err("cannot");
        assert_eq!((e.status, e.param.as_deref()), (400, Some("messages[0].content[1]")));
    }
}

// ---------------------------------------------------------------- answers

#[test]
#[rustfmt::skip]
fn decodes_answers() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_700_000_000u64, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {
            "role": "assistant", "content": "Hi", "reasoning_content": "why", "refusal": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"},
                            "extra_content": {"google": {"thought_signature": "SIG"}}},
                           {"type": "custom", "custom": {"name": "patch", "input": "diff"}}]
        }, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
                  "prompt_tokens_details": {"cached_tokens": 64}, "completion_tokens_details": {"reasoning_tokens": 5}}
    });
    let a = OpenAiChat.decode_answer(leak(&body)).expect("answer");
    assert_eq!((a.id.as_ref(), a.model.as_ref(), a.created), ("chatcmpl-1", "gpt-4o", 1_700_000_000));
    assert_eq!(a.finish, Some(Finish::ToolCalls), "a stop after tool calls");
    let usage = Usage { prompt_tokens: 82, completion_tokens: 17, total_tokens: 99, cached_tokens: 64, cache_write_tokens: 0, reasoning_tokens: 5, ..Usage::default() };
    assert_eq!(a.usage, usage);
    assert!(matches!(&a.parts[0], Part::Reasoning(r) if r.text == "why"));
    assert!(matches!(&a.parts[1], Part::Text(t) if t.text == "Hi" && matches!(t.text, Cow::Borrowed(_))));
    assert!(matches!(&a.parts[2], Part::ToolCall(c) if c.arguments == "{\"a\":1}"
        && c.signature.as_ref().is_some_and(|s| s.family == Family::Gemini && s.value == "SIG")));
    assert!(matches!(&a.parts[3], Part::ToolCall(c) if c.kind == ToolKind::Custom && c.arguments == "diff" && !c.id.is_empty()));

    let cases = [
        (json!({"content": null, "reasoning": "vllm"}), "stop", "reasoning:vllm", Finish::Stop),
        (json!({"content": null, "refusal": "no"}), "stop", "refusal:no", Finish::Refusal),
        (json!({"content": [{"type": "text", "text": "parts"}]}), "length", "text:parts", Finish::Length),
        (json!({"content": "x"}), "content_filter", "text:x", Finish::ContentFilter),
        (json!({"content": "x"}), "eos", "text:x", Finish::Other("eos".into())),
    ];
    for (msg, word, first, finish) in cases {
        let usage = json!({"prompt_tokens": 3, "completion_tokens": 2, "prompt_cache_hit_tokens": 1});
        let a = OpenAiChat.decode_answer(leak(&json!({"choices": [{"message": msg, "finish_reason": word}], "usage": usage}))).expect("answer");
        let got = match &a.parts[0] {
            Part::Text(t) => format!("text:{}", t.text),
            Part::Reasoning(r) => format!("reasoning:{}", r.text),
            Part::Refusal(r) => format!("refusal:{r}"),
            _ => "other".into(),
        };
        assert_eq!((got.as_str(), a.finish), (first, Some(finish)));
        assert!(a.id.starts_with("chatcmpl-") && a.created > 0);
        assert_eq!((a.usage.total_tokens, a.usage.cached_tokens), (5, 1));
    }
    assert!(OpenAiChat.decode_answer(br#"{"choices": []}"#).is_err());
    assert!(OpenAiChat.decode_answer(b"<html>").is_err());
    let e = OpenAiChat.decode_answer(br#"{"error": {"message": "slow down", "type": "requests", "code": 429}}"#).expect_err("error");
    assert_eq!((e.status, e.kind, e.message.as_str()), (429, ErrorKind::RateLimited, "slow down"));
}

/// `status body => status kind code: message`, one case a line.
const ERRORS: &str = r#"
400 {"error":{"message":"too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}} => 400 ContextLength context_length_exceeded: too long
429 {"error":{"message":"quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}} => 429 RateLimited insufficient_quota: quota
401 {"error":"bad key"} => 401 Authentication -: bad key
503 <html>Service Unavailable</html> => 503 Overloaded -: <html>Service Unavailable</html>
500  => 500 Upstream -: upstream returned HTTP 500
200 {"message":"odd"} => 502 Upstream -: odd
"#;

#[test]
fn decodes_error_bodies() {
    for line in ERRORS.lines().filter(|l| !l.is_empty()) {
        let (status, rest) = line.split_once(' ').expect("case");
        let (body, want) = rest.split_once(" => ").expect("case");
        let e = OpenAiChat.decode_error(status.parse().expect("status"), body.as_bytes());
        let code = e.code.as_deref().unwrap_or("-");
        assert_eq!(
            format!("{} {:?} {code}: {}", e.status, e.kind, e.message),
            want
        );
    }
    let body = br#"{"error":{"message":"m","type":"invalid_request_error","param":"tools[0]"}}"#;
    let e = OpenAiChat.decode_error(400, body);
    assert_eq!(e.param.as_deref(), Some("tools[0]"));
    assert_eq!(e.vendor_type.as_deref(), Some("invalid_request_error"));
    let long = vec![b'x'; 5000];
    assert_eq!(OpenAiChat.decode_error(502, &long).message.len(), 500);
}

// ---------------------------------------------------------------- streams

fn summary(ev: &Event<'_>) -> String {
    match ev {
        Event::Start { id, model } => format!("start {id} {model}"),
        Event::BlockStart { index, block } => match block {
            Block::ToolCall { id, name, kind } => format!("+{index} call {id} {name} {kind:?}"),
            b => format!("+{index} {b:?}"),
        },
        Event::Delta { index, delta } => match delta {
            Delta::Text(t) | Delta::Reasoning(t) | Delta::ToolArguments(t) | Delta::Refusal(t) => {
                format!("{index} {t}")
            }
            Delta::Signature(s) | Delta::Redacted(s) => {
                format!("{index} sig {:?} {}", s.family, s.value)
            }
        },
        Event::BlockStop { index } => format!("-{index}"),
        Event::Usage(u) => format!(
            "usage {}/{}/{} cached {}",
            u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens
        ),
        Event::Stop { finish } => format!("stop {finish:?}"),
        Event::Error(e) => format!("error {} {}", e.status, e.message),
    }
}

/// The wire bytes through the SSE parser and a decoder, `chunks` being
/// the read boundaries.
fn decode_stream(chunks: &[&[u8]], clean: bool) -> (Vec<String>, Result<(), ChatError>) {
    let mut parser = SseParser::default();
    let mut dec = OpenAiChat.stream_decoder();
    let mut out = Vec::new();
    let mut sink = |ev: Event<'_>| out.push(summary(&ev));
    for c in chunks {
        for ev in parser.push(c) {
            dec.push(&ev.event, &ev.data, &mut sink).expect("decodes");
        }
    }
    let r = dec.finish(clean, &mut sink);
    (out, r)
}

const TEXT: &[u8] = include_bytes!("../../../../tests/fixtures/openai_text_stream.sse");
const TOOL: &[u8] = include_bytes!("../../../../tests/fixtures/openai_tool_stream.sse");

#[test]
fn decodes_recorded_streams() {
    let (text, r) = decode_stream(&[TEXT], true);
    assert!(r.is_ok());
    assert_eq!(
        text,
        [
            "start chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT gpt-4o-2024-08-06",
            "+0 Text",
            "0 Hello",
            "0 ! Here is a \"quoted\" word,",
            "0  a backslash \\ and a\nnew line;",
            "0  some UTF-8: é 日本語 🦀",
            "0 .",
            "-0",
            "usage 19/10/29 cached 0",
            "stop Stop",
        ]
    );
    let (tool, _) = decode_stream(&[TOOL], true);
    assert_eq!(
        tool,
        [
            "start chatcmpl-123 gpt-4o-mini",
            "+0 call call_abc get_weather Function",
            "0 {\"loca",
            "0 tion\": \"Paris\"}",
            "-0",
            "usage 82/17/99 cached 0",
            "stop ToolCalls",
        ]
    );
}

#[test]
fn streams_split_at_every_byte_decode_alike() {
    for fixture in [TEXT, TOOL] {
        let (whole, _) = decode_stream(&[fixture], true);
        for k in 1..fixture.len() {
            let (split, _) = decode_stream(&[&fixture[..k], &fixture[k..]], true);
            assert_eq!(split, whole, "split at {k}");
        }
    }
}

/// Every chunk the text-delta recogniser takes decodes into the events the
/// serde parse gives, on a fresh decoder and mid-answer.
#[test]
fn the_text_chunk_fast_path_reads_what_serde_reads() {
    let head = r#"{"id":"c\u0031","object":"chat.completion.chunk","created":17,"model":"m","#;
    let odd = [
        r#""choices":[{"index":0,"delta":{"content":"a\"b\u00e9\n"},"finish_reason":null}]}"#,
        r#""system_fingerprint":null,"choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#""choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"x":1}"#,
        r#""choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
        r#""choices":[{"index":1,"delta":{"content":"x"},"finish_reason":null}]}"#,
        r#""choices":[{"index":0,"delta":{"content":"x"}, "finish_reason":null}]}"#,
        r#""choices":[{"index":0,"delta":{"content":"\x"},"finish_reason":null}]}"#,
    ];
    let odd: Vec<String> = odd.iter().map(|t| format!("{head}{t}")).collect();
    let recorded = SseParser::default().push(&[TEXT, TOOL].concat());
    let all = (recorded.iter().map(|e| e.data.as_str())).chain(odd.iter().map(String::as_str));
    let mut taken = 0;
    for data in all {
        if stream::text_chunk(data).is_none() {
            continue;
        }
        taken += 1;
        // Fresh (the chunk starts the answer) and after a text chunk.
        for before in [None, Some(odd[0].as_str())] {
            let run = |fast: bool| {
                let mut dec = stream::ChunkDecoder::default();
                let mut out = Vec::new();
                let mut sink = |ev: Event<'_>| out.push(summary(&ev));
                for d in before.into_iter().chain([data]) {
                    let r = if fast {
                        dec.push("", d, &mut sink)
                    } else {
                        dec.parsed(d, &mut sink)
                    };
                    r.expect("decodes");
                }
                out
            };
            assert_eq!(run(true), run(false), "{data}");
        }
    }
    assert_eq!(taken, 7);
}

fn chunk(delta: Value, finish: Value) -> String {
    let c = json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

#[test]
fn stream_edge_cases() {
    let run = |chunks: &[String], clean: bool| {
        let all: Vec<&[u8]> = chunks.iter().map(|c| c.as_bytes()).collect();
        decode_stream(&all, clean)
    };
    // Parallel calls streamed whole at index 0 or with no index; a call
    // without an id; reasoning, text and refusal as blocks in order.
    let (ev, _) = run(
        &[
            chunk(json!({"reasoning": "r"}), Value::Null),
            chunk(
                json!({"content": "t", "extra_content": {"google": {"thought_signature": "TS"}}}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "w", "arguments": "{\"c\":1}"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"id": "call_b", "function": {"name": "w", "arguments": "{\"c\":2}"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 5, "function": {"name": "x"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("stop")),
            "data: [DONE]\n\n".into(),
        ],
        true,
    );
    let generated = ev
        .iter()
        .find(|e| e.starts_with("+4 call call_"))
        .is_some_and(|e| e.ends_with(" x Function"));
    assert!(generated, "{ev:?}");
    let ev: Vec<String> = ev
        .into_iter()
        .filter(|e| !e.starts_with("+4 call"))
        .collect();
    assert_eq!(
        ev,
        [
            "start c1 m",
            "+0 Reasoning",
            "0 r",
            "-0",
            "+1 Text",
            "1 t",
            "1 sig Gemini TS",
            "-1",
            "+2 call call_a w Function",
            "2 {\"c\":1}",
            "-2",
            "+3 call call_b w Function",
            "3 {\"c\":2}",
            "-3",
            "-4",
            "stop ToolCalls"
        ]
    );

    // An in-band error ends the stream; nothing after it counts.
    let (ev, r) = run(&[
        chunk(json!({"content": "par"}), Value::Null),
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n".into(),
        chunk(json!({"content": "tial"}), Value::Null),
    ], false);
    assert!(r.is_ok());
    assert_eq!(ev[3..], ["error 502 The server had an error"]);

    // Cut without a finish: an error; ended cleanly without one: closed.
    let (_, r) = run(&[chunk(json!({"content": "x"}), Value::Null)], false);
    assert!(r.is_err());
    let (ev, r) = run(&[chunk(json!({"content": "x"}), Value::Null)], true);
    assert!(r.is_ok());
    assert_eq!(ev[3..], ["-0", "stop Stop"]);
    // Usage on the finish chunk: Stop waits for the end.
    let mut fin = chunk(json!({}), json!("length"));
    fin = fin.replace(
        "\"model\"",
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"model\"",
    );
    let (ev, r) = run(&[chunk(json!({"content": "x"}), Value::Null), fin], false);
    assert!(r.is_ok());
    assert_eq!(ev[3..], ["-0", "usage 1/2/3 cached 0", "stop Length"]);
    // Garbage is an error of the decoder.
    let mut dec = OpenAiChat.stream_decoder();
    assert!(dec.push("", "{not json", &mut |_: Event<'_>| {}).is_err());
}

#[test]
fn an_openai_stream_reaches_an_openai_client() {
    let mut t = Translation::new(
        OpenAiChat.stream_decoder(),
        OpenAiClient.stream_encoder("alias", true),
    );
    let mut parser = SseParser::default();
    let mut out = BytesMut::new();
    for ev in parser.push(TOOL) {
        t.push(&ev.event, &ev.data, &mut out).expect("translates");
    }
    t.finish(true, &mut out).expect("ends");
    assert_eq!(t.usage().total_tokens, 99);
    let text = String::from_utf8(out.to_vec()).expect("UTF-8");
    let chunks: Vec<Value> = text
        .split_terminator("\n\n")
        .filter_map(|e| serde_json::from_str(e.strip_prefix("data: ")?).ok())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["model"] == "alias" && c["id"] == "chatcmpl-123"));
    let args: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"location\": \"Paris\"}");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(chunks[chunks.len() - 1]["usage"]["prompt_tokens"], 82);
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn keys_are_copied_or_escaped() {
    let mut j = J(Vec::new());
    j.obj(|j| {
        j.put("plain", &1);
        j.put("a\"b\\c\n", &2);
    });
    let v: Value = serde_json::from_slice(&j.0).unwrap();
    assert_eq!(v, json!({"plain": 1, "a\"b\\c\n": 2}));
}
