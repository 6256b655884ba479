"""Drives the gateway with the official `openai` Python SDK.

Usage: python3 openai_sdk.py <base_url ending in /v1> <token> <expected provider name> [--tools]

With --tools the caller scripts the vendor mock so that chat requests 3 and 4
(counted from 1) answer with a get_weather tool call, and the script checks
the tool calls, streamed and not.
Prints one line per check; exits non-zero on the first failure.
"""
import json
import sys

import openai

base_url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0)

# Non-streaming, with tools in the request (passed through untouched).
tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]
r = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hi"}],
    tools=tools,
)
assert r.choices[0].message.content == f"Hello from {name}", r
assert r.usage.total_tokens > 0, r.usage
print("non-stream ok")

# Streaming with usage.
stream = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hi"}],
    stream=True,
    stream_options={"include_usage": True},
)
text, usage = "", None
for chunk in stream:
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage
assert text == f"Hello from {name}", text
assert usage is not None and usage.total_tokens > 0, usage
print("stream ok")

if "--tools" in sys.argv:
    r = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Paris?"}], tools=tools,
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather", r
    assert json.loads(call.function.arguments) == {"city": "Paris"}, call
    assert r.choices[0].finish_reason == "tool_calls", r.choices[0].finish_reason
    print("tool non-stream ok")

    stream = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, tools=tools,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"},
        ],
    )
    name_seen, args, finish = None, "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or []:
            name_seen = tc.function.name or name_seen
            args += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name_seen == "get_weather" and json.loads(args) == {"city": "Paris"}, (name_seen, args)
    assert finish == "tool_calls", finish
    print("tool stream ok")

# Models list.
ids = [m.id for m in client.models.list()]
assert "gpt-4o-mini" in ids and "fast" in ids, ids
print("models ok")

# Errors surface as the SDK's typed exceptions.
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("unknown model did not raise")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e
print("not-found ok")

bad = openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0)
try:
    bad.models.list()
    raise SystemExit("bad token did not raise")
except openai.AuthenticationError:
    pass
print("auth ok")
