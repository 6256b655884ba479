use super::*;
use crate::protocol::chat::{Block, Delta, ErrorKind, Event, Finish, Usage};
use bytes::BytesMut;
use serde_json::{json, Value};

fn decode(body: &Value) -> Result<Request<'static>, ChatError> {
    let bytes: &'static [u8] = Box::leak(body.to_string().into_bytes().into_boxed_slice());
    OpenAiChat.decode_request(bytes)
}

/// A part, compactly: enough to compare whole conversations in one line.
fn part(p: &Part<'_>) -> String {
    match p {
        Part::Text(t) => format!(
            "text:{}{}",
            t.text,
            if t.cache.is_some() { "+cache" } else { "" }
        ),
        Part::Media(m) => {
            let src = match &m.source {
                MediaSource::Base64 { data } => format!("b64:{data}"),
                MediaSource::Url(u) => format!("url:{u}"),
                MediaSource::FileId { id, .. } => format!("file:{id}"),
            };
            let mime = m.mime.as_deref().unwrap_or("-");
            format!(
                "{:?}:{mime}:{src}:{}",
                m.kind,
                m.name.as_deref().unwrap_or("-")
            )
        }
        Part::ToolCall(c) => {
            let sig = c.signature.as_ref().map(|s| format!("+sig:{}", s.value));
            format!(
                "call:{}:{}:{:?}:{}{}",
                c.id,
                c.name,
                c.kind,
                c.arguments,
                sig.unwrap_or_default()
            )
        }
        Part::ToolResult(r) => {
            let inner: Vec<String> = r.content.iter().map(part).collect();
            format!("result:{}:[{}]", r.call_id, inner.join(","))
        }
        Part::Reasoning(r) => {
            let sig = r
                .signature
                .as_ref()
                .map(|s| format!("+sig:{:?}:{}", s.family, s.value));
            format!("reasoning:{}{}", r.text, sig.unwrap_or_default())
        }
        Part::Refusal(r) => format!("refusal:{r}"),
        Part::Opaque { .. } => "opaque".into(),
    }
}

fn turns(req: &Request<'_>) -> Vec<String> {
    req.turns
        .iter()
        .map(|t| {
            let parts: Vec<String> = t.parts.iter().map(part).collect();
            format!("{:?} {}", t.role, parts.join(" | "))
        })
        .collect()
}

