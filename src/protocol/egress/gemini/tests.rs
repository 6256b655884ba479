use super::*;
use crate::protocol::chat::{
    Block, Delta, Effort, Event, Finish, Signature, Text, Tool, ToolCall, ToolResult, Turn, Usage,
};
use crate::protocol::sse::SseParser;
use serde_json::{json, Value};

fn j(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}
fn raw(v: &Value) -> Cow<'static, RawValue> {
    Cow::Owned(RawValue::from_string(v.to_string()).unwrap())
}
fn owned(v: &Value) -> Option<Cow<'static, str>> {
    v.as_str().map(|s| Cow::Owned(s.to_string()))
}
fn family(v: &Value) -> Family {
    match v.as_str() {
        Some("gemini") => Family::Gemini,
        Some("anthropic") => Family::Anthropic,
        _ => Family::OpenAi,
    }
}

/// A request in a compact notation: `{"system": [text], "turns": [["user" |
/// "model", part, ...]], "tools": [{"name", "description", "parameters",
/// "custom": true}]}`. A part is a string (text), `{"refusal"}`, `{"think",
/// "sig"}`, `{"call": [id, name, args], "sig", "custom": true}`, `{"result":
/// [id, text], "name", "error": true}`, `{"opaque": family, "raw"}` or
/// `{"media": kind, "mime", "name", and "b64" | "url" | "file": [family,
/// id]}`; a `sig` is `[family, value]`.
fn request(spec: &str) -> Request<'static> {
    let spec = j(spec);
    let mut r = Request::new("gemini-2.5-flash", Family::OpenAi);
    let list = |key| spec[key].as_array().cloned().unwrap_or_default();
    r.system = list("system").iter().map(part).collect();
    for turn in list("turns") {
        let turn = turn.as_array().unwrap();
        let role = match turn[0].as_str() {
            Some("user") => Role::User,
            _ => Role::Assistant,
        };
        let parts = turn[1..].iter().map(part).collect();
        r.turns.push(Turn { role, parts });
    }
    for t in list("tools") {
        let kind = t["custom"]
            .as_bool()
            .map_or(ToolKind::Function, |_| ToolKind::Custom);
        let (name, description) = (owned(&t["name"]).unwrap(), owned(&t["description"]));
        let parameters = t.get("parameters").map(raw);
        let (strict, format, cache) = (None, None, None);
        r.tools.push(Tool {
            kind,
            name,
            description,
            parameters,
            strict,
            format,
            cache,
        });
    }
    r
}
fn part(p: &Value) -> Part<'static> {
    let s = |key: &str| owned(&p[key]);
    let signature = p["sig"]
        .as_array()
        .map(|s| Signature::new(family(&s[0]), owned(&s[1]).unwrap()));
    if let Some(text) = owned(p) {
        Part::Text(Text::plain(text))
    } else if let Some(refusal) = s("refusal") {
        Part::Refusal(refusal)
    } else if let Some(text) = s("think") {
        Part::reasoning(text, signature, None)
    } else if let Some(c) = p.get("call") {
        let kind = p["custom"]
            .as_bool()
            .map_or(ToolKind::Function, |_| ToolKind::Custom);
        let [id, name, arguments] = [0, 1, 2].map(|i| owned(&c[i]).unwrap());
        Part::ToolCall(ToolCall {
            id,
            name,
            kind,
            arguments,
            signature,
        })
    } else if let Some(r) = p.get("result") {
        let (call_id, content, name) = (owned(&r[0]).unwrap(), vec![part(&r[1])], s("name"));
        let (is_error, cache) = (p["error"] == true, None);
        Part::ToolResult(ToolResult {
            call_id,
            name,
            content,
            is_error,
            cache,
        })
    } else if let Some(f) = p.get("opaque") {
        Part::Opaque {
            family: family(f),
            raw: raw(&p["raw"]),
        }
    } else {
        let kind = match p["media"].as_str() {
            Some("image") => MediaKind::Image,
            Some("audio") => MediaKind::Audio,
            _ => MediaKind::Document,
        };
        let source = match (s("b64"), p["file"].as_array()) {
            (Some(data), _) => MediaSource::Base64 { data },
            (_, Some(f)) => MediaSource::FileId {
                family: family(&f[0]),
                id: owned(&f[1]).unwrap(),
            },
            _ => MediaSource::Url(s("url").unwrap()),
        };
        let (mime, name, detail, cache) = (s("mime"), s("name"), None, None);
        Part::Media(Media {
            kind,
            mime,
            source,
            name,
            detail,
            cache,
        })
    }
}
fn hi() -> Request<'static> {
    request(r#"{"turns": [["user", "hi"]]}"#)
}
fn encode_with(r: &Request<'_>, opts: &VendorOptions) -> Result<Value, ChatError> {
    let bytes = GeminiGenerate.encode_request(r, "gemini-2.5-flash", opts)?;
    Ok(serde_json::from_slice(&bytes).unwrap())
}
fn encode(r: &Request<'_>) -> Value {
    encode_with(r, &VendorOptions::default()).unwrap()
}
fn error(r: &Request<'_>) -> ChatError {
    encode_with(r, &VendorOptions::default()).unwrap_err()
}

