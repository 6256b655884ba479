//! API-managed configuration: providers, aliases and settings written
//! through the admin API and kept in SQLite, merged with the TOML file.
//!
//! Precedence, one rule that never silently loses an edit: **what the file
//! declares is owned by the file.** A provider or alias declared in the TOML
//! file is read-only through the API (writes get 409 naming the file); the
//! API owns everything it creates, and a file edit that adds a name the API
//! already owns is rejected by validation (duplicate provider name), so
//! neither side ever overwrites the other. Settings (`overrides`, `routing`,
//! `health`) set through the API replace the file's section of the same
//! name as a whole; `GET /api/settings` shows which sections come from where.

use crate::config::{FileConfig, HealthSection, OverridesSection, ProviderSection, RoutingSection};
use crate::store::StoredProvider;
use serde_json::{Map, Value};

/// The API-owned part of the configuration, as stored.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    pub providers: Vec<StoredProvider>,
    pub aliases: Vec<(String, String)>,
    /// `{"overrides": …, "routing": …, "health": …}`, each optional.
    pub settings: Value,
}

/// A validation problem in API terms: `field` is a path in the request
/// body (`providers[gpt-4].weight`, `base_url`, …).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Where in the request body (or configuration) the problem is;
    /// empty when it is about the whole body.
    pub field: String,
    pub reason: String,
}

/// Deserialize `T` from a JSON document, naming the offending field by its
/// full path (`timeouts.connect_secs`, `models[2]`, `providers[0].base_url`):
/// serde's own message names at most the last key, and not which item.
pub fn typed<T: serde::de::DeserializeOwned>(doc: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let reason = e.inner().to_string();
        let at = e.path().to_string();
        let at = if at == "." { String::new() } else { at };
        // For a missing field the path ends at the object that lacks it;
        // the field itself is named in the message.
        let missing = reason
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .filter(|name| !at.ends_with(name));
        let field = match missing {
            Some(name) if at.is_empty() => name.to_string(),
            Some(name) => format!("{at}.{name}"),
            None => at,
        };
        FieldError { field, reason }
    })
}

/// Settings sections the API may set.
pub const SETTINGS_SECTIONS: &[&str] = &["overrides", "routing", "health"];

/// Accept the original create body `{"name","type","config":{"base_url","api_key"}}`
/// as well as the flat form, and return a provider document.
pub fn normalize_provider(body: &Value) -> Result<Value, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError {
            field: String::new(),
            reason: "the body must be a JSON object".into(),
        }]);
    };
    let mut out: Map<String, Value> = Map::new();
    for (k, v) in obj {
        if k == "config" {
            let Some(cfg) = v.as_object() else {
                return Err(vec![FieldError {
                    field: "config".into(),
                    reason: "must be an object".into(),
                }]);
            };
            for (ck, cv) in cfg {
                out.insert(ck.clone(), cv.clone());
            }
        } else if k != "id" && k != "source" {
            out.insert(k.clone(), v.clone());
        }
    }
    let mut errors = table_fields(&out, "", PROVIDER_TABLES);
    if let Some(Value::Object(o)) = out.get("overrides") {
        errors.extend(table_fields(o, "overrides", OVERRIDES_TABLES));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Value::Object(out))
}

/// Provider fields that are tables (objects).
pub const PROVIDER_TABLES: &[&str] = &["overrides", "timeouts", "model_map"];

/// Tables inside a provider's `overrides` (the vendor's dotted-path edits).
pub const OVERRIDES_TABLES: &[&str] = &["vendor"];

/// Fields among `names` that are present but not objects (null means
/// "unset" in a merge patch and is left to the caller). Serde would build
/// a section from an array (`timeouts: []` became the defaults), so these
/// are refused up front, with their path.
pub fn table_fields(obj: &Map<String, Value>, prefix: &str, names: &[&str]) -> Vec<FieldError> {
    names
        .iter()
        .filter_map(|name| {
            let v = obj.get(*name)?;
            (!v.is_object() && !v.is_null()).then(|| FieldError {
                field: if prefix.is_empty() {
                    name.to_string()
                } else {
                    join(prefix, name)
                },
                reason: format!(
                    "must be an object with named keys, not {}",
                    match v {
                        Value::Array(_) => "an array",
                        Value::String(_) => "a string",
                        Value::Number(_) => "a number",
                        _ => "a boolean",
                    }
                ),
            })
        })
        .collect()
}

/// Parse a provider document, reporting serde's complaint as a field error.
pub fn parse_provider(doc: &Value) -> Result<ProviderSection, FieldError> {
    typed::<ProviderSection>(doc)
}

/// File + API, merged into one schema for `compile`. `Err` lists documents
/// that do not even parse.
pub fn merge(file: &FileConfig, api: &ApiConfig) -> Result<FileConfig, Vec<FieldError>> {
    let mut cfg = file.clone();
    let mut errors = Vec::new();
    for p in &api.providers {
        match parse_provider(&p.doc) {
            Ok(mut section) => {
                section.name = p.name.clone();
                // Keys posted through the API are taken literally.
                section.literal_keys = true;
                cfg.providers.push(section);
            }
            Err(mut e) => {
                e.field = join(&format!("providers[{}]", p.name), &e.field);
                errors.push(e);
            }
        }
    }
    for (alias, target) in &api.aliases {
        cfg.aliases.insert(alias.clone(), target.clone());
    }
    let section = |name: &str| api.settings.get(name).filter(|v| !v.is_null());
    let mut bad = |name: &str, e: FieldError| {
        errors.push(FieldError {
            field: join(&format!("settings.{name}"), &e.field),
            reason: e.reason,
        })
    };
    if let Some(v) = section("overrides") {
        match typed::<OverridesSection>(v) {
            Ok(o) => cfg.overrides = o,
            Err(e) => bad("overrides", e),
        }
    }
    if let Some(v) = section("routing") {
        match typed::<RoutingSection>(v) {
            Ok(r) => cfg.routing = r,
            Err(e) => bad("routing", e),
        }
    }
    if let Some(v) = section("health") {
        match typed::<HealthSection>(v) {
            Ok(h) => cfg.health = h,
            Err(e) => bad("health", e),
        }
    }
    // Prices set through `/api/prices` are matched before the file's.
    if let Some(v) = section("prices") {
        match typed::<Vec<crate::ledger::PriceSection>>(v) {
            Ok(mut p) => {
                p.append(&mut cfg.prices);
                cfg.prices = p;
            }
            Err(e) => bad("prices", e),
        }
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(errors)
    }
}