#[test]
fn decodes_a_full_request() {
    let req = decode(&json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                {"type": "image_url", "image_url": "https://x.test/a.png"},
                {"type": "input_audio", "input_audio": {"data": "UklG", "format": "mp3"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
                {"type": "file", "file": {"file_id": "file-1"}}
            ]},
            {"role": "assistant", "content": null, "reasoning_content": "hmm",
             "extra_content": {"google": {"thought_signature": "TSIG"}},
             "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"},
                 "extra_content": {"google": {"thought_signature": "SIG1"}}},
                {"id": "call_2", "type": "custom", "custom": {"name": "patch", "input": "*** Begin"}}
             ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "ok"}]},
            {"role": "user", "content": "thanks"},
            {"role": "system", "content": [{"type": "text", "text": "Late rule."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "No."}, {"type": "refusal", "refusal": "can't"}]}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get", "description": "d", "parameters": {"type": "object"}, "strict": true}},
            {"type": "custom", "custom": {"name": "patch", "format": {"type": "text"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "get"}},
        "parallel_tool_calls": false,
        "temperature": 0.5, "top_p": 0.9, "top_k": 40, "seed": -3,
        "presence_penalty": 0.1, "frequency_penalty": 0.2, "stop": "END",
        "max_completion_tokens": 300, "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": true}},
        "stream": true, "stream_options": {"include_usage": true}, "n": 1,
        "safety_identifier": "u-1", "logprobs": true, "metadata": {"k": "v"}
    }))
    .expect("valid request");
    assert_eq!(req.model, "gpt-4o");
    let sys: Vec<String> = req.system.iter().map(part).collect();
    assert_eq!(sys, ["text:Be brief.", "text:Late rule."]);
    assert_eq!(
        turns(&req),
        [
            "User text:Look+cache | Image:image/png:b64:AAAA:- | Image:-:url:https://x.test/a.png:- \
             | Audio:audio/mp3:b64:UklG:- | Document:application/pdf:b64:JVBE:a.pdf | Document:-:file:file-1:-",
            "Assistant reasoning:hmm | reasoning:+sig:Gemini:TSIG | call:call_1:get:Function:{\"a\":1}+sig:SIG1 \
             | call:call_2:patch:Custom:*** Begin",
            "User result:call_1:[text:sunny] | result:call_2:[text:ok] | text:thanks",
            "Assistant text:No. | refusal:can't",
        ]
    );
    assert_eq!(req.tools.len(), 2);
    assert_eq!(req.tools[0].strict, Some(true));
    assert_eq!(req.tools[1].kind, ToolKind::Custom);
    assert_eq!(
        req.tools[1].format.as_ref().map(|f| f.get()),
        Some(r#"{"type":"text"}"#)
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Tool("get".into())));
    assert_eq!(req.parallel_tool_calls, Some(false));
    let s = &req.sampling;
    assert_eq!(
        (s.temperature, s.top_p, s.top_k, s.seed),
        (Some(0.5), Some(0.9), Some(40), Some(-3))
    );
    assert_eq!(
        (s.presence_penalty, s.frequency_penalty),
        (Some(0.1), Some(0.2))
    );
    assert_eq!(s.stop, ["END"]);
    assert_eq!(req.max_tokens, Some(300));
    assert_eq!(req.reasoning, Some(ReasoningConfig::Effort(Effort::Low)));
    assert!(matches!(
        req.response_format,
        Some(ResponseFormat::JsonSchema {
            strict: Some(true),
            ..
        })
    ));
    assert!(req.stream && req.include_usage);
    assert_eq!((req.n, req.user.as_deref()), (Some(1), Some("u-1")));
    let extras: Vec<String> = req
        .extra
        .fields
        .iter()
        .map(|(k, v)| format!("{k}={}", v.get()))
        .collect();
    assert_eq!(
        extras,
        [
            "logprobs=true",
            "metadata={\"k\":\"v\"}",
            "max_completion_tokens=true",
            "safety_identifier=true"
        ]
    );
}

#[test]
fn strings_borrow_from_the_body_unless_escaped() {
    let req = decode(
        &json!({"model": "m", "messages": [{"role": "user", "content": "plain"},
        {"role": "user", "content": "line\nbreak"}]}),
    )
    .expect("valid");
    let text = |i: usize| match &req.turns[i].parts[0] {
        Part::Text(t) => matches!(t.text, Cow::Borrowed(_)),
        _ => false,
    };
    assert!(text(0) && !text(1));
}

#[test]
fn legacy_functions_become_tools_and_calls() {
    let req = decode(&json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "42"}
    ], "functions": [{"name": "f", "parameters": {"type": "object"}}], "function_call": {"name": "f"}}))
    .expect("valid");
    assert_eq!(
        turns(&req)[1..],
        [
            "Assistant call:call_fn_1:f:Function:{}",
            "User result:call_fn_1:[text:42]"
        ]
    );
    assert_eq!(req.tools[0].name, "f");
    assert_eq!(req.tool_choice, Some(ToolChoice::Tool("f".into())));
}

#[test]
fn unknown_tool_choice_shapes_are_kept_raw() {
    let req = decode(&json!({"model": "m", "messages": [],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}}))
    .expect("valid");
    assert!(req.tool_choice.is_none());
    assert_eq!(req.extra.fields[0].0, "tool_choice");
}

