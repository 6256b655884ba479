//! JSON Schema -> the OpenAPI 3.0 subset Gemini's `Schema` object accepts.
//! Used for function `parameters` and `responseSchema`; Gemini rejects a
//! request for any keyword outside the subset, so tool schemas written for
//! OpenAI or by pydantic/zod must be reduced here.
//!
//! Schemas are small and cleaned once per request, so this works on a
//! `serde_json::Value` tree (a transformation, not a second translator).

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// Deepest schema nesting kept; deeper levels become a bare object.
const MAX_SCHEMA_DEPTH: usize = 40;
/// `$ref` expansions per schema, so a schema whose references fan out
/// cannot make us build an exponentially large tree.
const MAX_REF_EXPANSIONS: usize = 512;

/// `raw` cleaned, if it is a JSON object.
fn cleaned(raw: &RawValue) -> Option<Value> {
    let schema: Value = serde_json::from_str(raw.get()).ok()?;
    schema.is_object().then(|| clean_schema(&schema))
}

fn has_properties(schema: &Value) -> bool {
    let props = schema.get("properties").and_then(Value::as_object);
    props.is_some_and(|p| !p.is_empty())
}

/// Cleaned `parameters` of a function declaration, or `None` for a function
/// without parameters (Gemini rejects an OBJECT schema with no properties, so
/// such a function is declared without `parameters`).
pub(super) fn parameters(raw: &RawValue) -> Option<Value> {
    let mut cleaned = cleaned(raw)?;
    let obj = cleaned.as_object_mut()?;
    // A union at the root cannot be an OBJECT: declare the union of the
    // branches' properties, requiring only what every branch requires.
    let union = (!obj.contains_key("properties")).then(|| obj.remove("anyOf"));
    if let Some(Some(Value::Array(branches))) = union {
        let mut props = Map::new();
        let mut required: Option<Vec<Value>> = None;
        for b in &branches {
            if let Some(Value::Object(p)) = b.get("properties") {
                p.iter()
                    .for_each(|(k, v)| _ = props.entry(k).or_insert_with(|| v.clone()));
            }
            let r = b.get("required").and_then(Value::as_array).cloned();
            let r = r.unwrap_or_default();
            required = Some(match required {
                None => r,
                Some(prev) => prev.into_iter().filter(|n| r.contains(n)).collect(),
            });
        }
        if !props.is_empty() {
            obj.insert("properties".into(), Value::Object(props));
            if let Some(r) = required.filter(|r| !r.is_empty()) {
                obj.insert("required".into(), Value::Array(r));
            }
        }
    }
    if !has_properties(&cleaned) {
        return None;
    }
    let obj = cleaned.as_object_mut()?;
    obj.insert("type".into(), "object".into());
    obj.remove("nullable");
    Some(cleaned)
}

/// A cleaned `responseSchema`, or `None` when it would say nothing Gemini
/// accepts (an untyped root, an object without properties): JSON mode alone
/// already asks for "any JSON".
pub(super) fn response_schema(raw: &RawValue) -> Option<Value> {
    let cleaned = cleaned(raw)?;
    let typed = cleaned.get("type").is_some() || cleaned.get("anyOf").is_some();
    let empty_object = cleaned["type"] == "object" && !has_properties(&cleaned);
    (typed && !empty_object).then_some(cleaned)
}

/// Reduces a JSON Schema to what Gemini's `Schema` accepts: type, format,
/// title, description, nullable, enum, items, min/maxItems, properties,
/// required, min/maxProperties, propertyOrdering, min/maxLength, pattern,
/// minimum, maximum, anyOf. Everything else (`$schema`,
/// `additionalProperties`, `default`, `examples`, ...) is dropped.
///
/// * `$ref` into `$defs`/`definitions` is inlined (a recursive reference
///   stops at the referenced type); `allOf` is merged; `oneOf` becomes `anyOf`.
/// * `"type": ["string","null"]` and null union branches become `nullable`;
///   several non-null types become an `anyOf` of single-type schemas.
/// * `const` becomes a one-value `enum`; enums must be strings for Gemini, so
///   a non-string enum is dropped and its values are listed in the description.
/// * Missing types are inferred (properties: object, items: array, enum:
///   string), and a nested schema that still has none (`{}`, `true`) is
///   declared a string, since Gemini rejects typeless nodes; an array without
///   `items` gets string items (Gemini requires them); `required` keeps only
///   declared properties; an object without properties is kept as a bare
///   `{"type":"object"}`.
pub fn clean_schema(schema: &Value) -> Value {
    let mut cleaner = SchemaCleaner {
        root: schema,
        // "#" is the root itself: a reference to it is recursion.
        resolving: vec!["#".to_string()],
        expansions: 0,
    };
    let mut cleaned = Value::Object(cleaner.clean(schema, 0));
    ensure_types(&mut cleaned, true);
    cleaned
}

