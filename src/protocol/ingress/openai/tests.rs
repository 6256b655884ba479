use super::*;
use crate::protocol::chat::{Block, Delta, ErrorKind, Event, Finish, Usage};
use bytes::BytesMut;
use serde_json::{json, Value};

fn decode(body: &Value) -> Result<Request<'static>, ChatError> {
    let bytes: &'static [u8] = Box::leak(body.to_string().into_bytes().into_boxed_slice());
    OpenAiChat.decode_request(bytes)
}

/// A part, compactly: enough to compare whole conversations in one line.
#[rustfmt::skip]
fn part(p: &Part<'_>) -> String {
    let sig = |s: &Option<Signature<'_>>| s.as_ref().map(|s| format!("+sig:{:?}:{}", s.family, s.value)).unwrap_or_default();
    match p {
        Part::Text(t) => format!("text:{}{}", t.text, if t.cache.is_some() { "+cache" } else { "" }),
        Part::Media(m) => {
            let src = match &m.source {
                MediaSource::Base64 { data } => format!("b64:{data}"),
                MediaSource::Url(u) => format!("url:{u}"),
                MediaSource::FileId { id, .. } => format!("file:{id}"),
            };
            format!("{:?}:{}:{src}:{}", m.kind, m.mime.as_deref().unwrap_or("-"), m.name.as_deref().unwrap_or("-"))
        }
        Part::ToolCall(c) => format!("call:{}:{}:{:?}:{}{}", c.id, c.name, c.kind, c.arguments, sig(&c.signature)),
        Part::ToolResult(r) => {
            let inner: Vec<String> = r.content.iter().map(part).collect();
            format!("result:{}:[{}]", r.call_id, inner.join(","))
        }
        Part::Reasoning(r) => format!("reasoning:{}{}", r.text, sig(&r.signature)),
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
#[rustfmt::skip]
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
            "Assistant reasoning:hmm | reasoning:+sig:Gemini:TSIG | call:call_1:get:Function:{\"a\":1}+sig:Gemini:SIG1 \
             | call:call_2:patch:Custom:*** Begin",
            "User result:call_1:[text:sunny] | result:call_2:[text:ok] | text:thanks",
            "Assistant text:No. | refusal:can't",
        ]
    );
    let tools: Vec<String> = req.tools.iter().map(|t| format!("{:?} {} {:?} {:?}", t.kind, t.name, t.strict, t.format.as_ref().map(|f| f.get()))).collect();
    assert_eq!(tools, ["Function get Some(true) None", "Custom patch None Some(\"{\\\"type\\\":\\\"text\\\"}\")"]);
    assert_eq!((req.tool_choice, req.parallel_tool_calls), (Some(ToolChoice::Tool("get".into())), Some(false)));
    let s = &req.sampling;
    assert_eq!((s.temperature, s.top_p, s.top_k, s.seed), (Some(0.5), Some(0.9), Some(40), Some(-3)));
    assert_eq!((s.presence_penalty, s.frequency_penalty, &s.stop[..]), (Some(0.1), Some(0.2), &["END".into()][..]));
    assert_eq!((req.max_tokens, req.reasoning), (Some(300), Some(ReasoningConfig::Effort(Effort::Low))));
    assert!(matches!(req.response_format, Some(ResponseFormat::JsonSchema { strict: Some(true), .. })));
    assert!(req.stream && req.include_usage);
    assert_eq!((req.n, req.user.as_deref()), (Some(1), Some("u-1")));
    let extras: Vec<String> = req.extra.fields.iter().map(|(k, v)| format!("{k}={}", v.get())).collect();
    assert_eq!(extras, ["logprobs=true", "metadata={\"k\":\"v\"}", "max_completion_tokens=true", "safety_identifier=true"]);
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