#[test]
fn errors_name_the_field() {
    let cases: &[(Value, Option<&str>, &str)] = &[
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}),
            Some("messages[0].content[0].image_url.url"),
            "http(s) URL or a base64 data URL",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,AAAA"}}]}]}),
            Some("messages[0].content[0].image_url.url"),
            "only base64 data URLs",
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            Some("messages[0].content"),
            "expected a string or an array",
        ),
        (
            json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": 3}]}]}),
            Some("messages[1].content[0].text"),
            "invalid type: integer `3`",
        ),
        (
            json!({"messages": [{"content": "x"}]}),
            Some("messages[0].role"),
            "no role",
        ),
        (
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            Some("messages[0].role"),
            "'robot'",
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": "https://a"}]}]}),
            Some("messages[0].content[0].type"),
            "system messages may only contain text",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]}),
            Some("messages[0].tool_calls[0].id"),
            "no id",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 3}}]}]}),
            Some("messages[0].tool_calls[0].function.arguments"),
            "JSON string",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            Some("messages[0].tool_call_id"),
            "no tool_call_id",
        ),
        (
            json!({"messages": [], "tools": [{"type": "web_search"}]}),
            Some("tools[0].type"),
            "'web_search'",
        ),
        (
            json!({"messages": [], "tools": [{"type": "function", "function": {"description": "x"}}]}),
            Some("tools[0].function.name"),
            "no name",
        ),
        (
            json!({"messages": [], "temperature": "hot"}),
            Some("temperature"),
            "invalid type: string",
        ),
        (
            json!({"messages": [], "stop": ["a", 1]}),
            Some("stop[1]"),
            "invalid type: integer",
        ),
        (
            json!({"messages": [], "reasoning_effort": "max"}),
            Some("reasoning_effort"),
            "one of none",
        ),
        (
            json!({"messages": [], "response_format": {"type": "xml"}}),
            Some("response_format.type"),
            "'xml'",
        ),
        (
            json!({"messages": [], "tool_choice": "sometimes"}),
            Some("tool_choice"),
            "auto, none, required",
        ),
        (json!({"model": "m"}), Some("messages"), "required"),
    ];
    for (body, param, msg) in cases {
        let e = decode(body).expect_err(&body.to_string());
        assert_eq!(e.param.as_deref(), *param, "{body}: {e:?}");
        assert!(e.message.contains(msg), "{body}: {}", e.message);
        assert!(!e.message.contains(" at line "), "{}", e.message);
        assert_eq!((e.status, e.kind), (400, ErrorKind::InvalidRequest));
    }
    let e = OpenAiChat
        .decode_request(b"{\"messages\": [")
        .expect_err("truncated");
    assert_eq!(e.param.as_deref(), Some("messages[0]"));
    assert!(e.message.starts_with("EOF while parsing"), "{}", e.message);
    let e = OpenAiChat
        .decode_request(b"[1]")
        .expect_err("not an object");
    assert_eq!(e.param, None);
    assert!(
        e.message
            .starts_with("request body is not a JSON chat request: invalid type: sequence"),
        "{}",
        e.message
    );
}

// ---------------------------------------------------------------- encoding

fn parsed(b: &[u8]) -> Value {
    serde_json::from_slice(b).expect("JSON")
}

#[test]
fn encodes_an_answer_as_a_chat_completion() {
    let answer = Answer {
        id: "msg_1".into(),
        model: "claude-x".into(),
        created: 1_700_000_000,
        parts: vec![
            Part::Reasoning(Reasoning {
                text: "think".into(),
                signature: None,
                redacted: None,
            }),
            Part::Text(Text::plain("Hi ")),
            Part::Text(Text::plain("there")),
            Part::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "get".into(),
                kind: ToolKind::Function,
                arguments: "".into(),
                signature: Some(Signature {
                    family: Family::Gemini,
                    value: "SIG".into(),
                }),
            }),
        ],
        finish: Some(Finish::ToolCalls),
        usage: Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            cached_tokens: 4,
            reasoning_tokens: 2,
            ..Default::default()
        },
    };
    assert_eq!(
        parsed(&OpenAiChat.encode_answer(&answer, "my-model")),
        json!({
            "id": "msg_1", "object": "chat.completion", "created": 1_700_000_000u64, "model": "my-model",
            "choices": [{"index": 0, "message": {
                "role": "assistant", "content": "Hi there", "reasoning_content": "think",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{}"},
                                "extra_content": {"google": {"thought_signature": "SIG"}}}]
            }, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 4},
                      "completion_tokens_details": {"reasoning_tokens": 2}}
        })
    );
    let cases = [
        (
            vec![Part::ToolCall(ToolCall {
                id: "c".into(),
                name: "f".into(),
                kind: ToolKind::Function,
                arguments: "{}".into(),
                signature: None,
            })],
            None,
            Value::Null,
            "tool_calls",
        ),
        (
            vec![Part::Refusal("no".into())],
            Some(Finish::Refusal),
            Value::Null,
            "stop",
        ),
        (vec![], Some(Finish::Refusal), json!(""), "content_filter"),
        (
            vec![Part::Text(Text::plain("x"))],
            Some(Finish::Length),
            json!("x"),
            "length",
        ),
        (
            vec![],
            Some(Finish::StopSequence(Some("END".into()))),
            json!(""),
            "stop",
        ),
    ];
    for (parts, finish, content, word) in cases {
        let a = Answer {
            parts,
            finish,
            ..answer.clone()
        };
        let v = parsed(&OpenAiChat.encode_answer(&a, "m"));
        assert_eq!(v["choices"][0]["message"]["content"], content, "{v}");
        assert_eq!(v["choices"][0]["finish_reason"], word, "{v}");
    }
}

