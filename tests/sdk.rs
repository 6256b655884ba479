//! The official `openai`, `anthropic` and `google-genai` Python SDKs against the running
//! gateway, on every vendor type (install them with `./scripts/bootstrap test`).

mod support;

use std::time::Duration;
use support::gateway::{provider, typed_provider, Gateway, TOKEN};
use support::mock_anthropic::MockAnthropic;
use support::mock_gemini::MockGemini;
use support::mock_openai::{MockOpenAi, Reply};

async fn run_python(script: &str, args: &[&str]) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("python3")
            .arg(format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR")))
            .args(args)
            .output(),
    )
    .await
    .expect("python finished in time")
    .expect("python3 runs (./scripts/bootstrap test installs the SDKs)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn official_openai_python_sdk_works_through_the_gateway() {
    let mock = MockOpenAi::start("sdkmock").await;
    let toml = format!(
        "[aliases]\nfast = \"gpt-4o-mini\"\n{}",
        provider(
            "p",
            &mock.base_url(),
            &["sk-p-000000000001"],
            "models = [\"gpt-4o-mini\"]"
        )
    );
    let gw = Gateway::start(&toml).await;
    let (ok, output) = run_python("openai_sdk.py", &[&gw.url("/v1"), TOKEN, "sdkmock"]).await;
    assert!(ok, "SDK run failed:\n{output}\ngateway log:\n{}", gw.logs());
    for line in [
        "non-stream ok",
        "stream ok",
        "models ok",
        "not-found ok",
        "auth ok",
    ] {
        assert!(output.contains(line), "missing {line:?} in:\n{output}");
    }
}

/// Chat requests 1-2 answer text, 3-4 a get_weather({"city":"Paris"}) call.
fn script_tools(push: impl Fn(Reply)) {
    push(Reply::Complete);
    push(Reply::Complete);
    push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
    push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
}

fn openai_client_config(kind: &str, url: &str, key: &str) -> String {
    format!(
        "[aliases]\nfast = \"gpt-4o-mini\"\n{}",
        typed_provider(kind, "p", url, &[key], "models = [\"gpt-4o-mini\"]")
    )
}

#[tokio::test]
async fn openai_sdk_on_anthropic_vendor_with_tools() {
    let mock = MockAnthropic::start("claude").await;
    script_tools(|r| mock.push(r));
    let gw = Gateway::start(&openai_client_config(
        "anthropic",
        &mock.base_url(),
        "sk-ant-000000000001",
    ))
    .await;
    let (ok, output) = run_python(
        "openai_sdk.py",
        &[&gw.url("/v1"), TOKEN, "claude", "--tools"],
    )
    .await;
    assert!(
        ok && output.contains("tool stream ok"),
        "SDK run failed:\n{output}\ngateway log:\n{}",
        gw.logs()
    );
}

#[tokio::test]
async fn openai_sdk_on_gemini_vendor_with_tools() {
    let mock = MockGemini::start("gem").await;
    script_tools(|r| mock.push(r));
    let gw = Gateway::start(&openai_client_config(
        "gemini",
        &mock.base_url(),
        "AIza-000000000001",
    ))
    .await;
    let (ok, output) =
        run_python("openai_sdk.py", &[&gw.url("/v1"), TOKEN, "gem", "--tools"]).await;
    assert!(
        ok && output.contains("tool stream ok"),
        "SDK run failed:\n{output}\ngateway log:\n{}",
        gw.logs()
    );
}

async fn anthropic_sdk_against(kind: &str, url: &str, name: &str) {
    let toml = typed_provider(
        kind,
        "p",
        url,
        &["vendor-key-000000000001"],
        "models = [\"claude-test\"]",
    );
    let gw = Gateway::start(&toml).await;
    let (ok, output) = run_python("anthropic_sdk.py", &[&gw.base, TOKEN, name]).await;
    assert!(ok, "SDK run failed:\n{output}\ngateway log:\n{}", gw.logs());
    for line in [
        "non-stream ok",
        "stream ok",
        "tool non-stream ok",
        "tool stream ok",
        "not-found ok",
        "auth ok",
    ] {
        assert!(output.contains(line), "missing {line:?} in:\n{output}");
    }
}

