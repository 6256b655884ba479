use super::*;
use crate::protocol::chat::{
    Block, Delta, Effort, ErrorKind, Event, Finish, Reasoning, Signature, Text, Tool, ToolCall,
    ToolResult, Turn, Usage,
};
use crate::protocol::sse::SseParser;
use serde_json::{json, Value};

fn raw(v: Value) -> Cow<'static, RawValue> {
    Cow::Owned(RawValue::from_string(v.to_string()).unwrap())
}
fn t(s: &str) -> Part<'_> {
    Part::Text(Text::plain(s))
}
fn user(parts: Vec<Part<'_>>) -> Turn<'_> {
    Turn {
        role: Role::User,
        parts,
    }
}
fn model(parts: Vec<Part<'_>>) -> Turn<'_> {
    Turn {
        role: Role::Assistant,
        parts,
    }
}
fn sig(family: Family, value: &str) -> Option<Signature<'_>> {
    Some(Signature {
        family,
        value: value.into(),
    })
}
fn call<'a>(
    id: &'a str,
    name: &'a str,
    args: &'a str,
    signature: Option<Signature<'a>>,
) -> Part<'a> {
    let (id, name, arguments) = (id.into(), name.into(), args.into());
    Part::ToolCall(ToolCall {
        id,
        name,
        kind: ToolKind::Function,
        arguments,
        signature,
    })
}
fn result<'a>(id: &'a str, text: &'a str) -> Part<'a> {
    let content = vec![t(text)];
    Part::ToolResult(ToolResult {
        call_id: id.into(),
        name: None,
        content,
        is_error: false,
        cache: None,
    })
}
fn req(turns: Vec<Turn<'_>>) -> Request<'_> {
    let mut r = Request::new("gemini-2.5-flash", Family::OpenAi);
    r.turns = turns;
    r
}
fn tool(name: &str, params: Value) -> Tool<'_> {
    let parameters = Some(raw(params));
    Tool {
        kind: ToolKind::Function,
        name: name.into(),
        description: None,
        parameters,
        strict: None,
        format: None,
        cache: None,
    }
}
fn encode_with(r: &Request<'_>, opts: &VendorOptions) -> Result<Value, ChatError> {
    let bytes = GeminiGenerate.encode_request(r, "gemini-2.5-flash", opts)?;
    Ok(serde_json::from_slice(&bytes).unwrap())
}
fn encode(r: &Request<'_>) -> Value {
    encode_with(r, &VendorOptions::default()).unwrap()
}
fn param(r: &Request<'_>) -> Option<String> {
    encode_with(r, &VendorOptions::default()).unwrap_err().param
}

// ---------------------------------------------------------------- requests

#[test]
fn system_turns_and_roles() {
    let mut r = req(vec![
        user(vec![t("Hi"), t("")]),
        user(vec![t("How are you?")]),
        model(vec![t("Blue."), Part::Refusal("Or not.".into())]),
        model(vec![t("Or green.")]),
        user(vec![t("Another?")]),
    ]);
    r.system = vec![t("You are terse."), t("Answer in French.")];
    assert_eq!(
        encode(&r),
        json!({
            "systemInstruction": {"parts": [{"text": "You are terse.\n\nAnswer in French."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}, {"text": "How are you?"}]},
                {"role": "model", "parts": [{"text": "Blue."}, {"text": "Or not."}, {"text": "Or green."}]},
                {"role": "user", "parts": [{"text": "Another?"}]}
            ]
        })
    );
    // Nothing to send but a system text.
    let mut r = req(vec![user(vec![t("")])]);
    r.system = vec![t("x")];
    assert_eq!(param(&r).as_deref(), Some("messages"));
}

#[test]
fn media_parts() {
    // kind, MIME ("-": none), source (b64:, gemini:/openai: file id, else
    // URL), name, and the part Gemini gets (or "error").
    let cases = r#"
        Image image/png b64:iVBO - {"inlineData":{"mimeType":"image/png","data":"iVBO"}}
        Image - data:image/gif;charset=x;base64,R0lG - {"inlineData":{"mimeType":"image/gif","data":"R0lG"}}
        Image - https://x.org/cat.WEBP?size=large#top - {"fileData":{"mimeType":"image/webp","fileUri":"https://x.org/cat.WEBP?size=large#top"}}
        Image - https://x.org/render?id=7 - {"fileData":{"mimeType":"image/jpeg","fileUri":"https://x.org/render?id=7"}}
        Document - b64:UEsD notes.txt {"inlineData":{"mimeType":"text/plain","data":"UEsD"}}
        Audio audio/mp3 b64:SUQz - {"inlineData":{"mimeType":"audio/mp3","data":"SUQz"}}
        Document - gemini:files/abc - {"fileData":{"mimeType":"application/pdf","fileUri":"files/abc"}}
        Image - ftp://host/a.png - error
        Image - data:image/png,plain - error
        Image - openai:file-abc - error"#;
    for line in cases.trim().lines() {
        let f: Vec<&str> = line.trim().splitn(5, ' ').collect();
        let kind = match f[0] {
            "Image" => MediaKind::Image,
            "Audio" => MediaKind::Audio,
            _ => MediaKind::Document,
        };
        let source = match f[2].split_once(':') {
            Some(("b64", data)) => MediaSource::Base64 { data: data.into() },
            Some(("gemini", id)) => MediaSource::FileId {
                family: Family::Gemini,
                id: id.into(),
            },
            Some(("openai", id)) => MediaSource::FileId {
                family: Family::OpenAi,
                id: id.into(),
            },
            _ => MediaSource::Url(f[2].into()),
        };
        let some = |s: &'static str| (s != "-").then_some(Cow::Borrowed(s));
        let (mime, name) = (some(f[1]), some(f[3]));
        let media = Media {
            kind,
            mime,
            source,
            name,
            detail: None,
            cache: None,
        };
        let r = req(vec![user(vec![Part::Media(media)])]);
        match f[4] {
            "error" => assert_eq!(param(&r).as_deref(), Some("messages"), "{line}"),
            want => {
                let want: Value = serde_json::from_str(want).unwrap();
                assert_eq!(encode(&r)["contents"][0]["parts"][0], want, "{line}");
            }
        }
    }
}

