"""A client key with an RPM limit through the official `openai` and
`anthropic` SDKs: the request over the limit is the SDK's RateLimitError,
with the gateway's Retry-After and message.

Usage: limits_sdk.py BASE_URL SECRET MODEL   (the key has rpm = 1)
Prints one line per check; exits non-zero on the first failure.
"""

import sys

import anthropic
import openai

base, secret, model = sys.argv[1:4]

oa = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0)
r = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
assert r.choices[0].message.content, r
print("openai first ok")
try:
    oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    raise SystemExit("openai: the request over the rpm limit was served")
except openai.RateLimitError as e:
    assert e.status_code == 429, e
    retry = int(e.response.headers["retry-after"])
    assert 1 <= retry <= 61, retry
    assert "rpm limit of 1 reached for this key" in str(e), str(e)
    assert e.code == "rate_limit_exceeded", e.code
    print("openai rate limited ok")

an = anthropic.Anthropic(base_url=base, api_key=secret, max_retries=0)
try:
    an.messages.create(model=model, max_tokens=32, messages=[{"role": "user", "content": "Hi"}])
    raise SystemExit("anthropic: the request over the rpm limit was served")
except anthropic.RateLimitError as e:
    assert e.status_code == 429, e
    assert "rpm limit of 1 reached for this key" in str(e), str(e)
    print("anthropic rate limited ok")
