"""Drives the gateway's Gemini-native API with the official `google-genai` Python SDK.

Usage: python3 genai_sdk.py <gateway base url> <token> <expected provider name> [--count]

The caller scripts the vendor mock so that generate requests 3 and 4
(counted from 1, in the order below) answer with a get_weather function
call. `--count` also checks count_tokens (Gemini vendors only).
Prints one line per check; exits non-zero on the first failure.
"""
import sys

from google import genai
from google.genai import errors, types

base_url, token, name = sys.argv[1], sys.argv[2], sys.argv[3]
count = "--count" in sys.argv[4:]
client = genai.Client(
    api_key=token,
    http_options=types.HttpOptions(base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1)),
)
MODEL = "m-test"
weather = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters=types.Schema(
        type=types.Type.OBJECT,
        properties={"city": types.Schema(type=types.Type.STRING)},
        required=["city"],
    ),
)
tools = [types.Tool(function_declarations=[weather])]
no_afc = types.AutomaticFunctionCallingConfig(disable=True)

# 1. Non-streaming text.
r = client.models.generate_content(
    model=MODEL,
    contents="Hi",
    config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=64, temperature=0.2),
)
assert r.text == f"Hello from {name}", r
assert r.candidates[0].finish_reason == types.FinishReason.STOP, r
assert r.usage_metadata.total_token_count > 0, r.usage_metadata
print("generate ok")

# 2. Streaming text.
chunks = list(client.models.generate_content_stream(model=MODEL, contents="Hi"))
streamed = "".join(c.text or "" for c in chunks)
assert streamed == f"Hello from {name}", chunks
assert len(chunks) >= 2, chunks
assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP, chunks[-1]
assert chunks[-1].usage_metadata.total_token_count > 0, chunks[-1]
print("stream ok")

# 3. Function call, non-streaming.
question = types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])
r = client.models.generate_content(
    model=MODEL,
    contents=[question],
    config=types.GenerateContentConfig(tools=tools, automatic_function_calling=no_afc),
)
calls = r.function_calls or []
assert len(calls) == 1 and calls[0].name == "get_weather", r
assert calls[0].args == {"city": "Paris"}, calls[0].args
model_turn = r.candidates[0].content
print("function call ok")

# 4. Function call, streaming: the call arrives whole in one chunk.
chunks = list(client.models.generate_content_stream(
    model=MODEL,
    contents=[question],
    config=types.GenerateContentConfig(tools=tools, automatic_function_calling=no_afc),
))
streamed_calls = [fc for c in chunks for fc in (c.function_calls or [])]
assert len(streamed_calls) == 1 and streamed_calls[0].args == {"city": "Paris"}, chunks
print("function call stream ok")

# 5. Second turn: the model's turn as it came, and the function's answer.
answer = types.Part.from_function_response(name="get_weather", response={"temperature": 21})
if calls[0].id:
    answer.function_response.id = calls[0].id
r = client.models.generate_content(
    model=MODEL,
    contents=[question, model_turn, types.Content(role="user", parts=[answer])],
    config=types.GenerateContentConfig(tools=tools, automatic_function_calling=no_afc),
)
assert r.text == f"Hello from {name}", r
print("function response ok")

# 6. Errors come back as the SDK's typed errors.
try:
    client.models.generate_content(model="no-such-model", contents="Hi")
    raise AssertionError("unknown model accepted")
except errors.ClientError as e:
    assert e.code == 404 and e.status == "NOT_FOUND", e
print("not-found ok")
bad = genai.Client(
    api_key="wrong-key",
    http_options=types.HttpOptions(base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1)),
)
try:
    bad.models.generate_content(model=MODEL, contents="Hi")
    raise AssertionError("bad key accepted")
except errors.ClientError as e:
    assert e.code == 401 and e.status == "UNAUTHENTICATED", e
print("auth ok")

# 7. The model list.
names = [m.name for m in client.models.list()]
assert f"models/{MODEL}" in names, names
print("models ok")

if count:
    c = client.models.count_tokens(model=MODEL, contents="How many tokens is this?")
    assert c.total_tokens > 0, c
    print("count tokens ok")
