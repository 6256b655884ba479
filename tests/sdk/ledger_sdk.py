"""Usage through the official `openai` and `anthropic` SDKs with a client key
(tests/ledger.rs checks the per-key rows the gateway recorded).

Usage: ledger_sdk.py BASE_URL SECRET OPENAI_MODEL ANTHROPIC_MODEL
Prints one line per check; exits non-zero on the first failure.
"""

import sys

import anthropic
import openai

base, secret, oa_model, an_model = sys.argv[1:5]
hi = [{"role": "user", "content": "Hi"}]

oa = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0)
r = oa.chat.completions.create(model=oa_model, messages=hi)
assert r.usage and r.usage.prompt_tokens_details.cached_tokens == 4000, r.usage
print("openai whole ok")

# No include_usage: no usage chunk reaches the SDK, every chunk has a choice.
chunks = list(oa.chat.completions.create(model=oa_model, messages=hi, stream=True))
assert chunks and all(c.usage is None and c.choices for c in chunks), chunks[-1]
print("openai stream without usage ok")

chunks = list(
    oa.chat.completions.create(
        model=oa_model, messages=hi, stream=True, stream_options={"include_usage": True}
    )
)
assert chunks[-1].usage and chunks[-1].usage.completion_tokens == 500, chunks[-1]
print("openai stream with usage ok")

an = anthropic.Anthropic(base_url=base, api_key=secret, max_retries=0)
m = an.messages.create(model=an_model, max_tokens=64, messages=hi)
assert m.usage.cache_creation_input_tokens == 2500, m.usage
assert m.usage.cache_creation.ephemeral_1h_input_tokens == 500, m.usage
print("anthropic whole ok")
with an.messages.stream(model=an_model, max_tokens=64, messages=hi) as s:
    final = s.get_final_message()
assert final.usage.cache_read_input_tokens == 4000, final.usage
print("anthropic stream ok")
