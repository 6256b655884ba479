//! Test support: scripted mock vendors and a real gateway process.
#![allow(dead_code)]

pub mod db;
pub mod gateway;
pub mod mock_anthropic;
pub mod mock_gemini;
pub mod mock_http;
pub mod mock_openai;
pub mod redis;

/// The folder holding the real coding agents (`claude`, `codex`, `gemini`):
/// `LLMO_AGENTS_BIN`, else `tests/agents/node_modules/.bin` as
/// `./scripts/bootstrap test` installs it (pinned in tests/agents). `None`
/// when neither has `tool`: the caller says the test is skipped.
pub fn agents_bin(tool: &str) -> Option<String> {
    let installed = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/agents/node_modules/.bin"
    );
    std::env::var("LLMO_AGENTS_BIN")
        .ok()
        .into_iter()
        .chain(std::iter::once(installed.to_string()))
        .find(|dir| std::path::Path::new(dir).join(tool).exists())
}