#[test]
fn generation_config_and_limits() {
    let mut r = req(vec![user(vec![t("hi")])]);
    r.max_tokens = Some(256);
    r.sampling.temperature = Some(0.7);
    r.sampling.top_p = Some(0.95);
    r.sampling.top_k = Some(40);
    r.sampling.seed = Some(42);
    r.sampling.presence_penalty = Some(0.5);
    r.sampling.frequency_penalty = Some(-0.25);
    r.sampling.stop = vec!["\n\n".into(), "".into(), "END".into()];
    r.n = Some(1);
    r.response_format = Some(ResponseFormat::JsonObject);
    r.user = Some("ignored".into());
    let opts = VendorOptions {
        default_max_tokens: Some(4096),
        ..VendorOptions::default()
    };
    assert_eq!(
        encode_with(&r, &opts).unwrap()["generationConfig"],
        json!({
            "maxOutputTokens": 256, "temperature": 0.7, "topP": 0.95, "topK": 40, "seed": 42,
            "presencePenalty": 0.5, "frequencyPenalty": -0.25, "candidateCount": 1,
            "stopSequences": ["\n\n", "END"], "responseMimeType": "application/json"
        })
    );
    // The provider's default applies only when the client gave none.
    let r = req(vec![user(vec![t("hi")])]);
    assert_eq!(
        encode_with(&r, &opts).unwrap()["generationConfig"],
        json!({"maxOutputTokens": 4096})
    );
    assert!(encode(&r).get("generationConfig").is_none());
    let mut r = req(vec![user(vec![t("hi")])]);
    r.n = Some(2);
    assert_eq!(param(&r).as_deref(), Some("n"));
    // json_schema: cleaned; an empty object schema says nothing.
    for (schema, want) in [
        (
            json!({"type": "object", "additionalProperties": false, "required": ["d"],
                   "properties": {"d": {"type": "string", "format": "date-time"}, "p": {"type": "array", "items": {"type": "string"}}}}),
            json!({"type": "object", "required": ["d"], "properties": {"d": {"type": "string", "format": "date-time"}, "p": {"type": "array", "items": {"type": "string"}}}}),
        ),
        (json!({"type": "object", "properties": {}}), Value::Null),
    ] {
        let mut r = req(vec![user(vec![t("hi")])]);
        r.response_format = Some(ResponseFormat::JsonSchema {
            name: None,
            schema: Some(raw(schema)),
            strict: Some(true),
        });
        let gc = &encode(&r)["generationConfig"];
        assert_eq!(gc["responseMimeType"], "application/json");
        assert_eq!(gc["responseSchema"], want);
    }
}

