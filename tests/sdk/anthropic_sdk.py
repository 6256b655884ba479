"""Drives the gateway's /v1/messages with the official `anthropic` Python SDK.

Usage: python3 anthropic_sdk.py <gateway base url> <token> <expected provider name> [--claude-code]

The caller scripts the vendor mock so that chat requests 3 and 4 (counted
from 1, in the order below) answer with a get_weather tool call. With
--claude-code, the routes Claude Code uses follow: count_tokens and the
model list (no scripted reply), then a thinking + tools loop for which
chat request 5 answers with a get_weather call and request 6 with text.
Prints one line per check; exits non-zero on the first failure.
"""
import json
import sys

import anthropic

base_url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
claude_code = "--claude-code" in sys.argv[4:]
client = anthropic.Anthropic(base_url=base_url, api_key=token, max_retries=0)
tools = [{
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]

# 1. Non-streaming text.
m = client.messages.create(
    model="claude-test", max_tokens=64, system="Be brief.",
    messages=[{"role": "user", "content": "Hi"}],
)
text = "".join(b.text for b in m.content if b.type == "text")
assert text == f"Hello from {name}", m
assert m.stop_reason == "end_turn", m.stop_reason
assert m.usage.output_tokens > 0, m.usage
print("non-stream ok")

# 2. Streaming text.
with client.messages.stream(
    model="claude-test", max_tokens=64, messages=[{"role": "user", "content": "Hi"}],
) as s:
    streamed = "".join(s.text_stream)
    final = s.get_final_message()
assert streamed == f"Hello from {name}", streamed
assert final.stop_reason == "end_turn", final.stop_reason
assert final.usage.output_tokens > 0, final.usage
print("stream ok")

# 3. Tool call, non-streaming.
m = client.messages.create(
    model="claude-test", max_tokens=64, tools=tools,
    messages=[{"role": "user", "content": "Weather in Paris?"}],
)
uses = [b for b in m.content if b.type == "tool_use"]
assert len(uses) == 1 and uses[0].name == "get_weather", m
assert uses[0].input == {"city": "Paris"}, uses[0].input
assert m.stop_reason == "tool_use", m.stop_reason
tool_id = uses[0].id
print("tool non-stream ok")

# 4. Tool call, streaming: input arrives as input_json deltas.
with client.messages.stream(
    model="claude-test", max_tokens=64, tools=tools,
    messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "18C, sunny"}]},
    ],
) as s:
    final = s.get_final_message()
uses = [b for b in final.content if b.type == "tool_use"]
assert len(uses) == 1 and uses[0].input == {"city": "Paris"}, final
assert final.stop_reason == "tool_use", final.stop_reason
print("tool stream ok")

# 5. Errors come back as the SDK's typed exceptions.
try:
    client.messages.create(model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    raise SystemExit("unknown model did not raise")
except anthropic.NotFoundError:
    pass
print("not-found ok")

try:
    anthropic.Anthropic(base_url=base_url, api_key="wrong", max_retries=0).messages.create(
        model="claude-test", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    raise SystemExit("bad key did not raise")
except anthropic.AuthenticationError:
    pass
print("auth ok")

if not claude_code:
    raise SystemExit(0)

# 6. Token counting (each vendor type: forwarded, countTokens, estimate).
count = client.messages.count_tokens(
    model="claude-test", system="Be brief.", tools=tools,
    messages=[{"role": "user", "content": "Weather in Paris?"}],
)
assert count.input_tokens > 0, count
print("count_tokens ok")

# 7. The model list and one model, in Anthropic's shape.
ids = [m.id for m in client.models.list()]
assert "claude-test" in ids, ids
one = client.models.retrieve("claude-test")
assert one.id == "claude-test" and one.type == "model", one
assert one.created_at.year == 1970, one
print("models ok")

# 8. Thinking + tools: the assistant content goes back as it came.
thinking = {"type": "enabled", "budget_tokens": 1024}
question = {"role": "user", "content": "Weather in Paris?"}
m = client.messages.create(
    model="claude-test", max_tokens=2048, thinking=thinking, tools=tools, messages=[question],
)
assert m.stop_reason == "tool_use", m
use = next(b for b in m.content if b.type == "tool_use")
signed = [b.signature for b in m.content if b.type == "thinking" and b.signature]
print("thinking signatures:", len(signed))
final = client.messages.create(
    model="claude-test", max_tokens=2048, thinking=thinking, tools=tools,
    messages=[
        question,
        {"role": "assistant", "content": m.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C"}]},
    ],
)
text = "".join(b.text for b in final.content if b.type == "text")
assert text == f"Hello from {name}", final
print("thinking tools ok")