// ---------------------------------------------------------------- requests

/// Requests in the notation of `request` and what Gemini gets: the whole
/// body, or `!param` for an invalid request.
#[test]
fn request_bodies() {
    let cases = [
        // Roles, merged same-role turns, empty text dropped, refusals as text.
        (
            r#"{"system": ["You are terse.", "Answer in French."], "turns": [["user", "Hi", ""], ["user", "How are you?"],
            ["model", "Blue.", {"refusal": "Or not."}], ["model", "Or green."], ["user", "Another?"]]}"#,
            r#"{"systemInstruction": {"parts": [{"text": "You are terse.\n\nAnswer in French."}]}, "contents": [
            {"role": "user", "parts": [{"text": "Hi"}, {"text": "How are you?"}]},
            {"role": "model", "parts": [{"text": "Blue."}, {"text": "Or not."}, {"text": "Or green."}]},
            {"role": "user", "parts": [{"text": "Another?"}]}]}"#,
        ),
        // Nothing to send but a system text.
        (r#"{"system": ["x"], "turns": [["user", ""]]}"#, "!messages"),
        // Histories from other vendors (or clients that lost the signature):
        // the first call of each model turn gets Google's placeholder.
        (
            r#"{"turns": [["user", "go"],
            ["model", {"think": "Let me think.", "sig": ["anthropic", "EqQBCkYIARgC"]}, {"call": ["c1", "f", ""], "sig": ["anthropic", "x"]},
                {"call": ["c2", "g", "{oops"]}],
            ["user", {"result": ["c1", "1"]}, {"result": ["c2", "  "]}],
            ["model", "Done.", {"think": "", "sig": ["gemini", "dGV4dA=="]}, {"think": "Next step.", "sig": ["gemini", "dGhvdWdodA=="]},
                {"call": ["c3", "f", "{\"a\": [1, 2]}"], "sig": ["gemini", "real"]}, {"call": ["c4", "apply_patch", "*** Begin Patch"], "custom": true},
                {"opaque": "gemini", "raw": {"executableCode": {"code": "1"}}}, {"opaque": "anthropic", "raw": {"type": "server_tool_use"}}],
            ["user", {"result": ["c3", "ok"]}, {"result": ["elsewhere", "[1, 2, 3]"], "name": "count", "error": true}]]}"#,
            r#"{"contents": [{"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"name": "g", "args": {}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"content": "1"}}},
                {"functionResponse": {"name": "g", "response": {"content": "  "}}}]},
            {"role": "model", "parts": [
                {"text": "Done.", "thoughtSignature": "dGV4dA=="},
                {"text": "Next step.", "thought": true, "thoughtSignature": "dGhvdWdodA=="},
                {"functionCall": {"name": "f", "args": {"a": [1, 2]}}, "thoughtSignature": "real"},
                {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}},
                {"executableCode": {"code": "1"}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"content": "ok"}}},
                {"functionResponse": {"name": "count", "response": {"error": "[1, 2, 3]"}}}]}]}"#,
        ),
        // A result whose call is unknown and that has no name cannot be sent.
        (
            r#"{"turns": [["user", "hi"], ["user", {"result": ["nope", "x"]}]]}"#,
            "!messages",
        ),
        // Media: inline, data: URLs, http(s) URLs and Gemini files; MIME
        // types from the part, the name, the URL, or the kind.
        (
            r#"{"turns": [["user", {"media": "image", "mime": "image/png", "b64": "iVBO"},
            {"media": "image", "url": "data:image/gif;charset=x;base64,R0lG"},
            {"media": "image", "url": "https://x.org/cat.WEBP?size=large#top"}, {"media": "image", "url": "https://x.org/render?id=7"},
            {"media": "document", "b64": "UEsD", "name": "notes.txt"}, {"media": "audio", "mime": "audio/mp3", "b64": "SUQz"},
            {"media": "document", "file": ["gemini", "files/abc"]}]]}"#,
            r#"{"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
            {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.org/cat.WEBP?size=large#top"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.org/render?id=7"}},
            {"inlineData": {"mimeType": "text/plain", "data": "UEsD"}}, {"inlineData": {"mimeType": "audio/mp3", "data": "SUQz"}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "files/abc"}}]}]}"#,
        ),
        (
            r#"{"turns": [["user", {"media": "image", "url": "ftp://host/a.png"}]]}"#,
            "!messages",
        ),
        (
            r#"{"turns": [["user", {"media": "image", "url": "data:image/png,plain"}]]}"#,
            "!messages",
        ),
        (
            r#"{"turns": [["user", {"media": "image", "file": ["openai", "file-abc"]}]]}"#,
            "!messages",
        ),
    ];
    for (spec, want) in cases {
        let r = request(spec);
        match want.strip_prefix('!') {
            Some(param) => assert_eq!(error(&r).param.as_deref(), Some(param), "{spec}"),
            None => assert_eq!(encode(&r), j(want), "{spec}"),
        }
    }
    let e = error(&request(cases[3].0));
    assert!(e.message.contains("nope"), "{e}");
}