fn join(prefix: &str, field: &str) -> String {
    if field.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Compile errors (`providers[7].weight`) in API terms
/// (`providers[my-name].weight`): the merged list is file providers first,
/// then API providers in order.
pub fn api_field(key: &str, merged: &FileConfig) -> String {
    if let Some(rest) = key.strip_prefix("providers[") {
        if let Some((idx, tail)) = rest.split_once(']') {
            if let Some(p) = idx
                .parse::<usize>()
                .ok()
                .and_then(|i| merged.providers.get(i))
            {
                return format!("providers[{}]{tail}", p.name);
            }
        }
    }
    key.to_string()
}

/// Replace every key in a provider document by its masked form (exports
/// and reads never return key material).
pub fn mask_keys(doc: &mut Value) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    for field in ["api_key", "api_keys", "disabled_api_keys"] {
        match obj.get_mut(field) {
            Some(Value::String(k)) => *k = crate::config::mask_secret(k),
            Some(Value::Array(ks)) => {
                for k in ks.iter_mut() {
                    if let Value::String(s) = k {
                        *s = crate::config::mask_secret(s);
                    }
                }
            }
            _ => {}
        }
    }
}

/// All keys of a provider document, enabled first: (secret, enabled).
pub fn doc_keys(doc: &Value) -> Vec<(String, bool)> {
    let strs = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out: Vec<(String, bool)> = strs(doc.get("api_key"))
        .into_iter()
        .chain(strs(doc.get("api_keys")))
        .map(|k| (k, true))
        .collect();
    out.extend(
        strs(doc.get("disabled_api_keys"))
            .into_iter()
            .map(|k| (k, false)),
    );
    out
}

/// Write the key lists back into a document (single `api_keys` form).
pub fn set_doc_keys(doc: &mut Value, keys: &[(String, bool)]) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    obj.remove("api_key");
    let enabled: Vec<Value> = keys
        .iter()
        .filter(|k| k.1)
        .map(|k| Value::String(k.0.clone()))
        .collect();
    let disabled: Vec<Value> = keys
        .iter()
        .filter(|k| !k.1)
        .map(|k| Value::String(k.0.clone()))
        .collect();
    obj.insert("api_keys".into(), Value::Array(enabled));
    if disabled.is_empty() {
        obj.remove("disabled_api_keys");
    } else {
        obj.insert("disabled_api_keys".into(), Value::Array(disabled));
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_original_create_body_is_accepted() {
        let doc = normalize_provider(&json!({"name": "OpenAI", "type": "openai",
            "config": {"base_url": "https://api.openai.com/v1", "api_key": "sk-x"}}))
        .expect("ok");
        let p = parse_provider(&doc).expect("parses");
        assert_eq!(p.base_url, "https://api.openai.com/v1");
        assert_eq!(p.api_key.as_deref(), Some("sk-x"));
    }

    #[test]
    fn unknown_fields_are_field_errors() {
        let e =
            parse_provider(&json!({"name": "a", "type": "openai", "base_url": "x", "wieght": 3}))
                .expect_err("typo");
        assert_eq!(e.field, "wieght");
        // Nested problems are named by their whole path.
        let e = parse_provider(&json!({"name": "a", "type": "openai", "base_url": "x",
            "timeouts": {"connect_secs": "soon"}, "models": ["a", 3]}))
        .expect_err("wrong type");
        assert!(
            e.field == "timeouts.connect_secs" || e.field == "models[1]",
            "{e:?}"
        );
        let e = parse_provider(&json!({"name": "a", "type": "openai", "base_url": "x",
            "overrides": {"vendor": {"sett": {}}}}))
        .expect_err("typo");
        assert_eq!(e.field, "overrides.vendor.sett", "{e:?}");
        let e = parse_provider(&json!({"type": "openai", "base_url": "x"})).expect_err("no name");
        assert_eq!(e.field, "name", "{e:?}");
    }

    #[test]
    fn merge_patch_and_key_helpers() {
        let mut doc = json!({"weight": 1, "models": ["a"], "api_key": "sk-1"});
        merge_patch(&mut doc, &json!({"weight": 5, "models": null}));
        assert_eq!(doc, json!({"weight": 5, "api_key": "sk-1"}));
        let mut keys = doc_keys(&doc);
        keys.push(("sk-2".into(), false));
        set_doc_keys(&mut doc, &keys);
        assert_eq!(doc["api_keys"], json!(["sk-1"]));
        assert_eq!(doc["disabled_api_keys"], json!(["sk-2"]));
        let mut masked = json!({"api_keys": ["sk-abcdefghijkl1234"]});
        mask_keys(&mut masked);
        assert_eq!(masked["api_keys"], json!(["sk-…1234"]));
    }
}
