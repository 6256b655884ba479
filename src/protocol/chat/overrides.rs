//! Operator overrides, in two tiers:
//!
//! - [`Overrides`]: `set` / `default` / `drop` of **canonical** fields, named
//!   as in OpenAI chat (`temperature`, `max_tokens`, `stop`, …), applied to
//!   the [`Request`] before any egress adapter sees it — so they mean the
//!   same thing for every vendor.
//! - [`VendorEdits`]: per-provider `set` / `default` / `drop` on the vendor's
//!   own body by dotted path (`generationConfig.thinkingConfig.thinkingBudget`),
//!   applied after encoding, for fields only that vendor has.
//!
//! Both are checked when the configuration is compiled: an unknown canonical
//! name or a value of the wrong type is a configuration error naming what to
//! write instead, never a surprise at request time.

use super::{Effort, ReasoningConfig, Request};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// A canonical field an override may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Temperature,
    TopP,
    TopK,
    Seed,
    PresencePenalty,
    FrequencyPenalty,
    Stop,
    MaxTokens,
    ReasoningEffort,
    ParallelToolCalls,
    User,
}

/// The canonical names (and accepted aliases), for messages and docs.
pub const CANONICAL_FIELDS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "reasoning_effort",
    "parallel_tool_calls",
    "user",
];

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "temperature" => Field::Temperature,
            "top_p" => Field::TopP,
            "top_k" => Field::TopK,
            "seed" => Field::Seed,
            "presence_penalty" => Field::PresencePenalty,
            "frequency_penalty" => Field::FrequencyPenalty,
            "stop" | "stop_sequences" => Field::Stop,
            "max_tokens" | "max_completion_tokens" | "max_output_tokens" => Field::MaxTokens,
            "reasoning_effort" => Field::ReasoningEffort,
            "parallel_tool_calls" => Field::ParallelToolCalls,
            "user" => Field::User,
            _ => return None,
        })
    }
}

/// A value checked against its field's type.
#[derive(Debug, Clone, PartialEq)]
enum Setting {
    Float(f64),
    Count(u64),
    Int(i64),
    Bool(bool),
    Text(String),
    Texts(Vec<String>),
    Effort(Effort),
}

fn setting(field: Field, v: &Value) -> Result<Setting, String> {
    let want = |what: &str| Err(format!("must be {what}"));
    match field {
        Field::Temperature | Field::TopP | Field::PresencePenalty | Field::FrequencyPenalty => {
            match v.as_f64() {
                Some(f) if f.is_finite() => Ok(Setting::Float(f)),
                _ => want("a number"),
            }
        }
        Field::TopK | Field::MaxTokens => match v.as_u64() {
            Some(n) => Ok(Setting::Count(n)),
            None => want("a non-negative integer"),
        },
        Field::Seed => match v.as_i64() {
            Some(n) => Ok(Setting::Int(n)),
            None => want("an integer"),
        },
        Field::ParallelToolCalls => match v.as_bool() {
            Some(b) => Ok(Setting::Bool(b)),
            None => want("true or false"),
        },
        Field::User => match v.as_str() {
            Some(s) if s.len() <= 256 => Ok(Setting::Text(s.to_string())),
            _ => want("a string of at most 256 bytes"),
        },
        Field::Stop => match v {
            Value::String(s) => Ok(Setting::Texts(vec![s.clone()])),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(Setting::Texts)
                .ok_or_else(|| "must be a string or a list of strings".to_string()),
            _ => want("a string or a list of strings"),
        },
        Field::ReasoningEffort => match v.as_str().and_then(Effort::parse) {
            Some(e) => Ok(Setting::Effort(e)),
            None => want("one of none, minimal, low, medium, high, xhigh"),
        },
    }
}

/// A problem found while compiling overrides: the key under the section
/// (`set.max_tokens`) and what is wrong.
pub type OverrideProblem = (String, String);

/// Compiled canonical overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    set: Vec<(Field, Setting)>,
    default: Vec<(Field, Setting)>,
    drop: Vec<Field>,
}

fn unknown(name: &str) -> String {
    if name == "model" || name == "stream" {
        return "cannot be overridden (use model_map / aliases to rename models)".into();
    }
    format!(
        "`{name}` is not a canonical field (known: {}); for a field only one vendor has, \
         use the provider's vendor override, e.g. [providers.overrides.vendor] set = {{ \"{name}\" = ... }}",
        CANONICAL_FIELDS.join(", ")
    )
}