#[tokio::test]
async fn anthropic_sdk_on_anthropic_vendor() {
    let mock = MockAnthropic::start("claude").await;
    script_tools(|r| mock.push(r));
    anthropic_sdk_against("anthropic", &mock.base_url(), "claude").await;
}

#[tokio::test]
async fn anthropic_sdk_on_openai_vendor() {
    let mock = MockOpenAi::start("oai").await;
    script_tools(|r| mock.push(r));
    anthropic_sdk_against("openai", &mock.base_url(), "oai").await;
}

#[tokio::test]
async fn anthropic_sdk_on_gemini_vendor() {
    let mock = MockGemini::start("gem").await;
    script_tools(|r| mock.push(r));
    anthropic_sdk_against("gemini", &mock.base_url(), "gem").await;
}

/// The routes and shapes Claude Code relies on (`--claude-code`), per
/// vendor type: `count_tokens`, `models.list` / `retrieve`, and a thinking
/// and tools loop whose signed thinking blocks go back as they came (the
/// Anthropic and Gemini mocks reject them otherwise). `signed` is whether
/// that vendor's answer carries signed thinking.
async fn anthropic_sdk_claude_code(kind: &str, url: &str, name: &str, signed: bool) {
    let toml = typed_provider(
        kind,
        "p",
        url,
        &["vendor-key-000000000001"],
        "models = [\"claude-test\"]",
    );
    let gw = Gateway::start(&toml).await;
    let (ok, output) = run_python(
        "anthropic_sdk.py",
        &[&gw.base, TOKEN, name, "--claude-code"],
    )
    .await;
    assert!(ok, "SDK run failed:\n{output}\ngateway log:\n{}", gw.logs());
    for line in ["count_tokens ok", "models ok", "thinking tools ok"] {
        assert!(output.contains(line), "missing {line:?} in:\n{output}");
    }
    let want = if signed {
        "thinking signatures: 1"
    } else {
        "thinking signatures: 0"
    };
    assert!(output.contains(want), "missing {want:?} in:\n{output}");
}

/// `script_tools`, then a tool call and a text answer for the thinking loop.
fn script_claude_code(push: impl Fn(Reply)) {
    script_tools(&push);
    push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
    push(Reply::Complete);
}

#[tokio::test]
async fn anthropic_sdk_claude_code_on_anthropic_vendor() {
    let mock = MockAnthropic::start("claude").await;
    script_claude_code(|r| mock.push(r));
    anthropic_sdk_claude_code("anthropic", &mock.base_url(), "claude", true).await;
}

#[tokio::test]
async fn anthropic_sdk_claude_code_on_openai_vendor() {
    let mock = MockOpenAi::start("oai").await;
    script_claude_code(|r| mock.push(r));
    anthropic_sdk_claude_code("openai", &mock.base_url(), "oai", false).await;
}

#[tokio::test]
async fn anthropic_sdk_claude_code_on_gemini_vendor() {
    let mock = MockGemini::start("gem").await;
    script_claude_code(|r| mock.push(r));
    anthropic_sdk_claude_code("gemini", &mock.base_url(), "gem", true).await;
}