#[test]
fn generation_config_and_limits() {
    let mut r = hi();
    let s = &mut r.sampling;
    (s.temperature, s.top_p, s.top_k, s.seed) = (Some(0.7), Some(0.95), Some(40), Some(42));
    (s.presence_penalty, s.frequency_penalty) = (Some(0.5), Some(-0.25));
    s.stop = vec!["\n\n".into(), "".into(), "END".into()];
    (r.max_tokens, r.n, r.user) = (Some(256), Some(1), Some("ignored".into()));
    r.response_format = Some(ResponseFormat::JsonObject);
    let opts = VendorOptions {
        default_max_tokens: Some(4096),
        ..VendorOptions::default()
    };
    let want = r#"{"maxOutputTokens": 256, "temperature": 0.7, "topP": 0.95, "topK": 40, "seed": 42, "presencePenalty": 0.5,
        "frequencyPenalty": -0.25, "candidateCount": 1, "stopSequences": ["\n\n", "END"], "responseMimeType": "application/json"}"#;
    assert_eq!(encode_with(&r, &opts).unwrap()["generationConfig"], j(want));
    // The provider's default applies only when the client gave none.
    let want = json!({"maxOutputTokens": 4096});
    assert_eq!(encode_with(&hi(), &opts).unwrap()["generationConfig"], want);
    assert!(encode(&hi()).get("generationConfig").is_none());
    let mut r = hi();
    r.n = Some(2);
    assert_eq!(error(&r).param.as_deref(), Some("n"));
    // json_schema: cleaned; an empty object schema says nothing.
    let json_schema = |schema: &str| {
        let mut r = hi();
        let (name, schema, strict) = (None, Some(raw(&j(schema))), Some(true));
        r.response_format = Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        });
        let gc = encode(&r)["generationConfig"].take();
        assert_eq!(gc["responseMimeType"], "application/json");
        gc["responseSchema"].clone()
    };
    let (d, p) = (
        r#""d": {"type": "string", "format": "date-time"}"#,
        r#""p": {"type": "array", "items": {"type": "string"}}"#,
    );
    let schema = format!(
        r#"{{"type": "object", "additionalProperties": false, "required": ["d"], "properties": {{{d}, {p}}}}}"#
    );
    let want = format!(r#"{{"type": "object", "required": ["d"], "properties": {{{d}, {p}}}}}"#);
    assert_eq!(json_schema(&schema), j(&want));
    assert_eq!(
        json_schema(r#"{"type": "object", "properties": {}}"#),
        Value::Null
    );
}

#[test]
fn thinking_config() {
    use ReasoningConfig::{Budget, Dynamic, Effort as E};
    let thinking = |r: &Request<'_>| encode(r)["generationConfig"]["thinkingConfig"].take();
    let (o, a) = (Family::OpenAi, Family::Anthropic);
    for (origin, reasoning, budget, include) in [
        (o, E(Effort::None), 0, false),
        (o, E(Effort::Minimal), 512, false),
        (o, E(Effort::Medium), 8192, false),
        (o, E(Effort::XHigh), 24576, false),
        (o, Budget(2048), 2048, false),
        (a, Budget(2048), 2048, true),
        (a, Budget(0), 0, false),
        (a, Dynamic, -1, true),
    ] {
        let mut r = hi();
        (r.extra.origin, r.reasoning) = (origin, Some(reasoning));
        let want = json!({"thinkingBudget": budget, "includeThoughts": include});
        assert_eq!(thinking(&r), want, "{reasoning:?}");
    }
    // Extras as a JSON object.
    let extras = |fields: &str| -> Vec<_> {
        let fields: serde_json::Map<String, Value> = serde_json::from_str(fields).unwrap();
        fields
            .iter()
            .map(|(k, v)| (Cow::Owned(k.clone()), raw(v)))
            .collect()
    };
    // OpenAI clients opt in to thought text; Google's extra_body convention.
    let mut r = hi();
    r.reasoning = Some(ReasoningConfig::Effort(Effort::Low));
    r.extra.fields = extras(r#"{"include_reasoning": true}"#);
    assert_eq!(
        thinking(&r),
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    let google = r#"{"thinking_config": {"thinking_level": "high", "include_thoughts": true}, "cached_content": "cachedContents/abc"}"#;
    for fields in [
        format!(r#"{{"extra_body": {{"google": {google}}}, "safetySettings": []}}"#),
        format!(r#"{{"google": {google}, "safetySettings": []}}"#),
    ] {
        r.extra.fields = extras(&fields);
        let body = encode(&r);
        let want = json!({"includeThoughts": true, "thinkingLevel": "high"});
        assert_eq!(body["generationConfig"]["thinkingConfig"], want);
        assert_eq!(body["cachedContent"], "cachedContents/abc");
        let leaked = ["safetySettings", "extra_body", "google"].map(|k| body.get(k).is_some());
        assert_eq!(leaked, [false; 3], "OpenAI extras are not Gemini fields");
    }
    // A Gemini-origin request's own fields go through as they are.
    r.extra.origin = Family::Gemini;
    r.extra.fields = extras(r#"{"safetySettings": [{"category": "X"}], "contents": []}"#);
    let body = encode(&r);
    assert_eq!(body["safetySettings"], json!([{"category": "X"}]));
    let own = &body["contents"][0]["parts"][0]["text"];
    assert_eq!(own, "hi", "own keys are not overwritten");
}

#[test]
fn tools_and_tool_choice() {
    let weather = r#"{"type": "object", "properties": {"city": {"type": "string", "description": "City"}}, "required": ["city"]}"#;
    let mut r = request(&format!(
        r#"{{"turns": [["user", "Weather?"]], "tools": [{{"name": "get_weather", "description": "Current weather.", "parameters": {weather}}},
        {{"name": "list_files", "parameters": {{"type": "object", "properties": {{}}, "required": []}}}},
        {{"name": "set_env", "parameters": {{"type": "object", "additionalProperties": {{"type": "string"}}}}}},
        {{"name": "apply_patch", "description": "Apply a patch.", "custom": true}}]}}"#
    ));
    let body = encode(&r);
    let want = format!(
        r#"[{{"functionDeclarations": [{{"name": "get_weather", "description": "Current weather.", "parameters": {weather}}},
        {{"name": "list_files"}}, {{"name": "set_env"}}, {{"name": "apply_patch", "description": "Apply a patch.", "parameters": {{"type": "object",
        "properties": {{"input": {{"type": "string", "description": "The tool's freeform input."}}}}, "required": ["input"]}}}}]}}]"#
    );
    assert_eq!(body["tools"], j(&want));
    let no_config = body.get("toolConfig").is_none();
    assert!(no_config, "no tool_choice: Gemini's default AUTO");
    let set_env = ToolChoice::Tool("set_env".into());
    for (choice, want) in [
        (ToolChoice::Auto, r#"{"mode": "AUTO"}"#),
        (ToolChoice::None, r#"{"mode": "NONE"}"#),
        (ToolChoice::Required, r#"{"mode": "ANY"}"#),
        (
            set_env,
            r#"{"mode": "ANY", "allowedFunctionNames": ["set_env"]}"#,
        ),
    ] {
        r.tool_choice = Some(choice);
        let want = json!({ "functionCallingConfig": j(want) });
        assert_eq!(encode(&r)["toolConfig"], want);
    }
    r.tool_choice = Some(ToolChoice::Tool("launch_rockets".into()));
    assert_eq!(error(&r).param.as_deref(), Some("tool_choice"));
    r.tools.clear();
    let body = encode(&r);
    assert!(body.get("tools").is_none() && body.get("toolConfig").is_none());
}

/// Google's documented flow: two parallel calls (signature on the first),
/// the client runs them and sends the results back with the turn intact.
#[test]
fn gemini_tool_loop_keeps_signatures() {
    let a = answer(
        r#"{"candidates": [{"content": {"role": "model", "parts": [
            {"text": "Checking both cities.", "thought": true},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7sigA=="},
            {"functionCall": {"name": "get_weather", "args": {"city": "London", "unit": "celsius"}}}
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 70, "candidatesTokenCount": 30, "thoughtsTokenCount": 120, "totalTokenCount": 220},
        "modelVersion": "gemini-3-pro-preview", "responseId": "mCr1aP-gIqGOz7IPtcHJ6QM"}"#,
    );
    let head = (a.id.as_ref(), a.model.as_ref(), a.finish.clone());
    assert_eq!(
        head,
        (
            "mCr1aP-gIqGOz7IPtcHJ6QM",
            "gemini-3-pro-preview",
            Some(Finish::ToolCalls)
        )
    );
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
    let synthesized =
        ids[0].starts_with("call_0_get_weather_") && ids[1].starts_with("call_1_get_weather_");
    assert!(synthesized, "{ids:?}");
    let mut r = request(&format!(
        r#"{{"turns": [["user", "Weather in Paris and London?"], ["user", {{"result": ["{}", "{{\"temp_c\": 18}}"]}},
        {{"result": ["{}", "12C and raining"]}}, "Which is warmer?"]]}}"#,
        ids[0], ids[1]
    ));
    r.turns.insert(
        1,
        Turn {
            role: Role::Assistant,
            parts: a.parts.clone(),
        },
    );
    // The unsigned thought summary is not sent back (Gemini's state rides
    // on the signature); only the first call carries it.
    let want = r#"[{"role": "user", "parts": [{"text": "Weather in Paris and London?"}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQB0e2Kb7sigA=="},
            {"functionCall": {"name": "get_weather", "args": {"city": "London", "unit": "celsius"}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
            {"functionResponse": {"name": "get_weather", "response": {"content": "12C and raining"}}},
            {"text": "Which is warmer?"}]}]"#;
    assert_eq!(encode(&r)["contents"], j(want));
}