/// Compiled `set` / `default` / `drop` lists: `key` checks a name, `value`
/// a value for that key. Every problem is collected (key under `prefix`),
/// not just the first.
#[allow(clippy::type_complexity)]
fn compile_rules<K, V>(
    prefix: &str,
    set: &[(String, Value)],
    default: &[(String, Value)],
    drop: &[String],
    key: impl Fn(&str) -> Result<K, String>,
    value: impl Fn(&K, &Value) -> Result<V, String>,
) -> Result<(Vec<(K, V)>, Vec<(K, V)>, Vec<K>), Vec<OverrideProblem>> {
    let mut problems = Vec::new();
    let mut lists = [Vec::new(), Vec::new()];
    for (section, list, into) in [("set", set, 0), ("default", default, 1)] {
        for (name, v) in list {
            match key(name).and_then(|k| value(&k, v).map(|v| (k, v))) {
                Ok(kv) => lists[into].push(kv),
                Err(m) => problems.push((format!("{prefix}{section}.{name}"), m)),
            }
        }
    }
    let mut dropped = Vec::new();
    for name in drop {
        match key(name) {
            Ok(k) => dropped.push(k),
            Err(m) => problems.push((format!("{prefix}drop.{name}"), m)),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let [set, default] = lists;
    Ok((set, default, dropped))
}

impl Overrides {
    /// Check and compile `set` / `default` / `drop`; every problem is
    /// reported, not just the first.
    pub fn compile(
        set: &[(String, Value)],
        default: &[(String, Value)],
        drop: &[String],
    ) -> Result<Overrides, Vec<OverrideProblem>> {
        let (set, default, drop) = compile_rules(
            "",
            set,
            default,
            drop,
            |name| Field::parse(name).ok_or_else(|| unknown(name)),
            |field, v| setting(*field, v),
        )?;
        Ok(Overrides { set, default, drop })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.default.is_empty() && self.drop.is_empty()
    }

    /// Apply in a fixed order: drop, then default, then set — so `set`
    /// always wins and a dropped field can be given a fresh default.
    pub fn apply(&self, req: &mut Request<'_>) {
        for f in &self.drop {
            clear(req, *f);
        }
        for (f, s) in &self.default {
            if !present(req, *f) {
                assign(req, *f, s);
            }
        }
        for (f, s) in &self.set {
            assign(req, *f, s);
        }
    }
}

fn clear(req: &mut Request<'_>, f: Field) {
    let s = &mut req.sampling;
    match f {
        Field::Temperature => s.temperature = None,
        Field::TopP => s.top_p = None,
        Field::TopK => s.top_k = None,
        Field::Seed => s.seed = None,
        Field::PresencePenalty => s.presence_penalty = None,
        Field::FrequencyPenalty => s.frequency_penalty = None,
        Field::Stop => s.stop.clear(),
        Field::MaxTokens => req.max_tokens = None,
        Field::ReasoningEffort => req.reasoning = None,
        Field::ParallelToolCalls => req.parallel_tool_calls = None,
        Field::User => req.user = None,
    }
}

fn present(req: &Request<'_>, f: Field) -> bool {
    let s = &req.sampling;
    match f {
        Field::Temperature => s.temperature.is_some(),
        Field::TopP => s.top_p.is_some(),
        Field::TopK => s.top_k.is_some(),
        Field::Seed => s.seed.is_some(),
        Field::PresencePenalty => s.presence_penalty.is_some(),
        Field::FrequencyPenalty => s.frequency_penalty.is_some(),
        Field::Stop => !s.stop.is_empty(),
        Field::MaxTokens => req.max_tokens.is_some(),
        Field::ReasoningEffort => req.reasoning.is_some(),
        Field::ParallelToolCalls => req.parallel_tool_calls.is_some(),
        Field::User => req.user.is_some(),
    }
}

fn assign(req: &mut Request<'_>, f: Field, v: &Setting) {
    let s = &mut req.sampling;
    match (f, v) {
        (Field::Temperature, Setting::Float(x)) => s.temperature = Some(*x),
        (Field::TopP, Setting::Float(x)) => s.top_p = Some(*x),
        (Field::PresencePenalty, Setting::Float(x)) => s.presence_penalty = Some(*x),
        (Field::FrequencyPenalty, Setting::Float(x)) => s.frequency_penalty = Some(*x),
        (Field::TopK, Setting::Count(n)) => s.top_k = Some(*n),
        (Field::MaxTokens, Setting::Count(n)) => req.max_tokens = Some(*n),
        (Field::Seed, Setting::Int(n)) => s.seed = Some(*n),
        (Field::ParallelToolCalls, Setting::Bool(b)) => req.parallel_tool_calls = Some(*b),
        (Field::User, Setting::Text(t)) => req.user = Some(Cow::Owned(t.clone())),
        (Field::Stop, Setting::Texts(t)) => {
            s.stop = t.iter().map(|x| Cow::Owned(x.clone())).collect();
        }
        (Field::ReasoningEffort, Setting::Effort(e)) => {
            req.reasoning = Some(ReasoningConfig::Effort(*e));
        }
        // `compile` pairs every field with its own kind of setting.
        _ => {}
    }
}

/// Raw edits of one vendor's body by dotted path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VendorEdits {
    set: Vec<(Vec<String>, Value)>,
    default: Vec<(Vec<String>, Value)>,
    drop: Vec<Vec<String>>,
}

fn path_of(p: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = p.split('.').map(str::to_string).collect();
    if parts.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "`{p}` is not a dotted path (a.b.c, no empty segments)"
        ));
    }
    if parts.len() == 1 && (parts[0] == "model" || parts[0] == "stream") {
        return Err("cannot be overridden (use model_map / aliases to rename models)".into());
    }
    Ok(parts)
}