/// The `google-genai` SDK against the gateway's Gemini-native API, with
/// a provider of `kind` behind it (`count`: check count_tokens too).
async fn genai_sdk_against(kind: &str, url: &str, name: &str, count: bool) {
    let toml = typed_provider(
        kind,
        "p",
        url,
        &["vendor-key-000000000001"],
        "models = [\"m-test\"]",
    );
    let gw = Gateway::start(&toml).await;
    let mut args = vec![gw.base.as_str(), TOKEN, name];
    if count {
        args.push("--count");
    }
    let (ok, output) = run_python("genai_sdk.py", &args).await;
    assert!(ok, "SDK run failed:\n{output}\ngateway log:\n{}", gw.logs());
    let mut expected = vec![
        "generate ok",
        "stream ok",
        "function call ok",
        "function call stream ok",
        "function response ok",
        "not-found ok",
        "auth ok",
        "models ok",
    ];
    if count {
        expected.push("count tokens ok");
    }
    for line in expected {
        assert!(output.contains(line), "missing {line:?} in:\n{output}");
    }
}

#[tokio::test]
async fn genai_sdk_on_gemini_vendor() {
    let mock = MockGemini::start("gem").await;
    script_tools(|r| mock.push(r));
    genai_sdk_against("gemini", &mock.base_url(), "gem", true).await;
}

#[tokio::test]
async fn genai_sdk_on_openai_vendor() {
    let mock = MockOpenAi::start("oai").await;
    script_tools(|r| mock.push(r));
    genai_sdk_against("openai", &mock.base_url(), "oai", false).await;
}

#[tokio::test]
async fn genai_sdk_on_anthropic_vendor() {
    let mock = MockAnthropic::start("claude").await;
    script_tools(|r| mock.push(r));
    genai_sdk_against("anthropic", &mock.base_url(), "claude", false).await;
}

/// Responses requests 1-2 text, 3 a get_weather call, 4 text, 5 a
/// get_weather call, 6 an apply_patch call (see openai_responses.py).
fn script_responses(push: impl Fn(Reply)) {
    push(Reply::Complete);
    push(Reply::Complete);
    push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
    push(Reply::Complete);
    push(Reply::tool_call("get_weather", r#"{"city":"Paris"}"#));
    push(Reply::tool_call("apply_patch", r#"{"input":"diff"}"#));
}

async fn responses_sdk_against(kind: &str, url: &str, name: &str, extra: &str, custom: bool) {
    let toml = typed_provider(kind, "p", url, &["vendor-key-000000000001"], extra);
    let gw = Gateway::start(&toml).await;
    let base = gw.url("/v1");
    let mut args = vec![base.as_str(), TOKEN, name];
    if custom {
        args.push("--custom");
    }
    let (ok, output) = run_python("openai_responses.py", &args).await;
    assert!(ok, "SDK run failed:\n{output}\ngateway log:\n{}", gw.logs());
    let mut want = vec![
        "create ok",
        "stream ok",
        "tools ok",
        "tool stream ok",
        "stateless ok",
    ];
    if custom {
        want.push("custom ok");
    }
    for line in want {
        assert!(output.contains(line), "missing {line:?} in:\n{output}");
    }
}

#[tokio::test]
async fn openai_sdk_responses_on_openai_chat_vendor() {
    let mock = MockOpenAi::start("oai").await;
    script_responses(|r| mock.push(r));
    responses_sdk_against("openai", &mock.base_url(), "oai", "", true).await;
}

#[tokio::test]
async fn openai_sdk_responses_on_anthropic_vendor() {
    let mock = MockAnthropic::start("claude").await;
    script_responses(|r| mock.push(r));
    responses_sdk_against("anthropic", &mock.base_url(), "claude", "", true).await;
}

#[tokio::test]
async fn openai_sdk_responses_on_gemini_vendor() {
    let mock = MockGemini::start("gem").await;
    script_responses(|r| mock.push(r));
    responses_sdk_against("gemini", &mock.base_url(), "gem", "", true).await;
}

#[tokio::test]
async fn openai_sdk_responses_on_native_openai_vendor() {
    let mock = MockOpenAi::start("oai").await;
    script_responses(|r| mock.push(r));
    responses_sdk_against(
        "openai",
        &mock.base_url(),
        "oai",
        "responses = \"native\"",
        false,
    )
    .await;
}