#[test]
fn thinking_config() {
    use ReasoningConfig::{Budget, Dynamic, Effort as E};
    let cases = [
        (Family::OpenAi, E(Effort::None), 0, false),
        (Family::OpenAi, E(Effort::Minimal), 512, false),
        (Family::OpenAi, E(Effort::Medium), 8192, false),
        (Family::OpenAi, E(Effort::XHigh), 24576, false),
        (Family::OpenAi, Budget(2048), 2048, false),
        (Family::Anthropic, Budget(2048), 2048, true),
        (Family::Anthropic, Budget(0), 0, false),
        (Family::Anthropic, Dynamic, -1, true),
    ];
    for (origin, reasoning, budget, include) in cases {
        let want = json!({"thinkingBudget": budget, "includeThoughts": include});
        let mut r = req(vec![user(vec![t("hi")])]);
        r.extra.origin = origin;
        r.reasoning = Some(reasoning);
        assert_eq!(
            encode(&r)["generationConfig"]["thinkingConfig"],
            want,
            "{reasoning:?}"
        );
    }
    // OpenAI clients opt in to thought text; Google's extra_body convention.
    let mut r = req(vec![user(vec![t("hi")])]);
    r.reasoning = Some(ReasoningConfig::Effort(Effort::Low));
    r.extra.fields = vec![("include_reasoning".into(), raw(json!(true)))];
    assert_eq!(
        encode(&r)["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    for key in ["extra_body", "google"] {
        let google = json!({"thinking_config": {"thinking_level": "high", "include_thoughts": true}, "cached_content": "cachedContents/abc"});
        let value = if key == "google" {
            google
        } else {
            json!({"google": google})
        };
        r.extra.fields = vec![
            (key.into(), raw(value)),
            ("safetySettings".into(), raw(json!([]))),
        ];
        let body = encode(&r);
        assert_eq!(
            body["generationConfig"]["thinkingConfig"],
            json!({"includeThoughts": true, "thinkingLevel": "high"})
        );
        assert_eq!(body["cachedContent"], "cachedContents/abc");
        assert!(
            body.get("safetySettings").is_none() && body.get(key).is_none(),
            "OpenAI extras are not Gemini fields"
        );
    }
    // A Gemini-origin request's own fields go through as they are.
    r.extra.origin = Family::Gemini;
    r.extra.fields = vec![
        ("safetySettings".into(), raw(json!([{"category": "X"}]))),
        ("contents".into(), raw(json!([]))),
    ];
    let body = encode(&r);
    assert_eq!(body["safetySettings"], json!([{"category": "X"}]));
    assert_eq!(
        body["contents"][0]["parts"][0]["text"], "hi",
        "own keys are not overwritten"
    );
}

fn weather() -> Value {
    json!({"type": "object", "properties": {"city": {"type": "string", "description": "City"}}, "required": ["city"]})
}

#[test]
fn tools_and_tool_choice() {
    let mut r = req(vec![user(vec![t("Weather?")])]);
    let mut get_weather = tool("get_weather", weather());
    get_weather.description = Some("Current weather.".into());
    let mut patch = tool("apply_patch", Value::Null);
    (patch.kind, patch.parameters, patch.description) =
        (ToolKind::Custom, None, Some("Apply a patch.".into()));
    r.tools = vec![
        get_weather,
        tool(
            "list_files",
            json!({"type": "object", "properties": {}, "required": []}),
        ),
        tool(
            "set_env",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
        ),
        patch,
    ];
    let body = encode(&r);
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Current weather.", "parameters": weather()},
            {"name": "list_files"},
            {"name": "set_env"},
            {"name": "apply_patch", "description": "Apply a patch.", "parameters": {"type": "object",
                "properties": {"input": {"type": "string", "description": "The tool's freeform input."}}, "required": ["input"]}}
        ]}])
    );
    assert!(
        body.get("toolConfig").is_none(),
        "no tool_choice: Gemini's default AUTO"
    );
    for (choice, want) in [
        (ToolChoice::Auto, json!({"mode": "AUTO"})),
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (
            ToolChoice::Tool("set_env".into()),
            json!({"mode": "ANY", "allowedFunctionNames": ["set_env"]}),
        ),
    ] {
        r.tool_choice = Some(choice);
        assert_eq!(
            encode(&r)["toolConfig"],
            json!({"functionCallingConfig": want})
        );
    }
    r.tool_choice = Some(ToolChoice::Tool("launch_rockets".into()));
    assert_eq!(param(&r).as_deref(), Some("tool_choice"));
    r.tools.clear();
    let body = encode(&r);
    assert!(body.get("tools").is_none() && body.get("toolConfig").is_none());
}

/// Google's documented flow: two parallel calls (signature on the first),
/// the client runs them and sends the results back with the turn intact.
#[test]
fn gemini_tool_loop_keeps_signatures() {
    let answer = br#"{"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Checking both cities.", "thought": true},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7sigA=="},
            {"functionCall": {"name": "get_weather", "args": {"city": "London", "unit": "celsius"}}}
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 30, "thoughtsTokenCount": 120, "totalTokenCount": 220},
        "modelVersion": "gemini-3-pro-preview", "responseId": "mCr1aP-gIqGOz7IPtcHJ6QM"}"#;
    let a = GeminiGenerate.decode_answer(answer).unwrap();
    assert_eq!(
        (a.id.as_ref(), a.model.as_ref()),
        ("mCr1aP-gIqGOz7IPtcHJ6QM", "gemini-3-pro-preview")
    );
    assert_eq!(a.finish, Some(Finish::ToolCalls));
    assert_eq!(
        (a.usage.completion_tokens, a.usage.reasoning_tokens),
        (150, 120)
    );
    let ids: Vec<String> = (a.parts.iter())
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(c.id.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        ids[0].starts_with("call_0_get_weather_") && ids[1].starts_with("call_1_get_weather_"),
        "{ids:?}"
    );
    let r = req(vec![
        user(vec![t("Weather in Paris and London?")]),
        model(a.parts.clone()),
        user(vec![
            result(&ids[0], r#"{"temp_c": 18}"#),
            result(&ids[1], "12C and raining"),
            t("Which is warmer?"),
        ]),
    ]);
    // The unsigned thought summary is not sent back (Gemini's state rides
    // on the signature); only the first call carries it.
    assert_eq!(
        encode(&r)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris and London?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7sigA=="},
                {"functionCall": {"name": "get_weather", "args": {"city": "London", "unit": "celsius"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
                {"functionResponse": {"name": "get_weather", "response": {"content": "12C and raining"}}},
                {"text": "Which is warmer?"}
            ]}
        ])
    );
}