/// The chunks of an encoded stream (`[DONE]` as a string), `created`
/// checked and removed.
fn chunks(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("UTF-8");
    text.split_terminator("\n\n")
        .map(|e| {
            let d = e.strip_prefix("data: ").expect("data line");
            if d == "[DONE]" {
                return json!("[DONE]");
            }
            let mut v: Value = serde_json::from_str(d).expect("chunk JSON");
            if let Some(o) = v.as_object_mut() {
                assert!(o
                    .remove("created")
                    .and_then(|c| c.as_u64())
                    .is_some_and(|c| c > 1_600_000_000));
            }
            v
        })
        .collect()
}

fn delta(d: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "client-model",
           "choices": [{"index": 0, "delta": d, "logprobs": null, "finish_reason": finish}], "usage": null})
}

#[test]
fn encodes_a_stream_as_openai_chunks() {
    let sig = |v: &'static str| Signature {
        family: Family::Gemini,
        value: v.into(),
    };
    let events = vec![
        Event::Start {
            id: "chatcmpl-1".into(),
            model: "vendor-model".into(),
        },
        Event::BlockStart {
            index: 0,
            block: Block::Reasoning,
        },
        Event::Delta {
            index: 0,
            delta: Delta::Reasoning("hm".into()),
        },
        Event::Delta {
            index: 0,
            delta: Delta::Signature(Signature {
                family: Family::Anthropic,
                value: "x".into(),
            }),
        },
        Event::BlockStop { index: 0 },
        Event::BlockStart {
            index: 1,
            block: Block::Text,
        },
        Event::Delta {
            index: 1,
            delta: Delta::Text("Hi \"you\"".into()),
        },
        Event::BlockStop { index: 1 },
        Event::BlockStart {
            index: 2,
            block: Block::ToolCall {
                id: "call_a".into(),
                name: "get".into(),
                kind: ToolKind::Function,
            },
        },
        Event::Delta {
            index: 2,
            delta: Delta::Signature(sig("S1")),
        },
        Event::Delta {
            index: 2,
            delta: Delta::ToolArguments("{\"a\":".into()),
        },
        Event::Delta {
            index: 2,
            delta: Delta::ToolArguments("1}".into()),
        },
        Event::BlockStop { index: 2 },
        Event::BlockStart {
            index: 3,
            block: Block::ToolCall {
                id: "call_b".into(),
                name: "now".into(),
                kind: ToolKind::Function,
            },
        },
        Event::BlockStop { index: 3 },
        Event::BlockStart {
            index: 4,
            block: Block::ToolCall {
                id: "call_c".into(),
                name: "patch".into(),
                kind: ToolKind::Custom,
            },
        },
        Event::Delta {
            index: 4,
            delta: Delta::ToolArguments("diff".into()),
        },
        Event::BlockStop { index: 4 },
        Event::Usage(Usage {
            prompt_tokens: 9,
            completion_tokens: 3,
            total_tokens: 12,
            ..Default::default()
        }),
        Event::Stop {
            finish: Finish::ToolCalls,
        },
    ];
    let mut enc = OpenAiChat.stream_encoder("client-model", true);
    let mut out = BytesMut::new();
    for ev in &events {
        enc.event(ev, &mut out);
    }
    enc.finish(&mut out);
    let call = |c: Value| delta(json!({"tool_calls": [c]}), Value::Null);
    assert_eq!(
        chunks(&out),
        vec![
            delta(json!({"role": "assistant", "content": ""}), Value::Null),
            delta(json!({"reasoning_content": "hm"}), Value::Null),
            delta(json!({"content": "Hi \"you\""}), Value::Null),
            call(
                json!({"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""},
                        "extra_content": {"google": {"thought_signature": "S1"}}})
            ),
            call(json!({"index": 0, "function": {"arguments": "{\"a\":"}})),
            call(json!({"index": 0, "function": {"arguments": "1}"}})),
            call(
                json!({"index": 1, "id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}})
            ),
            call(
                json!({"index": 2, "id": "call_c", "type": "custom", "custom": {"name": "patch", "input": ""}})
            ),
            call(json!({"index": 2, "custom": {"input": "diff"}})),
            delta(json!({}), json!("tool_calls")),
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "client-model", "choices": [],
                   "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}}),
            json!("[DONE]"),
        ]
    );

    // Without include_usage: no `usage` member, no usage chunk; a refusal
    // ends with `stop`.
    let mut enc = OpenAiChat.stream_encoder("m", false);
    let mut out = BytesMut::new();
    for ev in [
        Event::Start {
            id: "".into(),
            model: "v".into(),
        },
        Event::BlockStart {
            index: 0,
            block: Block::Refusal,
        },
        Event::Delta {
            index: 0,
            delta: Delta::Refusal("no".into()),
        },
        Event::BlockStop { index: 0 },
        Event::Stop {
            finish: Finish::Refusal,
        },
    ] {
        enc.event(&ev, &mut out);
    }
    enc.finish(&mut out);
    let got = chunks(&out);
    assert!(got[0]["id"]
        .as_str()
        .is_some_and(|i| i.starts_with("chatcmpl-")));
    assert_eq!(got[1]["choices"][0]["delta"], json!({"refusal": "no"}));
    assert_eq!(got[2]["choices"][0]["finish_reason"], "stop");
    assert!(got[2].get("usage").is_none());
    assert_eq!(got.len(), 4);
}

#[test]
fn errors_in_openai_shape() {
    let e = |kind, status| ChatError::new(kind, status, "boom");
    let cases = [
        (
            ChatError::invalid("messages[0].role", "bad"),
            json!({"message": "bad", "type": "invalid_request_error", "param": "messages[0].role", "code": null}),
        ),
        (
            e(ErrorKind::Authentication, 401),
            json!({"message": "boom", "type": "authentication_error", "param": null, "code": null}),
        ),
        (
            e(ErrorKind::RateLimited, 429),
            json!({"message": "boom", "type": "rate_limit_error", "param": null, "code": null}),
        ),
        (
            e(ErrorKind::ContextLength, 400),
            json!({"message": "boom", "type": "invalid_request_error", "param": null, "code": "context_length_exceeded"}),
        ),
        (
            e(ErrorKind::Timeout, 504),
            json!({"message": "boom", "type": "timeout", "param": null, "code": null}),
        ),
        (
            ChatError {
                vendor_type: Some("overloaded_error".into()),
                ..e(ErrorKind::Overloaded, 529)
            },
            json!({"message": "boom", "type": "server_error", "param": null, "code": "overloaded_error"}),
        ),
        (
            ChatError {
                vendor_type: Some("RESOURCE_EXHAUSTED".into()),
                code: Some("RESOURCE_EXHAUSTED".into()),
                ..e(ErrorKind::RateLimited, 429)
            },
            json!({"message": "boom", "type": "rate_limit_error", "param": null, "code": "RESOURCE_EXHAUSTED"}),
        ),
        (
            ChatError {
                vendor_type: Some("insufficient_quota".into()),
                code: Some("insufficient_quota".into()),
                ..e(ErrorKind::RateLimited, 429)
            },
            json!({"message": "boom", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}),
        ),
    ];
    for (err, want) in cases {
        assert_eq!(
            parsed(&OpenAiChat.encode_error(&err)),
            json!({"error": want})
        );
        let ev = OpenAiChat.stream_error(&err);
        let line = std::str::from_utf8(&ev).expect("UTF-8");
        let data = line
            .strip_prefix("data: ")
            .and_then(|l| l.strip_suffix("\n\n"))
            .expect("one data event");
        assert_eq!(parsed(data.as_bytes()), json!({"error": want}));
    }
}
