//! Unit tests of the Responses adapter: decoding into the chat model, the
//! `encrypted_content` codec, and answers.

use super::OpenAiResponses;
use crate::protocol::chat::{
    Answer, Family, Finish, Ingress, Part, Role, Signature, ToolCall, ToolKind, Usage,
};
use serde_json::{json, Value};
use std::borrow::Cow;

fn decode(body: Value) -> crate::protocol::chat::Request<'static> {
    let bytes: &'static [u8] = Box::leak(body.to_string().into_bytes().into_boxed_slice());
    OpenAiResponses.decode_request(bytes).expect("decodes")
}

#[test]
fn items_become_turns_with_calls_results_and_reasoning() {
    let req = decode(json!({"model": "m", "instructions": "Sys", "input": [
        {"role": "developer", "content": "Dev"},
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}, {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}], "encrypted_content": "gw1:anthropic:s:SIG"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"x\":1}"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "diff"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
        {"role": "user", "content": "next"}
    ], "tools": [{"type": "custom", "name": "apply_patch"}, {"type": "web_search"}], "tool_choice": {"type": "custom", "name": "apply_patch"},
       "max_output_tokens": 9, "reasoning": {"effort": "high"}, "include": ["reasoning.encrypted_content"], "store": false}));
    assert_eq!(req.system.len(), 2);
    let roles: Vec<Role> = req.turns.iter().map(|t| t.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
    let a = &req.turns[1].parts;
    assert!(matches!(&a[0], Part::Reasoning(r) if r.text == "a\n\nb"
        && r.signature.as_ref().is_some_and(|s| s.family == Family::Anthropic && s.value == "SIG")));
    assert!(
        matches!(&a[2], Part::ToolCall(c) if c.kind == ToolKind::Function && c.arguments == r#"{"input":"diff"}"#)
    );
    assert_eq!(
        req.turns[2].parts.len(),
        3,
        "two results and the next message"
    );
    assert_eq!(req.tools.len(), 1, "the hosted tool is dropped");
    assert!(req.tools[0].format.is_some() && req.tools[0].parameters.is_some());
    assert_eq!(req.max_tokens, Some(9));
    // OpenAI's own encrypted reasoning stays with its family.
    let req = decode(
        json!({"model": "m", "input": [{"type": "reasoning", "summary": [], "encrypted_content": "gAAAA"}]}),
    );
    assert!(
        matches!(&req.turns[0].parts[0], Part::Reasoning(r) if r.redacted.as_ref().is_some_and(|s| s.family == Family::OpenAiResponses))
    );
}

#[test]
fn answers_map_calls_back_to_custom_calls_and_keep_signatures_when_asked() {
    let req = decode(
        json!({"model": "m", "input": "x", "tools": [{"type": "custom", "name": "apply_patch"}],
        "include": ["reasoning.encrypted_content"]}),
    );
    let answer = Answer {
        id: Cow::Borrowed("msg_1"),
        model: Cow::Borrowed("v"),
        created: 1,
        parts: vec![
            Part::reasoning(
                Cow::Borrowed("t"),
                Some(Signature::new(Family::Gemini, Cow::Borrowed("S"))),
                None,
            ),
            Part::ToolCall(ToolCall {
                id: Cow::Borrowed("c"),
                name: Cow::Borrowed("apply_patch"),
                kind: ToolKind::Function,
                arguments: Cow::Borrowed(r#"{"input":"diff"}"#),
                signature: None,
            }),
        ],
        finish: Some(Finish::Length),
        usage: Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            ..Usage::default()
        },
    };
    let v: Value =
        serde_json::from_slice(&OpenAiResponses.encode_answer_for(Some(&req), &answer, "m"))
            .expect("json");
    assert_eq!(v["id"], "resp_msg_1");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(v["output"][0]["encrypted_content"], "gw1:gemini:s:S");
    assert_eq!(v["output"][1]["type"], "custom_tool_call");
    assert_eq!(v["output"][1]["input"], "diff");
    assert_eq!(v["usage"]["total_tokens"], 5);
    // Without the request, nothing is echoed.
    let v: Value =
        serde_json::from_slice(&OpenAiResponses.encode_answer(&answer, "m")).expect("json");
    assert!(v["output"][0].get("encrypted_content").is_none());
    assert_eq!(v["output"][1]["type"], "function_call");
}
