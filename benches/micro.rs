//! Micro-benchmarks of the pure parts of the request path (criterion):
//! translation per direction, stream translation per event, SSE parsing,
//! routing decisions and snapshot builds.
//!
//!     cargo bench --bench micro
//!     cargo bench --bench micro -- translate      # a subset

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use llm_orchestrator::config::{compile, parse_toml, Snapshot};
use llm_orchestrator::health::{now_ms, HealthRegistry};
use llm_orchestrator::protocol::chat::{Egress, Ingress, Translation, VendorOptions};
use llm_orchestrator::protocol::{egress, ingress, sse};
use llm_orchestrator::routing::pick_key;
use serde_json::{json, Value};
use std::hint::black_box;

fn chat_request() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
            {"role": "user", "content": "What is the weather in Paris and in Berlin today?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            {"role": "user", "content": [{"type": "text", "text": "And Berlin?"}]}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "temperature": 0.7,
        "max_tokens": 512,
        "stream": true
    })
}

fn anthropic_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5", "max_tokens": 512, "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]}
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    })
}

fn translate(c: &mut Criterion) {
    let oa = serde_json::to_vec(&chat_request()).expect("json");
    let an = serde_json::to_vec(&anthropic_request()).expect("json");
    let opts = VendorOptions {
        default_max_tokens: Some(4096),
        anthropic_version: "2023-06-01".into(),
    };
    let mut g = c.benchmark_group("translate_request");
    let through = |body: &[u8], from: &dyn Ingress, to: &dyn Egress| {
        let req = from.decode_request(body).expect("decodes");
        to.encode_request(&req, "m", &opts).expect("encodes")
    };
    g.bench_function("openai_to_anthropic", |b| {
        b.iter(|| {
            through(
                black_box(&oa),
                &ingress::openai::OpenAiChat,
                &egress::anthropic::AnthropicMessages,
            )
        })
    });
    g.bench_function("openai_to_gemini", |b| {
        b.iter(|| {
            through(
                black_box(&oa),
                &ingress::openai::OpenAiChat,
                &egress::gemini::GeminiGenerate,
            )
        })
    });
    g.bench_function("anthropic_to_openai", |b| {
        b.iter(|| {
            through(
                black_box(&an),
                &ingress::anthropic::AnthropicMessages,
                &egress::openai::OpenAiChat,
            )
        })
    });
    g.finish();

    let an_resp = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "Hello there, how can I help you today?"}],
        "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 9}}).to_string();
    let ge_resp = json!({"candidates": [{"content": {"parts": [{"text": "Hello there, how can I help you today?"}], "role": "model"},
        "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 9, "totalTokenCount": 21}}).to_string();
    let oa_resp = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there, how can I help you today?"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}}).to_string();
    let back = |body: &[u8], from: &dyn Egress, to: &dyn Ingress| {
        let answer = from.decode_answer(body).expect("decodes");
        to.encode_answer(&answer, "m")
    };
    let mut g = c.benchmark_group("translate_response");
    g.bench_function("anthropic_to_openai", |b| {
        b.iter(|| {
            back(
                black_box(an_resp.as_bytes()),
                &egress::anthropic::AnthropicMessages,
                &ingress::openai::OpenAiChat,
            )
        })
    });
    g.bench_function("gemini_to_openai", |b| {
        b.iter(|| {
            back(
                black_box(ge_resp.as_bytes()),
                &egress::gemini::GeminiGenerate,
                &ingress::openai::OpenAiChat,
            )
        })
    });
    g.bench_function("openai_to_anthropic", |b| {
        b.iter(|| {
            back(
                black_box(oa_resp.as_bytes()),
                &egress::openai::OpenAiChat,
                &ingress::anthropic::AnthropicMessages,
            )
        })
    });
    g.finish();
}

fn streams(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_event");
    let start = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}"#;
    let block =
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#;
    let delta =
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#;
    let mut out = bytes::BytesMut::new();
    g.bench_function("anthropic_to_openai_text_delta", |b| {
        let mut t = Translation::new(
            egress::anthropic::AnthropicMessages.stream_decoder(),
            ingress::openai::OpenAiChat.stream_encoder("claude", true),
        );
        let _ = t.push("message_start", start, &mut out);
        let _ = t.push("content_block_start", block, &mut out);
        b.iter(|| {
            out.clear();
            t.push("content_block_delta", black_box(delta), &mut out)
        })
    });
    let chunk = r#"{"candidates":[{"content":{"parts":[{"text":"Hello"}],"role":"model"},"index":0}],"responseId":"r1"}"#;
    g.bench_function("gemini_to_openai_chunk", |b| {
        let mut t = Translation::new(
            egress::gemini::GeminiGenerate.stream_decoder(),
            ingress::openai::OpenAiChat.stream_encoder("gemini", true),
        );
        b.iter(|| {
            out.clear();
            t.push("", black_box(chunk), &mut out)
        })
    });
    let oa_chunk = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#;
    g.bench_function("openai_to_anthropic_chunk", |b| {
        let mut t = Translation::new(
            egress::openai::OpenAiChat.stream_decoder(),
            ingress::anthropic::AnthropicMessages.stream_encoder("gpt-4o", true),
        );
        b.iter(|| {
            out.clear();
            t.push("", black_box(oa_chunk), &mut out)
        })
    });
    let event = format!("data: {oa_chunk}\n\n");
    g.bench_function("sse_parse_event", |b| {
        let mut p = sse::SseParser::default();
        b.iter(|| p.push(black_box(event.as_bytes())))
    });
    g.finish();
}

fn config_text(n: usize) -> String {
    let mut t = String::new();
    for i in 0..n {
        t.push_str(&format!(
            "[[providers]]\nname = \"p{i}\"\ntype = \"openai\"\nbase_url = \"http://10.0.{}.{}:8000/v1\"\napi_keys = [\"sk-key-{i:012}-a\", \"sk-key-{i:012}-b\"]\nweight = {}\nmodels = [\"model-{}\", \"family-{}-*\"]\n",
            i / 250,
            i % 250,
            1 + i % 5,
            i % 20,
            i % 7
        ));
    }
    t
}

fn snapshot(n: usize) -> Snapshot {
    let file = parse_toml(&config_text(n), "bench.toml").expect("valid bench config");
    compile(&file, "bench.toml", &|_| None, &HealthRegistry::default())
        .expect("compiles")
        .1
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_and_pick");
    for n in [10usize, 1000] {
        let snap = snapshot(n);
        g.bench_with_input(BenchmarkId::new("exact_model", n), &snap, |b, snap| {
            b.iter(|| {
                let route = snap.route(black_box("model-3")).expect("served");
                let now = now_ms();
                let i = route
                    .pick(|i| snap.providers[i].health.selectable(now), |_| 1.0)
                    .expect("a provider");
                pick_key(&snap.providers[i], now, |_| false)
            })
        });
        g.bench_with_input(
            BenchmarkId::new("glob_model_cached", n),
            &snap,
            |b, snap| {
                b.iter(|| {
                    snap.route(black_box("family-3-large"))
                        .map(|r| r.candidates.len())
                })
            },
        );
    }
    g.finish();
    let mut g = c.benchmark_group("snapshot_build");
    g.sample_size(10);
    for n in [10usize, 1000] {
        let text = config_text(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let file = parse_toml(text, "bench.toml").expect("valid");
                compile(&file, "bench.toml", &|_| None, &HealthRegistry::default())
                    .map(|s| s.1.provider_count())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, translate, streams, routing);
criterion_main!(benches);
