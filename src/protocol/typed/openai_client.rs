//! OpenAI client -> Anthropic vendor: typed fast paths (see the module docs
//! of `super`).