impl VendorEdits {
    pub fn compile(
        set: &[(String, Value)],
        default: &[(String, Value)],
        drop: &[String],
    ) -> Result<VendorEdits, Vec<OverrideProblem>> {
        let (set, default, drop) =
            compile_rules("vendor.", set, default, drop, path_of, |_, v| Ok(v.clone()))?;
        Ok(VendorEdits { set, default, drop })
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.default.is_empty() && self.drop.is_empty()
    }

    /// Drop, then default, then set; objects on the way are created as
    /// needed (a non-object on the way is replaced).
    pub fn apply(&self, body: &mut Map<String, Value>) {
        for p in &self.drop {
            if let Some((last, parents)) = p.split_last() {
                if let Some(obj) = walk(body, parents, false) {
                    obj.remove(last);
                }
            }
        }
        for (p, v) in &self.default {
            if let Some((last, parents)) = p.split_last() {
                if let Some(obj) = walk(body, parents, true) {
                    if obj.get(last).is_none_or(Value::is_null) {
                        obj.insert(last.clone(), v.clone());
                    }
                }
            }
        }
        for (p, v) in &self.set {
            if let Some((last, parents)) = p.split_last() {
                if let Some(obj) = walk(body, parents, true) {
                    obj.insert(last.clone(), v.clone());
                }
            }
        }
    }
}

/// The object at `path` under `body`; with `create`, missing (or
/// non-object) steps become empty objects.
fn walk<'m>(
    body: &'m mut Map<String, Value>,
    path: &[String],
    create: bool,
) -> Option<&'m mut Map<String, Value>> {
    let mut cur = body;
    for key in path {
        if create {
            let slot = cur
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            cur = slot.as_object_mut()?;
        } else {
            cur = cur.get_mut(key)?.as_object_mut()?;
        }
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::super::{Family, Request};
    use super::*;
    use serde_json::json;

    fn kv(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn drop_then_default_then_set() {
        let o = Overrides::compile(
            &kv(&[("max_tokens", json!(100))]),
            &kv(&[("temperature", json!(0.2)), ("user", json!("gw"))]),
            &["top_p".to_string()],
        )
        .expect("valid overrides");
        let mut req = Request::new("m", Family::OpenAi);
        req.max_tokens = Some(4000);
        req.user = Some("alice".into());
        req.sampling.top_p = Some(0.5);
        o.apply(&mut req);
        assert_eq!(req.max_tokens, Some(100));
        assert_eq!(req.sampling.temperature, Some(0.2));
        assert_eq!(req.user.as_deref(), Some("alice"));
        assert_eq!(req.sampling.top_p, None);
    }

    #[test]
    fn unknown_names_and_wrong_types_are_reported_together() {
        let err = Overrides::compile(
            &kv(&[("logit_bias", json!({})), ("temperature", json!("hot"))]),
            &kv(&[("model", json!("x"))]),
            &["nope".to_string()],
        )
        .expect_err("invalid overrides");
        let keys: Vec<&str> = err.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "set.logit_bias",
                "set.temperature",
                "default.model",
                "drop.nope"
            ]
        );
        assert!(err[0].1.contains("vendor override"), "{}", err[0].1);
    }

    #[test]
    fn vendor_edits_walk_dotted_paths() {
        let e = VendorEdits::compile(
            &kv(&[("generationConfig.thinkingConfig.thinkingBudget", json!(0))]),
            &kv(&[("generationConfig.temperature", json!(0.3))]),
            &["safetySettings".to_string()],
        )
        .expect("valid edits");
        let mut body = json!({"generationConfig": {"temperature": 0.9}, "safetySettings": []})
            .as_object()
            .cloned()
            .unwrap_or_default();
        e.apply(&mut body);
        assert_eq!(
            Value::Object(body),
            json!({"generationConfig": {"temperature": 0.9, "thinkingConfig": {"thinkingBudget": 0}}})
        );
        assert!(VendorEdits::compile(&kv(&[("a..b", json!(1))]), &[], &[]).is_err());
    }
}
