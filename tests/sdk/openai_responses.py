"""Drives the gateway's Responses API with the official `openai` Python SDK.

Usage: python3 openai_responses.py <base_url ending in /v1> <token> <expected provider name> [--custom]

The caller scripts the vendor mock: requests 1-2 answer text, 3 a
get_weather({"city":"Paris"}) call, 4 text, 5 a get_weather call (streamed),
and with --custom 6 an apply_patch({"input":"diff"}) call.
Prints one line per check; exits non-zero on the first failure.
"""
import json
import sys

import openai

base_url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0)
tools = [{
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]

# 1. Non-streaming text (the SDK's default: store omitted, i.e. true).
r = client.responses.create(model="gpt-4o-mini", instructions="Be terse.", input="Hi")
assert r.output_text == f"Hello from {name}", r
assert r.status == "completed", r
assert r.usage.total_tokens > 0 and r.usage.input_tokens > 0, r.usage
print("create ok")

# 2. The stream helper: events, then the final response.
with client.responses.stream(model="gpt-4o-mini", input="Hi") as stream:
    deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    final = stream.get_final_response()
assert deltas == f"Hello from {name}", deltas
assert final.output_text == deltas, final
assert final.usage is not None and final.usage.output_tokens > 0, final.usage
print("stream ok")

# 3-4. Function tools over two turns.
r = client.responses.create(model="gpt-4o-mini", input="Weather in Paris?", tools=tools)
calls = [o for o in r.output if o.type == "function_call"]
assert len(calls) == 1 and calls[0].name == "get_weather", r.output
assert json.loads(calls[0].arguments) == {"city": "Paris"}, calls[0]
history = [{"role": "user", "content": "Weather in Paris?"}]
history += [o.model_dump(exclude_none=True) for o in r.output]
history.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C"})
r = client.responses.create(model="gpt-4o-mini", input=history, tools=tools)
assert r.output_text == f"Hello from {name}", r
print("tools ok")

# 5. A streamed tool call through the helper.
with client.responses.stream(model="gpt-4o-mini", input="Weather in Paris?", tools=tools) as stream:
    snapshots = [e.snapshot for e in stream if e.type == "response.function_call_arguments.delta"]
    final = stream.get_final_response()
call = [o for o in final.output if o.type == "function_call"][0]
assert json.loads(call.arguments) == {"city": "Paris"}, call
assert snapshots and snapshots[-1] == call.arguments, snapshots
print("tool stream ok")

# 6. Codex-style: a freeform tool, store false, encrypted reasoning asked for.
if "--custom" in sys.argv:
    r = client.responses.create(
        model="gpt-4o-mini",
        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix it"}]}],
        tools=[{"type": "custom", "name": "apply_patch", "description": "Apply a patch"}],
        store=False,
        include=["reasoning.encrypted_content"],
        parallel_tool_calls=False,
    )
    custom = [o for o in r.output if o.type == "custom_tool_call"]
    assert len(custom) == 1 and custom[0].input == "diff", r.output
    print("custom ok")

# No server-side state: a clear 400.
try:
    client.responses.create(model="gpt-4o-mini", input="Hi", previous_response_id="resp_1")
    raise AssertionError("previous_response_id was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.param == "previous_response_id", (e, e.param)
print("stateless ok")