/// Histories from other vendors (or clients that lost the signature): the
/// first call of each model turn gets Google's placeholder, nothing else.
#[test]
fn foreign_calls_results_and_reasoning() {
    let thinking = |text: &'static str, s| {
        Part::Reasoning(Reasoning {
            text: text.into(),
            signature: s,
            redacted: None,
        })
    };
    let mut custom = call("c4", "apply_patch", "*** Begin Patch", None);
    if let Part::ToolCall(c) = &mut custom {
        c.kind = ToolKind::Custom;
    }
    let mut named = result("elsewhere", "[1, 2, 3]");
    if let Part::ToolResult(r) = &mut named {
        (r.name, r.is_error) = (Some("count".into()), true);
    }
    let r = req(vec![
        user(vec![t("go")]),
        model(vec![
            thinking("Let me think.", sig(Family::Anthropic, "EqQBCkYIARgC")),
            call("c1", "f", "", sig(Family::Anthropic, "x")),
            call("c2", "g", "{oops", None),
        ]),
        user(vec![result("c1", "1"), result("c2", "  ")]),
        model(vec![
            t("Done."),
            thinking("", sig(Family::Gemini, "dGV4dA==")),
            thinking("Next step.", sig(Family::Gemini, "dGhvdWdodA==")),
            call("c3", "f", r#"{"a": [1, 2]}"#, sig(Family::Gemini, "real")),
            custom,
            Part::Opaque {
                family: Family::Gemini,
                raw: raw(json!({"executableCode": {"code": "1"}})),
            },
            Part::Opaque {
                family: Family::Anthropic,
                raw: raw(json!({"type": "server_tool_use"})),
            },
        ]),
        user(vec![result("c3", "ok"), named]),
    ]);
    assert_eq!(
        encode(&r)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"name": "g", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"content": "1"}}},
                {"functionResponse": {"name": "g", "response": {"content": "  "}}}
            ]},
            {"role": "model", "parts": [
                {"text": "Done.", "thoughtSignature": "dGV4dA=="},
                {"text": "Next step.", "thought": true, "thoughtSignature": "dGhvdWdodA=="},
                {"functionCall": {"name": "f", "args": {"a": [1, 2]}}, "thoughtSignature": "real"},
                {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}},
                {"executableCode": {"code": "1"}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"content": "ok"}}},
                {"functionResponse": {"name": "count", "response": {"error": "[1, 2, 3]"}}}
            ]}
        ])
    );
    // A result whose call is unknown and that has no name cannot be sent.
    let r = req(vec![user(vec![t("hi")]), user(vec![result("nope", "x")])]);
    assert!(encode_with(&r, &VendorOptions::default())
        .unwrap_err()
        .message
        .contains("nope"));
}

// ---------------------------------------------------------------- answers

fn answer(body: &str) -> Answer<'_> {
    GeminiGenerate.decode_answer(body.as_bytes()).unwrap()
}
fn answer_err(body: &str) -> ChatError {
    GeminiGenerate.decode_answer(body.as_bytes()).unwrap_err()
}
/// Parts as short strings, for golden comparisons.
fn parts(a: &Answer<'_>) -> Vec<String> {
    let sig = |s: &Option<Signature<'_>>| {
        s.as_ref()
            .map(|s| format!(" [{}:{}]", s.family.as_str(), s.value))
            .unwrap_or_default()
    };
    (a.parts.iter())
        .map(|p| match p {
            Part::Text(t) => format!("text {}", t.text),
            Part::Reasoning(r) => format!("think {}{}", r.text, sig(&r.signature)),
            Part::ToolCall(c) => format!(
                "call {} {} {}{}",
                c.id,
                c.name,
                c.arguments,
                sig(&c.signature)
            ),
            Part::Refusal(r) => format!("refusal {r}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn text_answer_with_usage() {
    let a = answer(
        r#"{"candidates": [{"content": {"parts": [{"text": "AI learns "}, {"text": "from data.", "thoughtSignature": "c2ln"}], "role": "model"},
            "finishReason": "STOP", "avgLogprobs": -0.12, "safetyRatings": [], "index": 0}],
          "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12, "thoughtsTokenCount": 30, "cachedContentTokenCount": 4,
            "totalTokenCount": 50, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]},
          "modelVersion": "gemini-2.5-flash", "responseId": "Aw5eaLjrHMWf1dkPkdXP4Ak"}"#,
    );
    assert_eq!(
        (a.id.as_ref(), a.model.as_ref(), a.finish.clone()),
        (
            "Aw5eaLjrHMWf1dkPkdXP4Ak",
            "gemini-2.5-flash",
            Some(Finish::Stop)
        )
    );
    assert!(a.created > 1_600_000_000);
    assert_eq!(
        parts(&a),
        ["text AI learns ", "text from data.", "think  [gemini:c2ln]"]
    );
    let want = Usage {
        prompt_tokens: 8,
        completion_tokens: 42,
        total_tokens: 50,
        cached_tokens: 4,
        cache_write_tokens: 0,
        reasoning_tokens: 30,
    };
    assert_eq!(a.usage, want);
    // Unknown parts and fields are ignored, malformed counts read as 0.
    let a = answer(
        r#"{"candidates": [{"content": {"parts": [{"executableCode": {"code": "print(1)"}}, {"text": "1."}, {"someFuturePart": {}}]},
            "finishReason": "STOP", "groundingMetadata": {}}], "usageMetadata": {"promptTokenCount": "x", "totalTokenCount": 5}, "other": [1]}"#,
    );
    assert_eq!(parts(&a), ["text 1."]);
    assert_eq!((a.usage.prompt_tokens, a.usage.total_tokens), (0, 5));
    assert!(
        a.id.starts_with("chatcmpl-"),
        "generated when Gemini gives none"
    );
}