/// `body => param: words of the message`, one case a line.
const BAD: &str = r#"
{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]} => messages[0].content[0].image_url.url: http(s) URL or a base64 data URL
{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,AA"}}]}]} => messages[0].content[0].image_url.url: only base64 data URLs
{"messages":[{"role":"user","content":5}]} => messages[0].content: expected a string or an array
{"messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":3}]}]} => messages[1].content[0].text: invalid type: integer `3`
{"messages":[{"content":"x"}]} => messages[0].role: no role
{"messages":[{"role":"robot","content":"x"}]} => messages[0].role: 'robot'
{"messages":[{"role":"system","content":[{"type":"image_url","image_url":"https://a"}]}]} => messages[0].content[0].type: system messages may only contain text
{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]} => messages[0].tool_calls[0].id: no id
{"messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":3}}]}]} => messages[0].tool_calls[0].function.arguments: JSON string
{"messages":[{"role":"tool","content":"x"}]} => messages[0].tool_call_id: no tool_call_id
{"messages":[],"tools":[{"type":"web_search"}]} => tools[0].type: 'web_search'
{"messages":[],"tools":[{"type":"function","function":{"description":"x"}}]} => tools[0].function.name: no name
{"messages":[],"temperature":"hot"} => temperature: invalid type: string
{"messages":[],"stop":["a",1]} => stop[1]: invalid type: integer
{"messages":[],"reasoning_effort":"max"} => reasoning_effort: one of none
{"messages":[],"response_format":{"type":"xml"}} => response_format.type: 'xml'
{"messages":[],"tool_choice":"sometimes"} => tool_choice: auto, none, required
{"model":"m"} => messages: required
{"messages": [ => messages[0]: EOF while parsing
[1] => : request body is not a JSON chat request: invalid type: sequence
"#;

#[test]
fn errors_name_the_field() {
    for line in BAD.lines().filter(|l| !l.is_empty()) {
        let (body, want) = line.split_once(" => ").expect("case");
        let (param, msg) = want.split_once(": ").expect("case");
        let e = OpenAiChat.decode_request(body.as_bytes()).expect_err(body);
        assert_eq!(e.param.as_deref().unwrap_or(""), param, "{body}: {e:?}");
        assert!(e.message.contains(msg), "{body}: {}", e.message);
        assert!(!e.message.contains(" at line "), "{}", e.message);
        assert_eq!((e.status, e.kind), (400, ErrorKind::InvalidRequest));
    }
}

// ---------------------------------------------------------------- encoding

fn parsed(b: &[u8]) -> Value {
    serde_json::from_slice(b).expect("JSON")
}

fn gsig(v: &'static str) -> Option<Signature<'static>> {
    Some(Signature::new(Family::Gemini, v))
}

fn call(id: &'static str, kind: ToolKind, args: &'static str, sig: &'static str) -> Part<'static> {
    let signature = gsig(sig).filter(|_| !sig.is_empty());
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: "f".into(),
        kind,
        arguments: args.into(),
        signature,
    })
}

#[test]
#[rustfmt::skip]
fn encodes_an_answer_as_a_chat_completion() {
    let reasoning = Part::reasoning("think", None, None);
    let usage = Usage { prompt_tokens: 10, completion_tokens: 5, cached_tokens: 4, reasoning_tokens: 2, ..Usage::default() };
    let parts = vec![reasoning, Part::Text(Text::plain("Hi ")), Part::Text(Text::plain("there")), call("c1", ToolKind::Function, "", "SIG")];
    let answer = Answer { id: "msg_1".into(), model: "x".into(), created: 1_700_000_000, parts, finish: Some(Finish::ToolCalls), usage };
    assert_eq!(
        parsed(&OpenAiChat.encode_answer(&answer, "my-model")),
        json!({
            "id": "msg_1", "object": "chat.completion", "created": 1_700_000_000u64, "model": "my-model",
            "choices": [{"index": 0, "message": {
                "role": "assistant", "content": "Hi there", "reasoning_content": "think",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"},
                                "extra_content": {"google": {"thought_signature": "SIG"}}}]
            }, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                      "prompt_tokens_details": {"cached_tokens": 4},
                      "completion_tokens_details": {"reasoning_tokens": 2}}
        })
    );
    let cases = [
        (vec![call("c", ToolKind::Custom, "diff", "")], None, Value::Null, "tool_calls"),
        (vec![Part::Refusal("no".into())], Some(Finish::Refusal), Value::Null, "stop"),
        (vec![], Some(Finish::Refusal), json!(""), "content_filter"),
        (vec![Part::Text(Text::plain("x"))], Some(Finish::Length), json!("x"), "length"),
        (vec![], Some(Finish::StopSequence(Some("END".into()))), json!(""), "stop"),
    ];
    for (parts, finish, content, word) in cases {
        let a = Answer { parts, finish, ..answer.clone() };
        let v = parsed(&OpenAiChat.encode_answer(&a, "m"));
        assert_eq!(v["choices"][0]["message"]["content"], content, "{v}");
        assert_eq!(v["choices"][0]["finish_reason"], word, "{v}");
    }
}

/// The chunks of an encoded stream (`[DONE]` as a string), `created`
/// checked and removed.
fn chunks(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("UTF-8");
    let chunk = |e: &str| {
        let d = e.strip_prefix("data: ").expect("data line");
        let mut v: Value = serde_json::from_str(d).unwrap_or(json!(d));
        if let Some(o) = v.as_object_mut().filter(|o| o.contains_key("object")) {
            let created = o.remove("created").and_then(|c| c.as_u64());
            assert!(created.is_some_and(|c| c > 1_600_000_000));
        }
        v
    };
    text.split_terminator("\n\n").map(chunk).collect()
}

fn delta(d: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "client-model",
           "choices": [{"index": 0, "delta": d, "logprobs": null, "finish_reason": finish}], "usage": null})
}