/// Gemini rejects a nested schema with neither `type` nor `anyOf`; what is
/// left of "any value" (`{}`, `true`, a dangling `$ref`) is declared a
/// string. Done as a last pass because while merging, an untyped piece must
/// not shadow the type another piece brings.
fn ensure_types(schema: &mut Value, is_root: bool) {
    let Some(s) = schema.as_object_mut() else {
        return;
    };
    if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(|p| ensure_types(p, false));
    }
    if let Some(items) = s.get_mut("items") {
        ensure_types(items, false);
    }
    if let Some(branches) = s.get_mut("anyOf").and_then(Value::as_array_mut) {
        branches.iter_mut().for_each(|b| ensure_types(b, false));
    }
    if !is_root && !s.contains_key("type") && !s.contains_key("anyOf") {
        s.insert("type".into(), "string".into());
    }
}

struct SchemaCleaner<'a> {
    root: &'a Value,
    resolving: Vec<String>,
    expansions: usize,
}

impl SchemaCleaner<'_> {
    fn clean(&mut self, schema: &Value, depth: usize) -> Map<String, Value> {
        let Some(src) = schema.as_object() else {
            // `true`/`false` schemas and junk: "anything".
            return Map::new();
        };
        if depth > MAX_SCHEMA_DEPTH {
            return Map::from_iter([("type".into(), "object".into())]);
        }
        let mut out = Map::new();
        if let Some(r) = src.get("$ref").and_then(Value::as_str) {
            out = self.resolve(r, depth);
        }
        if let Some(Value::Array(all)) = src.get("allOf") {
            for branch in all {
                let c = self.clean(branch, depth + 1);
                merge_schema(&mut out, c);
            }
        }
        if let Some(Value::Array(branches)) = src.get("anyOf").or_else(|| src.get("oneOf")) {
            let mut kept = Vec::new();
            let mut nullable = false;
            for branch in branches {
                let c = self.clean(branch, depth + 1);
                if is_null_only(&c) {
                    nullable = true;
                } else {
                    kept.push(c);
                }
            }
            if kept.len() == 1 {
                // Optional[X]: just X, nullable.
                if let Some(only) = kept.pop() {
                    merge_schema(&mut out, only);
                }
            } else if !kept.is_empty() {
                let kept = kept.into_iter().map(Value::Object).collect();
                out.insert("anyOf".into(), Value::Array(kept));
            }
            if nullable {
                out.insert("nullable".into(), true.into());
            }
        }
        // The schema's own keywords override what references supplied.
        for (k, v) in src {
            if scalar_keyword_ok(k, v) {
                out.insert(k.clone(), v.clone());
                continue;
            }
            match (k.as_str(), v) {
                ("type", Value::String(t)) => {
                    out.insert("type".into(), t.to_ascii_lowercase().into());
                }
                ("type", Value::Array(ts)) => {
                    let ts = ts.iter().filter_map(Value::as_str);
                    let ts = ts.map(|t| Value::from(t.to_ascii_lowercase())).collect();
                    out.insert("type".into(), Value::Array(ts));
                }
                ("const", v) => {
                    out.insert("enum".into(), json!([v]));
                }
                ("properties", Value::Object(props)) => {
                    let mut cleaned = match out.remove("properties") {
                        Some(Value::Object(p)) => p,
                        _ => Map::new(),
                    };
                    for (name, s) in props {
                        cleaned.insert(name.clone(), Value::Object(self.clean(s, depth + 1)));
                    }
                    out.insert("properties".into(), Value::Object(cleaned));
                }
                ("required", Value::Array(names)) => union_required(&mut out, names),
                ("items", Value::Object(_)) => {
                    out.insert("items".into(), Value::Object(self.clean(v, depth + 1)));
                }
                // Tuple form: any of the positions.
                ("items", Value::Array(tuple)) if !tuple.is_empty() => {
                    let mut branches: Vec<Value> = (tuple.iter())
                        .map(|s| Value::Object(self.clean(s, depth + 1)))
                        .collect();
                    branches.dedup();
                    let items = match branches.len() {
                        1 => branches.pop().unwrap_or_default(),
                        _ => json!({ "anyOf": branches }),
                    };
                    out.insert("items".into(), items);
                }
                ("prefixItems", Value::Array(tuple)) if !src.contains_key("items") => {
                    if let Some(first) = tuple.first() {
                        out.insert("items".into(), Value::Object(self.clean(first, depth + 1)));
                    }
                }
                _ => {}
            }
        }
        finish_schema(out)
    }

    /// The cleaned target of a local `$ref`.
    fn resolve(&mut self, reference: &str, depth: usize) -> Map<String, Value> {
        let target = reference
            .strip_prefix('#')
            .and_then(|p| self.root.pointer(p));
        let Some(target) = target else {
            // Remote or dangling reference: nothing to inline.
            return Map::new();
        };
        if self.resolving.iter().any(|r| r == reference) || self.expansions >= MAX_REF_EXPANSIONS {
            // Recursive type: keep its kind and description, stop expanding.
            let mut m = Map::new();
            let kind = target.get("type").and_then(Value::as_str);
            let kind = kind.map_or_else(|| "object".to_string(), str::to_ascii_lowercase);
            m.insert("type".into(), kind.into());
            if let Some(d) = target.get("description").filter(|d| d.is_string()) {
                m.insert("description".into(), d.clone());
            }
            return finish_schema(m);
        }
        self.expansions += 1;
        self.resolving.push(reference.to_string());
        let m = self.clean(target, depth + 1);
        self.resolving.pop();
        m
    }
}

