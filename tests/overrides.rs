//! Overrides in canonical terms, through the running gateway: a global
//! `set max_tokens` and a provider `set temperature` mean the same thing
//! for every vendor (checked in the body each vendor mock received, whole
//! and streaming), a provider's vendor edit reaches Gemini's own fields by
//! dotted path, and a name that is not canonical fails `--check` saying
//! what to write instead.

mod support;

use serde_json::{json, Value};
use std::process::Command;
use support::gateway::{typed_provider, Gateway};
use support::mock_anthropic::MockAnthropic;
use support::mock_gemini::MockGemini;
use support::mock_openai::MockOpenAi;

const KEY: &str = "sk-test-key-000000000001";

fn config(kind: &str, url: &str, provider_extra: &str) -> String {
    format!(
        "[overrides]\nset = {{ max_tokens = 1024 }}\n{}",
        typed_provider(
            kind,
            kind,
            url,
            &[KEY],
            &format!("[providers.overrides]\nset = {{ temperature = 0.1 }}\n{provider_extra}"),
        )
    )
}

fn request(stream: bool) -> Value {
    json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 5,
        "temperature": 1.5,
        "stream": stream,
    })
}

/// Send one OpenAI-client request, check the answer arrived whole.
async fn ask(gw: &Gateway, stream: bool) {
    let r = gw.chat(&request(stream)).await;
    let status = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(status, 200, "{text}");
    if stream {
        assert!(text.contains("data: [DONE]"), "{text}");
        assert!(!text.contains("\"error\""), "{text}");
    } else {
        let v: Value = serde_json::from_str(&text).expect("JSON answer");
        assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
    }
}

#[tokio::test]
async fn openai_vendor_gets_canonical_overrides() {
    let mock = MockOpenAi::start("o").await;
    let gw = Gateway::start(&config("openai", &mock.base_url(), "")).await;
    for (i, stream) in [false, true].into_iter().enumerate() {
        ask(&gw, stream).await;
        let sent = mock.requests()[i].json();
        let limit = sent
            .get("max_tokens")
            .or_else(|| sent.get("max_completion_tokens"));
        assert_eq!(limit, Some(&json!(1024)), "{sent}");
        assert_eq!(sent["temperature"], 0.1, "{sent}");
        assert_eq!(sent["stream"].as_bool().unwrap_or(false), stream, "{sent}");
    }
}

#[tokio::test]
async fn anthropic_vendor_gets_canonical_overrides() {
    let mock = MockAnthropic::start("a").await;
    let gw = Gateway::start(&config("anthropic", &mock.base_url(), "")).await;
    for (i, stream) in [false, true].into_iter().enumerate() {
        ask(&gw, stream).await;
        let sent = mock.requests()[i].json();
        assert_eq!(sent["max_tokens"], 1024, "{sent}");
        assert_eq!(sent["temperature"], 0.1, "{sent}");
    }
    // An Anthropic client (same family: decoded and encoded again because
    // of the overrides) gets them too.
    let r = gw
        .messages(&json!({"model": "m", "max_tokens": 7, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let sent = mock.requests()[2].json();
    assert_eq!(
        (sent["max_tokens"].clone(), sent["temperature"].clone()),
        (json!(1024), json!(0.1)),
        "{sent}"
    );
}

#[tokio::test]
async fn gemini_vendor_gets_canonical_overrides_in_its_own_fields() {
    let mock = MockGemini::start("g").await;
    let gw = Gateway::start(&config("gemini", &mock.base_url(), "")).await;
    for (i, stream) in [false, true].into_iter().enumerate() {
        ask(&gw, stream).await;
        let sent = mock.requests()[i].json();
        let gc = &sent["generationConfig"];
        assert_eq!(gc["maxOutputTokens"], 1024, "{sent}");
        assert_eq!(gc["temperature"], 0.1, "{sent}");
        // The bug this fixes: OpenAI names next to Gemini's, which Google
        // refuses.
        assert!(
            sent.get("max_tokens").is_none() && sent.get("temperature").is_none(),
            "{sent}"
        );
    }
    // An Anthropic client on Gemini too.
    let r = gw
        .messages(&json!({"model": "m", "max_tokens": 7, "messages": [{"role": "user", "content": "Hi"}], "stream": true}))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("body");
    assert!(text.contains("message_stop"), "{text}");
    let sent = mock.requests()[2].json();
    assert_eq!(sent["generationConfig"]["maxOutputTokens"], 1024, "{sent}");
}

#[tokio::test]
async fn gemini_vendor_edits_reach_fields_only_gemini_has() {
    let mock = MockGemini::start("g").await;
    let gw = Gateway::start(&config(
        "gemini",
        &mock.base_url(),
        "[providers.overrides.vendor]\nset = { \"generationConfig.thinkingConfig.thinkingBudget\" = 0 }\ndefault = { \"generationConfig.topK\" = 3 }\ndrop = [\"safetySettings\"]",
    ))
    .await;
    for (i, stream) in [false, true].into_iter().enumerate() {
        ask(&gw, stream).await;
        let sent = mock.requests()[i].json();
        let gc = &sent["generationConfig"];
        assert_eq!(gc["thinkingConfig"]["thinkingBudget"], 0, "{sent}");
        assert_eq!(gc["topK"], 3, "{sent}");
        assert_eq!(gc["maxOutputTokens"], 1024, "{sent}");
        assert!(sent.get("safetySettings").is_none(), "{sent}");
    }
}

#[tokio::test]
async fn the_gemini_mock_refuses_openai_names_as_google_does() {
    // Without canonical overrides this is what every request to Gemini got:
    // proof that the mock is strict, so the tests above can fail.
    let mock = MockGemini::start("g").await;
    let gw = Gateway::start(&config(
        "gemini",
        &mock.base_url(),
        "[providers.overrides.vendor]\nset = { max_tokens = 1 }",
    ))
    .await;
    let r = gw.chat(&request(false)).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("JSON error");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Unknown name \"max_tokens\": Cannot find field."),
        "{v}"
    );
}

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_llm-orchestrator"))
        .env_clear()
        .args(["--check", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn unknown_canonical_names_fail_check_saying_what_to_write() {
    let provider = typed_provider("gemini", "g", "http://127.0.0.1:9/v1beta", &[KEY], "");
    let (ok, out) = check(&format!(
        "[overrides]\nset = {{ logit_bias = {{}} }}\ndrop = [\"frequency\"]\n{provider}[providers.overrides]\ndefault = {{ temperature = \"hot\" }}\n"
    ));
    assert!(!ok, "{out}");
    for want in [
        "overrides.set.logit_bias",
        "[providers.overrides.vendor]",
        "overrides.drop.frequency",
        "providers[0].overrides.default.temperature",
        "must be a number",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let (ok, out) = check(&format!(
        "[overrides.vendor]\nset = {{ \"generationConfig.topK\" = 1 }}\n{provider}"
    ));
    assert!(!ok && out.contains("overrides.vendor"), "{out}");
    let (ok, out) = check(&format!(
        "[overrides]\nset = {{ max_tokens = 1024, stop = [\"END\"] }}\n{provider}[providers.overrides.vendor]\nset = {{ \"generationConfig.thinkingConfig.thinkingBudget\" = 0 }}\n"
    ));
    assert!(ok, "{out}");
}