// ---------------------------------------------------------------- answers

fn answer(body: &str) -> Answer<'_> {
    GeminiGenerate.decode_answer(body.as_bytes()).unwrap()
}
/// Parts as short strings, for golden comparisons.
fn parts(a: &Answer<'_>) -> Vec<String> {
    let sig = |s: &Option<Signature<'_>>| {
        let s = s
            .as_ref()
            .map(|s| format!(" [{}:{}]", s.family.as_str(), s.value));
        s.unwrap_or_default()
    };
    (a.parts.iter())
        .map(|p| match p {
            Part::Text(t) => format!("text {}", t.text),
            Part::Reasoning(r) => format!("think {}{}", r.text, sig(&r.signature)),
            Part::ToolCall(c) => {
                let (id, name, args) = (&c.id, &c.name, &c.arguments);
                format!("call {id} {name} {args}{}", sig(&c.signature))
            }
            Part::Refusal(r) => format!("refusal {r}"),
            other => format!("{other:?}"),
        })
        .collect()
}
/// An answer as "finish|parts|usage", or its error as `err_line`.
fn outcome(body: &str) -> String {
    match GeminiGenerate.decode_answer(body.as_bytes()) {
        Ok(a) => {
            let finish = a
                .finish
                .as_ref()
                .map(|f| format!("{f:?}"))
                .unwrap_or_default();
            [vec![finish], parts(&a), vec![usage(&a.usage)]]
                .concat()
                .join("|")
        }
        Err(e) => err_line(&e),
    }
}