/// A cleaned `{"type":"null"}`: only says "may be null".
fn is_null_only(s: &Map<String, Value>) -> bool {
    s.get("nullable") == Some(&Value::Bool(true))
        && (s.keys()).all(|k| matches!(k.as_str(), "nullable" | "description" | "title"))
}

/// Keywords Gemini takes verbatim, when their value has the right shape.
fn scalar_keyword_ok(key: &str, v: &Value) -> bool {
    match key {
        "description" | "title" | "pattern" | "format" => v.is_string(),
        "nullable" => v.is_boolean(),
        "enum" => v.is_array(),
        "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties" | "maxProperties" => {
            v.is_u64()
        }
        "minimum" | "maximum" => v.is_number(),
        "propertyOrdering" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        _ => false,
    }
}

/// Merges `src` into `dst`: properties and required are combined, other
/// keywords only fill gaps (the schema being built has the last word).
fn merge_schema(dst: &mut Map<String, Value>, src: Map<String, Value>) {
    for (k, v) in src {
        match (k.as_str(), v) {
            ("properties", Value::Object(props)) => {
                let entry = dst
                    .entry("properties")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(existing) = entry.as_object_mut() {
                    for (name, s) in props {
                        existing.entry(name).or_insert(s);
                    }
                }
            }
            ("required", Value::Array(names)) => union_required(dst, &names),
            (_, v) => {
                dst.entry(k).or_insert(v);
            }
        }
    }
}

fn union_required(dst: &mut Map<String, Value>, names: &[Value]) {
    let entry = dst
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = entry.as_array_mut() {
        for n in names.iter().filter(|n| n.is_string()) {
            if !list.contains(n) {
                list.push(n.clone());
            }
        }
    }
}

/// Keywords Gemini only accepts on one kind of schema.
fn keyword_applies(key: &str, kind: &str) -> bool {
    match key {
        "properties" | "required" | "minProperties" | "maxProperties" | "propertyOrdering" => {
            kind == "object"
        }
        "items" | "minItems" | "maxItems" => kind == "array",
        "minLength" | "maxLength" | "pattern" | "enum" => kind == "string",
        "minimum" | "maximum" => kind == "number" || kind == "integer",
        _ => true,
    }
}

