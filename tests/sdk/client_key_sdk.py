"""A client key through the official `openai` and `anthropic` SDKs.

Usage: client_key_sdk.py BASE_URL SECRET ALLOWED_MODEL DENIED_MODEL
Prints one line per check; exits non-zero on the first failure.
"""

import sys

import anthropic
import openai

base, secret, allowed, denied = sys.argv[1:5]

oa = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0)
r = oa.chat.completions.create(model=allowed, messages=[{"role": "user", "content": "Hi"}])
assert r.choices[0].message.content, r
print("openai allowed ok")
try:
    oa.chat.completions.create(model=denied, messages=[{"role": "user", "content": "Hi"}])
    raise SystemExit("openai: denied model was served")
except openai.PermissionDeniedError as e:
    assert e.status_code == 403
    print("openai denied ok")

an = anthropic.Anthropic(base_url=base, api_key=secret, max_retries=0)
m = an.messages.create(model=allowed, max_tokens=32, messages=[{"role": "user", "content": "Hi"}])
assert m.content, m
print("anthropic allowed ok")
try:
    an.messages.create(model=denied, max_tokens=32, messages=[{"role": "user", "content": "Hi"}])
    raise SystemExit("anthropic: denied model was served")
except anthropic.PermissionDeniedError as e:
    assert e.status_code == 403
    print("anthropic denied ok")

bad = openai.OpenAI(base_url=base + "/v1", api_key=secret[:-1] + ("A" if secret[-1] != "A" else "B"), max_retries=0)
try:
    bad.chat.completions.create(model=allowed, messages=[{"role": "user", "content": "Hi"}])
    raise SystemExit("openai: a wrong key was accepted")
except openai.AuthenticationError:
    print("wrong key ok")
