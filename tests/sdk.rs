//! The official `openai` Python SDK against the running gateway (install it
//! with `./scripts/bootstrap`).

mod support;

use std::time::Duration;
use support::gateway::{provider, Gateway, TOKEN};
use support::mock_openai::MockOpenAi;

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
    .expect("python3 runs (./scripts/bootstrap installs the SDKs)");
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