/// Answer bodies and what they decode to (a `*` at the end: a prefix).
#[test]
fn answers() {
    let calls = r#"{"candidates": [{"content": {"parts": [
        {"functionCall": {"id": "fc_7f3a", "name": "get_time", "args": { "tz" : "UTC", "q": "a \" b" }}},
        {"functionCall": {"name": "ping"}}, {"functionCall": {"name": "f", "args": null}, "thoughtSignature": "s"}]}}]}"#;
    let none = "usage 0/0/0 c0 w0 r0";
    let mut cases = vec![
        // A signature on a text part: an empty reasoning part after it.
        (r#"{"candidates": [{"content": {"parts": [{"text": "AI learns "}, {"text": "from data.", "thoughtSignature": "c2ln"}], "role": "model"},
            "finishReason": "STOP", "avgLogprobs": -0.12, "safetyRatings": [], "index": 0}],
          "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 12, "thoughtsTokenCount": 30, "cachedContentTokenCount": 4,
            "totalTokenCount": 50, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}]},
          "modelVersion": "gemini-2.5-flash", "responseId": "Aw5eaLjrHMWf1dkPkdXP4Ak"}"#.to_string(),
         "Stop|text AI learns |text from data.|think  [gemini:c2ln]|usage 8/42/50 c4 w0 r30".to_string()),
        // Unknown parts and fields are ignored, malformed counts read as 0.
        (r#"{"candidates": [{"content": {"parts": [{"executableCode": {"code": "print(1)"}}, {"text": "1."}, {"someFuturePart": {}}]},
            "finishReason": "STOP", "groundingMetadata": {}}], "usageMetadata": {"promptTokenCount": "x", "totalTokenCount": 5}, "other": [1]}"#.into(),
         "Stop|text 1.|usage 0/0/5 c0 w0 r0".into()),
        // Gemini's call id kept, others synthesized; compact arguments; no
        // finishReason with calls: ToolCalls.
        (calls.into(), format!(r#"ToolCalls|call fc_7f3a get_time {{"tz":"UTC","q":"a \" b"}}|call call_1_ping ping {{}}|call call_2_f f {{}} [gemini:s]|{none}"#)),
        (r#"{"candidates": [{"finishReason": "SAFETY", "safetyRatings": [{"blocked": true}]}], "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12}}"#.into(),
         "ContentFilter|usage 12/0/12 c0 w0 r0".into()),
        // A blocked prompt is the policy's answer, not a failure.
        (r#"{"promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "no"}, "usageMetadata": {"promptTokenCount": 9}}"#.into(),
         "ContentFilter|refusal The prompt was blocked by Gemini (blockReason SAFETY): no|usage 9/0/9 c0 w0 r0".into()),
        (r#"{"candidates": []}"#.into(), "502 Upstream -/-: Gemini returned no candidates".into()),
        (r#"{"candidates": [{"finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "Malformed function call: print(x"}]}"#.into(),
         "502 Upstream MALFORMED_FUNCTION_CALL/-: Gemini failed to produce a valid function call (finishReason MALFORMED_FUNCTION_CALL): Malformed function call: print(x".into()),
        (r#"{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}"#.into(),
         "500 Upstream INTERNAL/INTERNAL: Internal error encountered.".into()),
        ("{not json".into(), "502 Upstream -/-: Gemini answer is not valid: *".into()),
    ];
    for (reason, finish) in [
        ("STOP", "Stop"),
        ("MAX_TOKENS", "Length"),
        ("SAFETY", "ContentFilter"),
        ("RECITATION", "ContentFilter"),
        ("BLOCKLIST", "ContentFilter"),
        ("PROHIBITED_CONTENT", "ContentFilter"),
        ("SPII", "ContentFilter"),
        ("IMAGE_SAFETY", "ContentFilter"),
        ("OTHER", r#"Other("OTHER")"#),
    ] {
        let body = format!(
            r#"{{"candidates": [{{"content": {{"parts": [{{"text": "x"}}]}}, "finishReason": "{reason}"}}]}}"#
        );
        cases.push((body, format!("{finish}|text x|{none}")));
    }
    for (body, want) in &cases {
        match want.strip_suffix('*') {
            Some(prefix) => assert!(outcome(body).starts_with(prefix), "{body}"),
            None => assert_eq!(&outcome(body), want, "{body}"),
        }
    }
    let a = answer(&cases[0].0);
    let head = (a.id.as_ref(), a.model.as_ref(), a.created > 1_600_000_000);
    assert_eq!(head, ("Aw5eaLjrHMWf1dkPkdXP4Ak", "gemini-2.5-flash", true));
    let generated = answer(&cases[1].0).id.starts_with("chatcmpl-");
    assert!(generated, "generated when Gemini gives none");
    // Synthesized call ids: unique across responses, deterministic for one.
    let id = |rid: &str| {
        let body = calls.replace("]}}]}", &format!(r#"]}}}}], "responseId": "{rid}"}}"#));
        parts(&answer(&body))[1].clone()
    };
    assert_ne!(id("one"), id("two"));
    assert_eq!(id("one"), id("one"), "deterministic for one response");
    assert!(id("one").starts_with("call call_1_ping_"), "{}", id("one"));
}

// ---------------------------------------------------------------- errors

/// An error as "status kind code/vendor_type: message".
fn err_line(e: &ChatError) -> String {
    let word = |w: &Option<String>| w.clone().unwrap_or_else(|| "-".into());
    let (code, vendor) = (word(&e.code), word(&e.vendor_type));
    format!("{} {:?} {code}/{vendor}: {}", e.status, e.kind, e.message)
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

fn usage(u: &Usage) -> String {
    let (p, c, t) = (u.prompt_tokens, u.completion_tokens, u.total_tokens);
    let (cached, write, reasoning) = (u.cached_tokens, u.cache_write_tokens, u.reasoning_tokens);
    format!("usage {p}/{c}/{t} c{cached} w{write} r{reasoning}")
}

fn render(ev: &Event<'_>) -> String {
    match ev {
        Event::Start { id, model } => format!("start {id} {model}"),
        Event::BlockStart {
            index,
            block: Block::ToolCall { id, name, .. },
        } => format!("{index}+call {id} {name}"),
        Event::BlockStart { index, block } => format!("{index}+{block:?}"),
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
        Event::Usage(u) => usage(u),
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

/// `data:` events through `run`, whole: the events, then how the stream
/// ended ("ok" or `err_line`), joined with `|`.
fn stream(events: &[&str], clean: bool) -> String {
    let body: String = events
        .iter()
        .map(|c| format!("data: {c}\r\n\r\n"))
        .collect();
    let (mut out, end) = run(&[body.as_bytes()], clean);
    out.push(end.map_or_else(|e| err_line(&e), |()| "ok".into()));
    let out = out.join("|");
    match out.strip_prefix("start chatcmpl-") {
        // A generated id differs every time.
        Some(rest) => format!("start chatcmpl-? {}", rest.split_once(' ').unwrap().1),
        None => out,
    }
}

#[test]
fn stream_fixture_split_at_every_byte() {
    let body = include_bytes!("../../../../tests/fixtures/gemini_stream.sse");
    let salt = decode::Read::new(Some("mAitaL3yDs-DnvgP7cS2gQ0"))
        .salt
        .unwrap();
    let want = format!(
        r#"start mAitaL3yDs-DnvgP7cS2gQ0 gemini-2.5-flash|0+Text|0 Text The|usage 8/0/8 c0 w0 r0|0 Text  quick brown fox jumps|0-|1+call call_0_get_weather_{salt:08x} get_weather|1 sig gemini:CiQB0e2Kb2RlIHNpZ25hdHVyZQ==|1 ToolArguments {{"location":"Paris"}}|1-|usage 8/24/32 c0 w0 r12|stop ToolCalls"#
    );
    for i in 0..=body.len() {
        let (events, end) = run(&[&body[..i], &body[i..]], true);
        assert_eq!(events.join("|"), want, "split at {i}");
        assert!(end.is_ok());
    }
    let (events, end) = run(&[body], true);
    assert_eq!(events.join("|"), want);
    assert!(end.is_ok());
}

/// Streams (the `data:` events, whether the connection closed cleanly) and
/// what they decode to (a `*` at the end: a prefix).
#[test]
fn streams() {
    let hi = r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}],"responseId":"r"}"#;
    let cases: [(&[&str], bool, &str); 9] = [
        // Signatures close their reasoning block; the Stop waits for the
        // usage after the finish.
        (&[r#"{"candidates":[{"content":{"parts":[{"text":"**Plan**","thought":true}],"role":"model"}}],"responseId":"x"}"#,
           r#"{"candidates":[{"content":{"parts":[{"text":" more","thought":true,"thoughtSignature":"dA=="},{"text":"42"}]}}]}"#,
           r#"{"candidates":[{"content":{"parts":[{"text":"","thoughtSignature":"c2ln"}]},"finishReason":"MAX_TOKENS"}]}"#,
           r#"{"candidates":[],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":4,"totalTokenCount":9}}"#], true,
         "start x |0+Reasoning|0 Reasoning **Plan**|0 Reasoning  more|0 sig gemini:dA==|0-|1+Text|1 Text 42|1-|2+Reasoning|2 sig gemini:c2ln|2-|usage 3/6/9 c0 w0 r4|stop Length|ok"),
        // Without usage after the finish, Stop comes at the end.
        (&[r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}"#], true,
         "start chatcmpl-? |0+Text|0 Text Hi|0-|stop Stop|ok"),
        (&[r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":15,"totalTokenCount":15},"responseId":"b"}"#], true,
         "start b |0+Refusal|0 Refusal The prompt was blocked by Gemini (blockReason PROHIBITED_CONTENT)|0-|usage 15/0/15 c0 w0 r0|stop ContentFilter|ok"),
        // Nothing follows an in-band error.
        (&[hi, r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#, hi], true,
         "start r |0+Text|0 Text Hi|error 503 Overloaded The model is overloaded.|ok"),
        (&[hi, r#"{"candidates":[{"finishReason":"MALFORMED_FUNCTION_CALL"}]}"#, hi], true,
         "start r |0+Text|0 Text Hi|error 502 Upstream Gemini failed to produce a valid function call (finishReason MALFORMED_FUNCTION_CALL)|ok"),
        (&["{not json"], true, "502 Upstream -/-: Gemini stream event is not valid: *"),
        // A clean end without a finish is truncated too, and so is an empty stream.
        (&[r#"{"candidates":[{"content":{"parts":[{"text":"Once"}]}}]}"#], true,
         "start chatcmpl-? |0+Text|0 Text Once|502 Upstream -/-: Gemini stream ended without a finishReason; the response is incomplete"),
        (&[r#"{"candidates":[{"content":{"parts":[{"text":"Done."}]},"finishReason":"STOP"}]}"#], false,
         "start chatcmpl-? |0+Text|0 Text Done.|0-|502 Upstream -/-: Gemini stream was cut off before the response finished"),
        (&[], true, "502 Upstream -/-: Gemini stream ended without a finishReason; the response is incomplete"),
    ];
    for (events, clean, want) in cases {
        match want.strip_suffix('*') {
            Some(prefix) => assert!(stream(events, clean).starts_with(prefix), "{events:?}"),
            None => assert_eq!(stream(events, clean), want, "{events:?}"),
        }
    }
}

// ---------------------------------------------------------------- schemas

/// Function parameters as Gemini gets them.
fn declared(params: &str) -> Value {
    let r = request(&format!(
        r#"{{"turns": [["user", "go"]], "tools": [{{"name": "f", "parameters": {params}}}]}}"#
    ));
    encode(&r)["tools"][0]["functionDeclarations"][0]["parameters"].take()
}

/// A tool schema as a coding agent's pydantic/zod models produce it.
#[test]
fn coding_agent_schema_is_cleaned() {
    let params = r##"{"$schema": "http://json-schema.org/draft-07/schema#", "title": "EditFilesInput", "type": "object", "additionalProperties": false,
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
        "required": ["path", "edits", "ghost_field"]}"##;
    let want = r#"{"title": "EditFilesInput", "type": "object", "required": ["path", "edits"], "properties": {
        "path": {"type": "string", "format": "uri"},
        "edits": {"type": "array", "minItems": 1, "items": {"type": "object", "title": "Edit", "required": ["old_string", "new_string"], "properties": {
            "old_string": {"type": "string", "description": "Exact text to replace", "minLength": 1},
            "new_string": {"type": "string"}, "replace_all": {"type": "boolean"}}}},
        "mode": {"type": "string", "description": "How to apply", "enum": ["apply", "dry_run"]},
        "encoding": {"nullable": true, "type": "string"},
        "kind": {"type": "string", "enum": ["edit"]},
        "timeout_ms": {"type": "integer", "minimum": 0, "nullable": true, "description": "Optional timeout"},
        "options": {"type": "object"},
        "tags": {"type": "array", "items": {"type": "string"}}}}"#;
    assert_eq!(declared(params), j(want));
}

#[test]
fn refs_unions_and_enums() {
    let schema = r##"{"type": "object",
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
            "pair": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]}}}"##;
    let want = r#"{
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
        "pair": {"type": "array", "items": {"type": "number"}}}"#;
    assert_eq!(clean_schema(&j(schema))["properties"], j(want));
    // A union at the root becomes one object: every property, the common required.
    let root = r#"{"anyOf": [
        {"type": "object", "properties": {"path": {"type": "string"}, "line": {"type": "integer"}}, "required": ["path", "line"]},
        {"type": "object", "properties": {"path": {"type": "string"}, "url": {"type": "string"}}, "required": ["path"]}]}"#;
    let want = r#"{"type": "object", "required": ["path"],
        "properties": {"path": {"type": "string"}, "line": {"type": "integer"}, "url": {"type": "string"}}}"#;
    assert_eq!(declared(root), j(want));
}

#[test]
fn schema_cleaning_is_bounded() {
    // Each level references the next twice: 2^30 expansions unbounded.
    let mut defs = serde_json::Map::new();
    for i in 0..30 {
        let next = json!({"$ref": format!("#/$defs/L{}", i + 1)});
        let level = json!({"type": "object", "properties": {"a": next, "b": next}});
        defs.insert(format!("L{i}"), level);
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