fn encode_stream(events: &[Event<'_>], include_usage: bool) -> Vec<Value> {
    let mut enc = OpenAiChat.stream_encoder("client-model", include_usage);
    let mut out = BytesMut::new();
    events.iter().for_each(|ev| enc.event(ev, &mut out));
    enc.finish(&mut out);
    chunks(&out)
}

fn open(index: usize, block: Block<'static>) -> Event<'static> {
    Event::BlockStart { index, block }
}

fn tool(id: &'static str, kind: ToolKind) -> Block<'static> {
    Block::ToolCall {
        id: id.into(),
        name: "f".into(),
        kind,
    }
}

fn d(index: usize, delta: Delta<'static>) -> Event<'static> {
    Event::Delta { index, delta }
}

fn close(index: usize) -> Event<'static> {
    Event::BlockStop { index }
}

#[test]
#[rustfmt::skip]
fn encodes_a_stream_as_openai_chunks() {
    let anthropic = Signature::new(Family::Anthropic, "x");
    let usage = Usage { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12, ..Usage::default() };
    let events = [
        Event::Start { id: "chatcmpl-1".into(), model: "vendor-model".into() },
        open(0, Block::Reasoning), d(0, Delta::Reasoning("hm".into())), d(0, Delta::Signature(anthropic)), close(0),
        open(1, Block::Text), d(1, Delta::Text("Hi \"you\"".into())), close(1),
        open(2, tool("call_a", ToolKind::Function)), d(2, Delta::Signature(gsig("S1").expect("sig"))),
        d(2, Delta::ToolArguments("{\"a\":".into())), d(2, Delta::ToolArguments("1}".into())), close(2),
        open(3, tool("call_b", ToolKind::Function)), close(3),
        open(4, tool("call_c", ToolKind::Custom)), d(4, Delta::ToolArguments("diff".into())), close(4),
        open(5, tool("call_d", ToolKind::Function)), d(5, Delta::ToolArguments("{}".into())), d(5, Delta::Signature(gsig("S2").expect("sig"))), close(5),
        Event::Usage(usage), Event::Stop { finish: Finish::ToolCalls },
    ];
    let call = |c: Value| delta(json!({"tool_calls": [c]}), Value::Null);
    assert_eq!(
        encode_stream(&events, true),
        vec![
            delta(json!({"role": "assistant", "content": ""}), Value::Null),
            delta(json!({"reasoning_content": "hm"}), Value::Null),
            delta(json!({"content": "Hi \"you\""}), Value::Null),
            call(json!({"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""},
                        "extra_content": {"google": {"thought_signature": "S1"}}})),
            call(json!({"index": 0, "function": {"arguments": "{\"a\":"}})),
            call(json!({"index": 0, "function": {"arguments": "1}"}})),
            call(json!({"index": 1, "id": "call_b", "type": "function", "function": {"name": "f", "arguments": "{}"}})),
            call(json!({"index": 2, "id": "call_c", "type": "custom", "custom": {"name": "f", "input": ""}})),
            call(json!({"index": 2, "custom": {"input": "diff"}})),
            call(json!({"index": 3, "id": "call_d", "type": "function", "function": {"name": "f", "arguments": ""}})),
            call(json!({"index": 3, "function": {"arguments": "{}"}})),
            // A late signature still carries `function` (the openai SDK reads it on every delta).
            call(json!({"index": 3, "function": {"arguments": ""}, "extra_content": {"google": {"thought_signature": "S2"}}})),
            delta(json!({}), json!("tool_calls")),
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "client-model", "choices": [],
                   "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}}),
            json!("[DONE]"),
        ]
    );

    // Without include_usage: no `usage` member, no usage chunk; a refusal
    // ends with `stop`; a missing id is generated.
    let events = [
        Event::Start { id: "".into(), model: "v".into() },
        open(0, Block::Refusal), d(0, Delta::Refusal("no".into())), close(0),
        Event::Stop { finish: Finish::Refusal },
    ];
    let got = encode_stream(&events, false);
    assert!(got[0]["id"].as_str().is_some_and(|i| i.starts_with("chatcmpl-")));
    assert_eq!(got[1]["choices"][0]["delta"], json!({"refusal": "no"}));
    assert_eq!(got[2]["choices"][0]["finish_reason"], "stop");
    assert!(got[2].get("usage").is_none());
    assert_eq!(got.len(), 4);
    // An in-band error ends the stream in the client's shape.
    let err = Event::Error(ChatError::new(ErrorKind::Overloaded, 529, "busy"));
    let got = encode_stream(&[Event::Start { id: "x".into(), model: "v".into() }, err], false);
    assert_eq!(got[1]["error"]["type"], "server_error");
}

#[test]
#[rustfmt::skip]
fn errors_in_openai_shape() {
    // (kind, status, vendor type, code) => (type, code)
    let cases = [
        (ErrorKind::InvalidRequest, 400, None, None, "invalid_request_error", None),
        (ErrorKind::Authentication, 401, None, None, "authentication_error", None),
        (ErrorKind::RateLimited, 429, None, None, "rate_limit_error", None),
        (ErrorKind::ContextLength, 400, None, None, "invalid_request_error", Some("context_length_exceeded")),
        (ErrorKind::Timeout, 504, None, None, "timeout", None),
        (ErrorKind::Overloaded, 529, Some("overloaded_error"), None, "server_error", Some("overloaded_error")),
        (ErrorKind::RateLimited, 429, Some("RESOURCE_EXHAUSTED"), Some("RESOURCE_EXHAUSTED"), "rate_limit_error", Some("RESOURCE_EXHAUSTED")),
        (ErrorKind::RateLimited, 429, Some("insufficient_quota"), Some("q"), "insufficient_quota", Some("q")),
    ];
    for (kind, status, vendor, code, want_type, want_code) in cases {
        let mut err = ChatError::new(kind, status, "boom");
        (err.vendor_type, err.code) = (vendor.map(String::from), code.map(String::from));
        err.param = (kind == ErrorKind::InvalidRequest).then(|| "messages[0].role".into());
        let want = json!({"error": {"message": "boom", "type": want_type, "param": err.param, "code": want_code}});
        assert_eq!(parsed(&OpenAiChat.encode_error(&err)), want);
        let ev = OpenAiChat.stream_error(&err);
        let data = ev.strip_prefix(b"data: ").and_then(|l| l.strip_suffix(b"\n\n"));
        assert_eq!(parsed(data.expect("one data event")), want);
    }
}
