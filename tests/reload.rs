//! TOML hot reload: edits go live without a restart, broken files are
//! rejected and the running configuration stays.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::gateway::{provider, Gateway};
use support::mock_openai::{MockOpenAi, Reply};

async fn wait_models(gw: &Gateway, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids = gw.model_ids().await;
        if pred(&ids) {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "config change not applied; models {ids:?}\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn file_edits_go_live_and_in_flight_requests_finish_on_the_old_config() {
    let a = MockOpenAi::start("a").await;
    let b = MockOpenAi::start("b").await;
    let only_a = provider(
        "a",
        &a.base_url(),
        &["sk-a-000000000001"],
        "models = [\"alpha\"]",
    );
    let gw = Gateway::start(&only_a).await;
    assert_eq!(gw.model_ids().await, vec!["alpha"]);

    // A slow stream starts on provider a...
    a.set_stream_delay(Duration::from_millis(300));
    let mut stream = gw
        .chat(&json!({"model": "alpha", "stream": true, "messages": []}))
        .await;
    assert_eq!(stream.status(), 200);
    assert!(stream.chunk().await.expect("first chunk").is_some());

    // ...while the file replaces a by b.
    gw.rewrite_config(&provider(
        "b",
        &b.base_url(),
        &["sk-b-000000000001"],
        "models = [\"beta\"]",
    ));
    wait_models(&gw, |ids| ids == ["beta"]).await;
    let mut rest = String::new();
    while let Some(c) = stream.chunk().await.expect("chunk") {
        rest.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(
        rest.contains("[DONE]"),
        "the in-flight stream finished normally: {rest}"
    );

    let r = gw.chat(&json!({"model": "beta", "messages": []})).await;
    assert_eq!(r.headers()["x-llm-orchestrator-provider"], "b");
    assert_eq!(
        gw.chat(&json!({"model": "alpha", "messages": []}))
            .await
            .status(),
        404
    );
    assert!(
        gw.wait_log("configuration reloaded", Duration::from_secs(2))
            .await
    );
}

#[tokio::test]
async fn a_broken_file_is_rejected_and_the_running_config_stays() {
    let a = MockOpenAi::start("a").await;
    let good = provider(
        "a",
        &a.base_url(),
        &["sk-a-000000000001"],
        "models = [\"alpha\"]",
    );
    let gw = Gateway::start(&good).await;

    gw.rewrite_config("[[providers]]\nname = \"a\"\nwieght = 3\n");
    assert!(
        gw.wait_log("configuration change rejected", Duration::from_secs(10))
            .await,
        "{}",
        gw.logs()
    );
    assert!(
        gw.logs().contains("wieght"),
        "the log names the problem:\n{}",
        gw.logs()
    );
    assert_eq!(
        gw.chat(&json!({"model": "alpha", "messages": []}))
            .await
            .status(),
        200
    );

    // Semantically invalid (bad URL, zero weight) is rejected the same way.
    gw.rewrite_config(&provider(
        "a",
        "ftp://x",
        &["sk-a-000000000001"],
        "weight = 0\nmodels = [\"alpha2\"]",
    ));
    assert!(
        gw.wait_log("providers[0].base_url", Duration::from_secs(10))
            .await,
        "{}",
        gw.logs()
    );
    assert_eq!(gw.model_ids().await, vec!["alpha"]);

    // Fixing the file applies it.
    gw.rewrite_config(&provider(
        "a",
        &a.base_url(),
        &["sk-a-000000000001"],
        "models = [\"alpha\", \"alpha2\"]",
    ));
    wait_models(&gw, |ids| ids.len() == 2).await;
}

#[tokio::test]
async fn health_state_survives_a_reload() {
    let a = MockOpenAi::start("a").await;
    a.set_default(Reply::status(
        503,
        r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#,
    ));
    let cfg = |extra: &str| {
        format!(
            "[health]\nenabled = false\nmax_errors = 1\nretry_secs = 3600\n{}",
            provider(
                "a",
                &a.base_url(),
                &["sk-a-000000000001"],
                &format!("models = [\"alpha\"{extra}]")
            )
        )
    };
    let gw = Gateway::start(&cfg("")).await;
    assert_eq!(
        gw.chat(&json!({"model": "alpha", "messages": []}))
            .await
            .status(),
        503
    );
    gw.rewrite_config(&cfg(", \"alpha-new\""));
    wait_models(&gw, |ids| ids.len() == 2).await;
    let r = gw.chat(&json!({"model": "alpha", "messages": []})).await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        body["error"]["code"], "no_healthy_provider",
        "still unhealthy after the reload: {body}"
    );
    assert_eq!(a.count(), 1);
}