#[test]
fn function_call_ids_and_arguments() {
    let body = |rid: &str| {
        format!(
            r#"{{"candidates": [{{"content": {{"parts": [
                {{"functionCall": {{"id": "fc_7f3a", "name": "get_time", "args": {{ "tz" : "UTC", "q": "a \" b" }}}}}},
                {{"functionCall": {{"name": "ping"}}}}, {{"functionCall": {{"name": "f", "args": null}}, "thoughtSignature": "s"}}]}}}}]{rid}}}"#
        )
    };
    let plain = body("");
    let a = answer(&plain);
    assert_eq!(
        parts(&a),
        [
            r#"call fc_7f3a get_time {"tz":"UTC","q":"a \" b"}"#,
            "call call_1_ping ping {}",
            "call call_2_f f {} [gemini:s]"
        ]
    );
    assert_eq!(
        a.finish,
        Some(Finish::ToolCalls),
        "no finishReason with calls"
    );
    let id = |rid: &str| parts(&answer(&body(&format!(r#","responseId":"{rid}""#))))[1].clone();
    assert_ne!(id("one"), id("two"));
    assert_eq!(id("one"), id("one"), "deterministic for one response");
    assert!(id("one").starts_with("call call_1_ping_"));
}

#[test]
fn finish_reasons_blocks_and_failures() {
    for (reason, want) in [
        ("STOP", Finish::Stop),
        ("MAX_TOKENS", Finish::Length),
        ("SAFETY", Finish::ContentFilter),
        ("RECITATION", Finish::ContentFilter),
        ("BLOCKLIST", Finish::ContentFilter),
        ("PROHIBITED_CONTENT", Finish::ContentFilter),
        ("SPII", Finish::ContentFilter),
        ("IMAGE_SAFETY", Finish::ContentFilter),
        ("OTHER", Finish::Other("OTHER".into())),
    ] {
        let body = format!(
            r#"{{"candidates": [{{"content": {{"parts": [{{"text": "x"}}]}}, "finishReason": "{reason}"}}]}}"#
        );
        assert_eq!(
            GeminiGenerate
                .decode_answer(body.as_bytes())
                .unwrap()
                .finish,
            Some(want),
            "{reason}"
        );
    }
    let a = answer(
        r#"{"candidates": [{"finishReason": "SAFETY", "safetyRatings": [{"blocked": true}]}], "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}}"#,
    );
    assert_eq!(
        (a.parts.len(), a.finish, a.usage.prompt_tokens),
        (0, Some(Finish::ContentFilter), 12)
    );
    // A blocked prompt is the policy's answer, not a failure.
    let a = answer(
        r#"{"promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "no"}, "usageMetadata": {"promptTokenCount": 9}}"#,
    );
    assert_eq!(
        parts(&a),
        ["refusal The prompt was blocked by Gemini (blockReason SAFETY): no"]
    );
    assert_eq!(
        (a.finish, a.usage.total_tokens),
        (Some(Finish::ContentFilter), 9)
    );
    assert!(answer_err(r#"{"candidates": []}"#)
        .message
        .contains("no candidates"));
    let e = answer_err(
        r#"{"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "Malformed function call: print(x"}]}"#,
    );
    assert!(
        e.message.contains("MALFORMED_FUNCTION_CALL") && e.message.contains("print(x"),
        "{e}"
    );
    let e = answer_err(
        r#"{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}"#,
    );
    assert_eq!(
        (e.status, e.kind, e.message.as_str()),
        (500, ErrorKind::Upstream, "Internal error encountered.")
    );
    assert_eq!(answer_err("{not json").kind, ErrorKind::Upstream);
}

// ---------------------------------------------------------------- errors

/// An error as "status kind code/vendor_type: message".
fn err_line(e: &ChatError) -> String {
    let (code, vendor) = (e.code.as_deref(), e.vendor_type.as_deref());
    let word = |w: Option<&str>| w.unwrap_or("-").to_string();
    format!(
        "{} {:?} {}/{}: {}",
        e.status,
        e.kind,
        word(code),
        word(vendor),
        e.message
    )
}

#[test]
fn google_errors() {
    for (http, status, want) in [
        (400, "INVALID_ARGUMENT", "400 InvalidRequest"),
        (400, "FAILED_PRECONDITION", "400 InvalidRequest"),
        (401, "UNAUTHENTICATED", "401 Authentication"),
        (403, "PERMISSION_DENIED", "403 Permission"),
        (404, "NOT_FOUND", "404 NotFound"),
        (429, "RESOURCE_EXHAUSTED", "429 RateLimited"),
        (500, "INTERNAL", "500 Upstream"),
        (503, "UNAVAILABLE", "503 Overloaded"),
        (504, "DEADLINE_EXCEEDED", "504 Timeout"),
    ] {
        let body = json!({"error": {"code": http, "message": "it happened", "status": status}});
        let e = GeminiGenerate.decode_error(http, body.to_string().as_bytes());
        assert_eq!(
            err_line(&e),
            format!("{want} {status}/{status}: it happened")
        );
    }
    let key = r#"{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}"#;
    let quota = r#"[{"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED"}}]"#;
    let long = r#"{"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}"#;
    for (http, body, want) in [
        (400, key, "401 Authentication API_KEY_INVALID/INVALID_ARGUMENT: API key not valid."),
        (429, quota, "429 RateLimited RESOURCE_EXHAUSTED/RESOURCE_EXHAUSTED: You exceeded your current quota."),
        (400, long, "400 ContextLength INVALID_ARGUMENT/INVALID_ARGUMENT: The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."),
        (502, "<html>Bad Gateway</html>", "502 Upstream -/-: Gemini returned HTTP 502: <html>Bad Gateway</html>"),
        (200, "", "502 Upstream -/-: Gemini returned HTTP 200"),
        (418, r#"{"error": "teapot"}"#, "418 Upstream -/-: teapot"),
    ] {
        assert_eq!(err_line(&GeminiGenerate.decode_error(http, body.as_bytes())), want);
    }
}

// ---------------------------------------------------------------- streams

fn render(ev: &Event<'_>) -> String {
    match ev {
        Event::Start { id, model } => format!("start {id} {model}"),
        Event::BlockStart { index, block } => match block {
            Block::ToolCall { id, name, .. } => format!("{index}+call {id} {name}"),
            other => format!("{index}+{other:?}"),
        },
        Event::Delta { index, delta } => match delta {
            Delta::Text(t) => format!("{index} Text {t}"),
            Delta::Reasoning(t) => format!("{index} Reasoning {t}"),
            Delta::ToolArguments(t) => format!("{index} ToolArguments {t}"),
            Delta::Refusal(t) => format!("{index} Refusal {t}"),
            Delta::Signature(s) | Delta::Redacted(s) => {
                format!("{index} sig {}:{}", s.family.as_str(), s.value)
            }
        },
        Event::BlockStop { index } => format!("{index}-"),
        Event::Usage(u) => format!(
            "usage {}/{}/{} c{} r{}",
            u.prompt_tokens,
            u.completion_tokens,
            u.total_tokens,
            u.cached_tokens,
            u.reasoning_tokens
        ),
        Event::Stop { finish } => format!("stop {finish:?}"),
        Event::Error(e) => format!("error {} {:?} {}", e.status, e.kind, e.message),
    }
}

/// The events of an SSE body fed in `chunks`, and how `finish` went.
fn run(chunks: &[&[u8]], clean: bool) -> (Vec<String>, Result<(), ChatError>) {
    let mut dec = GeminiGenerate.stream_decoder();
    let mut parser = SseParser::default();
    let mut out = Vec::new();
    let mut sink = |ev: Event<'_>| out.push(render(&ev));
    for c in chunks {
        for e in parser.push(c) {
            if let Err(err) = dec.push(&e.event, &e.data, &mut sink) {
                return (out, Err(err));
            }
        }
    }
    if let Some(e) = parser.finish() {
        dec.push(&e.event, &e.data, &mut sink).unwrap();
    }
    let end = dec.finish(clean, &mut sink);
    (out, end)
}

fn sse(chunks: &[&str]) -> String {
    chunks
        .iter()
        .map(|c| format!("data: {c}\r\n\r\n"))
        .collect()
}

#[test]
fn stream_fixture_split_at_every_byte() {
    let body = include_bytes!("../../../../tests/fixtures/gemini_stream.sse");
    let salt = decode::call_salt(Some("mAitaL3yDs-DnvgP7cS2gQ0")).unwrap();
    let want = [
        "start mAitaL3yDs-DnvgP7cS2gQ0 gemini-2.5-flash".to_string(),
        "0+Text".into(),
        "0 Text The".into(),
        "usage 8/0/8 c0 r0".into(),
        "0 Text  quick brown fox jumps".into(),
        "0-".into(),
        format!("1+call call_0_get_weather_{salt} get_weather"),
        r#"1 ToolArguments {"location":"Paris"}"#.into(),
        "1 sig gemini:CiQB0e2Kb2RlIHNpZ25hdHVyZQ==".into(),
        "1-".into(),
        "usage 8/24/32 c0 r12".into(),
        "stop ToolCalls".into(),
    ];
    let (events, end) = run(&[body], true);
    assert_eq!(events, want);
    assert!(end.is_ok());
    for i in 0..=body.len() {
        let (events, end) = run(&[&body[..i], &body[i..]], true);
        assert_eq!(events, want, "split at {i}");
        assert!(end.is_ok());
    }
}

#[test]
fn stream_thoughts_signatures_and_held_stop() {
    let body = sse(&[
        r#"{"candidates":[{"content":{"parts":[{"text":"**Plan**","thought":true}],"role":"model"}}],"responseId":"x"}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":" more","thought":true,"thoughtSignature":"dA=="},{"text":"42"}]}}]}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"","thoughtSignature":"c2ln"}]},"finishReason":"MAX_TOKENS"}]}"#,
        r#"{"candidates":[],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":4,"totalTokenCount":9}}"#,
    ]);
    let (events, end) = run(&[body.as_bytes()], true);
    let want = [
        "start x ",
        "0+Reasoning",
        "0 Reasoning **Plan**",
        "0 Reasoning  more",
        "0 sig gemini:dA==",
        "0-",
        "1+Text",
        "1 Text 42",
        "1-",
        "2+Reasoning",
        "2 sig gemini:c2ln",
        "2-",
        "usage 3/6/9 c0 r4",
        "stop Length",
    ];
    assert_eq!(
        events, want,
        "the Stop waits for the usage after the finish"
    );
    assert!(end.is_ok());
    // Without usage after the finish, Stop comes at the end.
    let body =
        sse(&[r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}"#]);
    let (events, end) = run(&[body.as_bytes()], true);
    assert!(events[0].starts_with("start chatcmpl-"));
    assert_eq!(events[1..], ["0+Text", "0 Text Hi", "0-", "stop Stop"]);
    assert!(end.is_ok());
}

#[test]
fn stream_blocks_errors_and_truncation() {
    let blocked = sse(&[
        r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":15,"totalTokenCount":15},"responseId":"b"}"#,
    ]);
    let (events, end) = run(&[blocked.as_bytes()], true);
    let refusal = "0 Refusal The prompt was blocked by Gemini (blockReason PROHIBITED_CONTENT)";
    assert_eq!(
        events,
        [
            "start b ",
            "0+Refusal",
            refusal,
            "0-",
            "usage 15/0/15 c0 r0",
            "stop ContentFilter"
        ]
    );
    assert!(end.is_ok());
    let overloaded =
        r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
    let malformed = r#"{"candidates":[{"finishReason":"MALFORMED_FUNCTION_CALL"}]}"#;
    for (bad, want) in [
        (overloaded, "error 503 Overloaded The model is overloaded."),
        (malformed, "error 502 Upstream Gemini failed to produce a valid function call (finishReason MALFORMED_FUNCTION_CALL)"),
    ] {
        let first = r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}],"responseId":"r"}"#;
        let body = sse(&[first, bad, first]);
        let (events, end) = run(&[body.as_bytes()], true);
        assert_eq!(events[1..], ["0+Text", "0 Text Hi", want], "nothing follows an error");
        assert!(end.is_ok());
    }
    let (_, end) = run(&[b"data: {not json\n\n"], true);
    assert_eq!(end.unwrap_err().kind, ErrorKind::Upstream);
    let text = sse(&[r#"{"candidates":[{"content":{"parts":[{"text":"Once"}]}}]}"#]);
    let (_, end) = run(&[text.as_bytes()], true);
    assert!(
        end.unwrap_err().message.contains("finishReason"),
        "clean end without a finish: truncated"
    );
    let done = sse(&[
        r#"{"candidates":[{"content":{"parts":[{"text":"Done."}]},"finishReason":"STOP"}]}"#,
    ]);
    let (_, end) = run(&[done.as_bytes()], false);
    assert!(end.unwrap_err().message.contains("cut off"));
    assert!(
        run(&[b""], true).1.is_err(),
        "an empty stream is truncated too"
    );
}

// ---------------------------------------------------------------- schemas

/// Function parameters as Gemini gets them.
fn declared(params: Value) -> Value {
    let mut r = req(vec![user(vec![t("go")])]);
    r.tools = vec![tool("f", params)];
    encode(&r)["tools"][0]["functionDeclarations"][0]["parameters"].take()
}

/// A tool schema as a coding agent's pydantic/zod models produce it.
#[test]
fn coding_agent_schema_is_cleaned() {
    let params = json!({
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "EditFilesInput", "type": "object", "additionalProperties": false,
        "$defs": {
            "Edit": {"type": "object", "title": "Edit", "additionalProperties": false, "required": ["old_string", "new_string"], "properties": {
                "old_string": {"type": "string", "description": "Exact text to replace", "minLength": 1},
                "new_string": {"type": "string"}, "replace_all": {"type": "boolean", "default": false}}},
            "Mode": {"type": "string", "enum": ["apply", "dry_run"], "description": "How to apply"}
        },
        "properties": {
            "path": {"type": "string", "format": "uri", "examples": ["src/main.rs"]},
            "edits": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/Edit"}},
            "mode": {"$ref": "#/$defs/Mode", "default": "apply"},
            "encoding": {"type": ["string", "null"], "default": null},
            "kind": {"const": "edit"},
            "timeout_ms": {"anyOf": [{"type": "integer", "minimum": 0, "exclusiveMaximum": 600000}, {"type": "null"}], "description": "Optional timeout"},
            "options": {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
            "tags": {"type": "array"}
        },
        "required": ["path", "edits", "ghost_field"]
    });
    assert_eq!(
        declared(params),
        json!({"title": "EditFilesInput", "type": "object", "required": ["path", "edits"], "properties": {
            "path": {"type": "string", "format": "uri"},
            "edits": {"type": "array", "minItems": 1, "items": {"type": "object", "title": "Edit", "required": ["old_string", "new_string"], "properties": {
                "old_string": {"type": "string", "description": "Exact text to replace", "minLength": 1},
                "new_string": {"type": "string"}, "replace_all": {"type": "boolean"}}}},
            "mode": {"type": "string", "description": "How to apply", "enum": ["apply", "dry_run"]},
            "encoding": {"nullable": true, "type": "string"},
            "kind": {"type": "string", "enum": ["edit"]},
            "timeout_ms": {"type": "integer", "minimum": 0, "nullable": true, "description": "Optional timeout"},
            "options": {"type": "object"},
            "tags": {"type": "array", "items": {"type": "string"}}
        }})
    );
}

#[test]
fn refs_unions_and_enums() {
    let schema = json!({"type": "object",
    "definitions": {"Node": {"type": "object", "description": "A tree node", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}}}}},
    "properties": {
        "root": {"$ref": "#/definitions/Node"},
        "missing": {"$ref": "#/definitions/Nope", "description": "dangling"},
        "self": {"$ref": "#"},
        "id": {"type": ["string", "integer"], "description": "Name or number", "minLength": 1, "minimum": 1},
        "level": {"type": "integer", "enum": [1, 2, 3], "description": "Log level."},
        "flag": {"enum": ["on", "off", null]},
        "target": {"oneOf": [
            {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"]},
            {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}]},
        "merged": {"allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "number"}}, "required": ["b"]}]},
        "nothing": {"type": "null"},
        "free": true,
        "pair": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]}
    }});
    assert_eq!(
        clean_schema(&schema)["properties"],
        json!({
            "root": {"type": "object", "description": "A tree node", "properties": {
                "name": {"type": "string"}, "children": {"type": "array", "items": {"type": "object", "description": "A tree node"}}}},
            "missing": {"description": "dangling", "type": "string"},
            "self": {"type": "object"},
            "id": {"description": "Name or number", "anyOf": [{"minLength": 1, "type": "string"}, {"minimum": 1, "type": "integer"}]},
            "level": {"type": "integer", "description": "Log level. Allowed values: 1, 2, 3."},
            "flag": {"nullable": true, "type": "string", "enum": ["on", "off"]},
            "target": {"anyOf": [
                {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"]},
                {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}]},
            "merged": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number"}}, "required": ["a", "b"]},
            "nothing": {"nullable": true, "type": "string"},
            "free": {"type": "string"},
            "pair": {"type": "array", "items": {"type": "number"}}
        })
    );
    // A union at the root becomes one object: every property, the common required.
    let root = json!({"anyOf": [
        {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}, "required": ["path", "line"]},
        {"type": "object", "properties": {"path": {"type": "string"}, "url": {"type": "string"}}, "required": ["path"]}]});
    assert_eq!(
        declared(root),
        json!({"type": "object", "required": ["path"],
            "properties": {"path": {"type": "string"}, "line": {"type": "integer"}, "url": {"type": "string"}}})
    );
}

#[test]
fn schema_cleaning_is_bounded() {
    // Each level references the next twice: 2^30 expansions unbounded.
    let mut defs = serde_json::Map::new();
    for i in 0..30 {
        let next = json!({"$ref": format!("#/$defs/L{}", i + 1)});
        defs.insert(
            format!("L{i}"),
            json!({"type": "object", "properties": {"a": next, "b": next}}),
        );
    }
    defs.insert("L30".into(), json!({"type": "string"}));
    let schema =
        json!({"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/L0"}}});
    assert_eq!(clean_schema(&schema)["properties"]["x"]["type"], "object");
    // Deep nesting stops at a bare object.
    let mut deep = json!({"type": "string"});
    for _ in 0..60 {
        deep = json!({"type": "object", "properties": {"n": deep}});
    }
    let mut node = &clean_schema(&deep);
    let mut depth = 0;
    while let Some(n) = node.get("properties").and_then(|p| p.get("n")) {
        (node, depth) = (n, depth + 1);
    }
    assert!(depth < 45 && node["type"] == "object", "{depth}");
}