/// Makes a cleaned schema self-consistent: single type, string enums,
/// required within properties, items on arrays.
fn finish_schema(mut s: Map<String, Value>) -> Map<String, Value> {
    match s.remove("type") {
        Some(Value::String(t)) if t == "null" => {
            s.insert("nullable".into(), true.into());
        }
        Some(Value::String(t)) => {
            s.insert("type".into(), t.into());
        }
        Some(Value::Array(types)) => {
            let mut kinds: Vec<String> = Vec::new();
            for t in types.iter().filter_map(Value::as_str) {
                if t == "null" {
                    s.insert("nullable".into(), true.into());
                } else if !kinds.iter().any(|k| k == t) {
                    kinds.push(t.to_string());
                }
            }
            if kinds.len() == 1 {
                s.insert("type".into(), kinds.remove(0).into());
            } else if kinds.len() > 1 {
                return split_types(s, &kinds);
            }
        }
        _ => {}
    }
    // const null / enum null mean nullable; the rest must be strings.
    if let Some(Value::Array(values)) = s.remove("enum") {
        if values.iter().any(Value::is_null) {
            s.insert("nullable".into(), true.into());
        }
        let mut values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        values.dedup();
        let kind = s.get("type").and_then(Value::as_str);
        if !values.is_empty() {
            if values.iter().all(Value::is_string) && matches!(kind, None | Some("string")) {
                s.insert("type".into(), "string".into());
                s.insert("enum".into(), Value::Array(values));
            } else {
                let listed: Vec<String> = values.iter().map(Value::to_string).collect();
                let note = format!("Allowed values: {}.", listed.join(", "));
                let desc = match s.get("description").and_then(Value::as_str) {
                    Some(d) if !d.is_empty() => format!("{d} {note}"),
                    _ => note,
                };
                s.insert("description".into(), desc.into());
            }
        }
    }
    // Infer a missing type from the keywords present.
    if !s.contains_key("type") && !s.contains_key("anyOf") {
        if s.contains_key("properties") {
            s.insert("type".into(), "object".into());
        } else if s.contains_key("items") {
            s.insert("type".into(), "array".into());
        }
    }
    let kind = s.get("type").and_then(Value::as_str).map(str::to_string);
    if let Some(kind) = &kind {
        s.retain(|k, _| keyword_applies(k, kind));
    }
    match kind.as_deref() {
        Some("object") => {
            let names: Vec<String> = (s.get("properties").and_then(Value::as_object))
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            if names.is_empty() {
                // "properties: should be non-empty for OBJECT type".
                s.remove("properties");
            }
            for key in ["required", "propertyOrdering"] {
                if let Some(Value::Array(list)) = s.remove(key) {
                    let list: Vec<Value> = (list.into_iter())
                        .filter(|n| n.as_str().is_some_and(|n| names.iter().any(|p| p == n)))
                        .collect();
                    if !list.is_empty() {
                        s.insert(key.into(), Value::Array(list));
                    }
                }
            }
        }
        Some("array") => {
            // Gemini: "items: missing field". Strings are the most common case.
            let missing = (s.get("items")).is_none_or(|i| i.as_object().is_none_or(Map::is_empty));
            if missing {
                s.insert("items".into(), json!({ "type": "string" }));
            }
        }
        _ => {}
    }
    s
}

/// `"type": ["string","integer"]` -> `anyOf` of one schema per type, each
/// with the keywords that apply to it.
fn split_types(s: Map<String, Value>, kinds: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in ["description", "title", "nullable"] {
        if let Some(v) = s.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let shared = |k: &str| !matches!(k, "description" | "title" | "nullable" | "anyOf");
    let branches = (kinds.iter())
        .map(|kind| {
            let mut b: Map<String, Value> = (s.iter())
                .filter(|(k, _)| shared(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            b.insert("type".into(), kind.as_str().into());
            Value::Object(finish_schema(b))
        })
        .collect();
    out.insert("anyOf".into(), Value::Array(branches));
    out
}
