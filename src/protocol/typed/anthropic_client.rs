//! Anthropic client -> OpenAI vendor: typed fast paths (see the module docs
//! of `super`).
