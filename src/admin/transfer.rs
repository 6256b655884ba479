//! Configuration export and import: the effective configuration out (keys
//! masked, in clear only on the admin listener, tokens never), and a
//! document in, validated as a whole, compared by meaning with what is
//! stored, and confirmed with `replace=true` when it deletes more than it
//! keeps.

use super::{audited, literal_keys, query, AdminError, AdminResult, AdminState, Listener};
use crate::control::api::{self, ApiConfig, FieldError};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ExportQuery {
    /// `json` (the default) or `toml`.
    #[param(pattern = "^(json|toml)$")]
    format: Option<String>,
    /// Vendor keys in clear: only on the admin listener (403 on the main
    /// port); audited.
    #[serde(default)]
    include_keys: bool,
}

/// The whole effective configuration (file + API) as TOML or JSON.
///
/// Never in any export: the data-plane token (`server.auth_token`) and the
/// admin token. Vendor keys (and the Redis password) in clear only with
/// `include_keys=true`, and only on the admin listener (or the command
/// line's `--offline`): the main port's copy answers 403, so a client of the
/// data plane — who may hold the same token — cannot read them.
#[utoipa::path(
    get,
    path = "/api/config/export",
    tag = "config",
    params(ExportQuery),
    responses(
        (status = 200, description = "The effective configuration (file + API); keys masked unless include_keys=true; tokens never", content(
            (serde_json::Value = "application/json"),
            (String = "application/toml"),
        )),
        (status = 400, description = "Unknown format", body = super::bodies::ErrorBody),
        (status = 403, description = "Keys in clear asked for on the main port", body = super::bodies::ErrorBody),
        (status = 422, description = "The stored configuration does not merge", body = super::bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn export(
    State(st): State<AdminState>,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> AdminResult<Response> {
    let q = query(q)?;
    if q.include_keys && st.listener == Listener::Main {
        let at = st.admin_listen.as_deref().map_or_else(
            || "the admin listener (ADMIN_LISTEN)".to_string(),
            |a| format!("the admin listener ({a})"),
        );
        let resp = AdminError::new(
            StatusCode::FORBIDDEN,
            "keys_on_admin_listener_only",
            format!(
                "an export with keys in clear is served only on {at}, not on the main port; \
                 on the gateway's host run `llm-orchestrator export --include-keys -o FILE`"
            ),
        )
        .into_response();
        return Ok(audited(resp, "export_keys", Some("config".into())));
    }
    let (file, _) = st.control.file_config();
    let merged = api::merge(&file, &st.control.api_config()).map_err(AdminError::invalid)?;
    let mut v =
        serde_json::to_value(&merged).map_err(|e| AdminError::bad_request(e.to_string()))?;
    if let Some(s) = v.get_mut("server").and_then(Value::as_object_mut) {
        s.remove("auth_token");
    }
    if let Some(a) = v.get_mut("admin").and_then(Value::as_object_mut) {
        a.remove("token");
    }
    if !q.include_keys {
        if let Some(ps) = v.get_mut("providers").and_then(Value::as_array_mut) {
            ps.iter_mut().for_each(api::mask_keys);
        }
        if let Some(url) = v.pointer_mut("/redis/url") {
            if let Some(masked) = url.as_str().map(mask_url_password) {
                *url = Value::String(masked);
            }
        }
    }
    let resp = match q.format.as_deref().unwrap_or("json") {
        "json" => Json(v).into_response(),
        "toml" => {
            strip_nulls(&mut v);
            let text = toml::to_string_pretty(&v)
                .map_err(|e| AdminError::bad_request(format!("cannot render TOML: {e}")))?;
            (
                [(header::CONTENT_TYPE, "application/toml; charset=utf-8")],
                text,
            )
                .into_response()
        }
        other => {
            return Err(AdminError::bad_request(format!(
                "format {other:?} is not toml or json"
            )))
        }
    };
    Ok(if q.include_keys {
        audited(resp, "export_keys", Some("config".into()))
    } else {
        resp
    })
}

/// `redis://user:secret@host/0` -> `redis://user:…@host/0`.
pub(super) fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    format!("{scheme}://{user}:…@{host}")
}

/// TOML has no null: unset options are simply left out.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|_, x| !x.is_null());
            o.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportQuery {
    /// `json` or `toml`; by default TOML when the content type says so,
    /// else JSON.
    #[param(pattern = "^(json|toml)$")]
    format: Option<String>,
    /// Validate and report the changes without applying them.
    #[serde(default)]
    dry_run: bool,
    /// Confirms an import that deletes more than it keeps.
    #[serde(default)]
    replace: bool,
}

/// Sections an import acts on; every other section of an export (server,
/// admin, log, …) belongs to the file and the environment and is ignored.
pub(super) const IMPORT_SECTIONS: &[&str] =
    &["providers", "aliases", "overrides", "routing", "health"];

/// Make the document's providers, aliases and settings the API-owned
/// configuration. A section the document leaves out stays as it is;
/// providers the file declares are skipped (the file owns them); masked
/// keys (`sk-…abcd`) are matched to the existing keys of the provider of
/// the same name. What the document repeats unchanged stays unchanged —
/// an export imported back is a no-op, and a settings section equal to the
/// file's keeps following the file. An import that deletes more providers
/// and aliases than it keeps needs `replace=true`.
#[utoipa::path(
    post,
    path = "/api/config/import",
    tag = "config",
    params(ImportQuery),
    request_body(description = "A configuration document, as an export writes it", content(
        (super::bodies::ImportDoc = "application/json"),
        (String = "application/toml"),
    )),
    responses(
        (status = 200, description = "What changed (or would, with dry_run=true)", body = ImportReport),
        (status = 400, description = "Not JSON/TOML, unknown format, or no importable section", body = super::bodies::ErrorBody),
        (status = 409, description = "Deletes more than it keeps: confirm with replace=true", body = super::bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path (`providers[0].base_url`)", body = super::bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = super::bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn import(
    State(st): State<AdminState>,
    q: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> AdminResult<Json<ImportReport>> {
    let q = query(q)?;
    let text =
        std::str::from_utf8(&body).map_err(|_| AdminError::bad_request("the body is not UTF-8"))?;
    let toml_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("toml"));
    let format = q
        .format
        .as_deref()
        .unwrap_or(if toml_type { "toml" } else { "json" });
    let (doc, present): (crate::config::FileConfig, Vec<&str>) = match format {
        "toml" => {
            let doc = crate::config::parse_toml(text, "import").map_err(|e| {
                AdminError::invalid(
                    e.0.into_iter()
                        .map(|e| FieldError {
                            field: e.key,
                            reason: format!("{}: {}", e.source, e.reason),
                        })
                        .collect(),
                )
            })?;
            // It parsed as a FileConfig, so it is a table.
            let table: toml::Table = toml::from_str(text).unwrap_or_default();
            let present = IMPORT_SECTIONS
                .iter()
                .copied()
                .filter(|s| table.contains_key(*s))
                .collect();
            (doc, present)
        }
        "json" => {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| AdminError::bad_request(format!("the body is not valid JSON: {e}")))?;
            let Some(obj) = value.as_object() else {
                return Err(AdminError::bad_request(format!(
                    "the import must be a configuration document (a JSON object with {}), not {}",
                    IMPORT_SECTIONS.join(", "),
                    json_kind(&value)
                )));
            };
            let present = IMPORT_SECTIONS
                .iter()
                .copied()
                .filter(|s| obj.contains_key(*s))
                .collect();
            let mut not_tables = api::table_fields(obj, "", api::SETTINGS_SECTIONS);
            if let Some(ps) = obj.get("providers").and_then(Value::as_array) {
                for (i, p) in ps.iter().enumerate() {
                    if let Some(p) = p.as_object() {
                        not_tables.extend(api::table_fields(
                            p,
                            &format!("providers[{i}]"),
                            api::PROVIDER_TABLES,
                        ));
                    }
                }
            }
            if !not_tables.is_empty() {
                return Err(AdminError::invalid(not_tables));
            }
            let doc = api::typed(&value).map_err(|e| AdminError::invalid(vec![e]))?;
            (doc, present)
        }
        other => {
            return Err(AdminError::bad_request(format!(
                "format {other:?} is not toml or json"
            )))
        }
    };
    if present.is_empty() {
        return Err(AdminError::bad_request(format!(
            "nothing to import: the document has none of {}",
            IMPORT_SECTIONS.join(", ")
        )));
    }
    let (file, _) = st.control.file_config();
    let current = st.control.api_config();
    let mut skipped = Vec::new();
    let providers = if present.contains(&"providers") {
        let mut providers = Vec::new();
        for (i, p) in doc.providers.iter().enumerate() {
            if file.providers.iter().any(|f| f.name == p.name) {
                skipped.push(p.name.clone());
                continue;
            }
            let stored = current.providers.iter().find(|c| c.name == p.name);
            let mut v =
                serde_json::to_value(p).map_err(|e| AdminError::bad_request(e.to_string()))?;
            resolve_masked_keys(&mut v, stored, &format!("providers[{i}]"))?;
            literal_keys(&v, &format!("providers[{i}]."))?;
            // An export spells out every default; the stored document
            // may not. Same meaning = keep the stored document as is.
            let v = match stored {
                Some(s) if same_provider(&s.doc, &v) => s.doc.clone(),
                _ => v,
            };
            providers.push(crate::store::StoredProvider {
                id: 0,
                name: p.name.clone(),
                doc: v,
                created_ms: 0,
                updated_ms: 0,
            });
        }
        providers
    } else {
        current.providers.clone()
    };
    let aliases: Vec<(String, String)> = if present.contains(&"aliases") {
        doc.aliases
            .iter()
            .filter(|(a, _)| !file.aliases.contains_key(*a))
            .map(|(a, t)| (a.clone(), t.clone()))
            .collect()
    } else {
        current.aliases.clone()
    };
    let mut settings = current.settings.clone();
    for name in api::SETTINGS_SECTIONS {
        if !present.contains(name) {
            continue;
        }
        let (new, effective) = match *name {
            "overrides" => (
                to_json(&doc.overrides),
                effective_section(&current, name, &file.overrides),
            ),
            "routing" => (
                to_json(&doc.routing),
                effective_section(&current, name, &file.routing),
            ),
            _ => (
                to_json(&doc.health),
                effective_section(&current, name, &file.health),
            ),
        };
        if effective.as_ref() == Some(&new) {
            continue;
        }
        if !settings.is_object() {
            settings = json!({});
        }
        settings[*name] = new;
    }
    let proposed = ApiConfig {
        providers,
        aliases,
        settings,
    };
    let diff = diff(&current, &proposed);
    let (removed, kept) = removal_counts(&current, &proposed);
    let replace_required = removed > kept;
    // What is wrong with the document comes before whether to confirm it.
    st.control
        .validate(&proposed)
        .map_err(AdminError::invalid)?;
    let report = ImportReport {
        dry_run: q.dry_run,
        valid: None,
        unchanged: None,
        version: None,
        changes: diff,
        skipped_file_providers: skipped,
        removes: None,
        keeps: None,
        replace_required: None,
    };
    if q.dry_run {
        return Ok(Json(ImportReport {
            valid: Some(true),
            removes: Some(removed),
            keeps: Some(kept),
            replace_required: Some(replace_required),
            ..report
        }));
    }
    if replace_required && !q.replace {
        return Err(AdminError::conflict(format!(
            "this import would delete {removed} API-managed provider(s)/alias(es) and keep {kept}; \
             add replace=true (CLI: --replace) to confirm, dry_run=true shows the changes"
        )));
    }
    if !report.changes.anything() {
        return Ok(Json(ImportReport {
            unchanged: Some(true),
            version: Some(st.control.current().version),
            ..report
        }));
    }
    let version = st.control.replace(proposed).await?;
    Ok(Json(ImportReport {
        unchanged: Some(false),
        version: Some(version),
        ..report
    }))
}

/// The answer of `POST /api/config/import`. A dry run has `valid`,
/// `removes`, `keeps` and `replace_required`; an applied import has
/// `unchanged` and `version`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ImportReport {
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid: Option<bool>,
    /// The import changed nothing (the version stays).
    #[serde(skip_serializing_if = "Option::is_none")]
    unchanged: Option<bool>,
    /// The configuration version in force after the import.
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u64>,
    changes: ImportChanges,
    /// Providers in the document that the configuration file declares
    /// (the file owns them).
    skipped_file_providers: Vec<String>,
    /// API-managed providers and aliases the import deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    removes: Option<usize>,
    /// API-managed providers and aliases it keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    keeps: Option<usize>,
    /// It deletes more than it keeps: applying needs `replace=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    replace_required: Option<bool>,
}

/// What an import changes in the API-managed configuration.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct ImportChanges {
    providers: NameChanges,
    aliases: NameChanges,
    settings_changed: bool,
}

/// Names added, removed and changed, sorted.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct NameChanges {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
}

impl ImportChanges {
    fn anything(&self) -> bool {
        let names =
            |n: &NameChanges| !(n.added.is_empty() && n.removed.is_empty() && n.changed.is_empty());
        names(&self.providers) || names(&self.aliases) || self.settings_changed
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The section as it is in force (the API's when set, else the file's),
/// in the canonical form an export writes. `None` when the API's stored
/// value does not parse (then anything imported is a change).
fn effective_section<T>(current: &ApiConfig, name: &str, file: &T) -> Option<Value>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    match current.settings.get(name).filter(|v| !v.is_null()) {
        Some(v) => serde_json::from_value::<T>(v.clone())
            .ok()
            .map(|t| to_json(&t)),
        None => Some(to_json(file)),
    }
}

/// Two provider documents that compile to the same provider.
fn same_provider(a: &Value, b: &Value) -> bool {
    // `api_key = "k"` and `api_keys = ["k"]` are the same key list.
    let canonical = |d: &Value| {
        let mut v = api::parse_provider(d).ok().map(|p| to_json(&p))?;
        api::set_doc_keys(&mut v, &api::doc_keys(d));
        Some(v)
    };
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

/// (providers and aliases the import deletes, those it keeps).
fn removal_counts(current: &ApiConfig, proposed: &ApiConfig) -> (usize, usize) {
    let mut removed = 0;
    let mut kept = 0;
    for p in &current.providers {
        if proposed.providers.iter().any(|n| n.name == p.name) {
            kept += 1;
        } else {
            removed += 1;
        }
    }
    for (a, _) in &current.aliases {
        if proposed.aliases.iter().any(|(n, _)| n == a) {
            kept += 1;
        } else {
            removed += 1;
        }
    }
    (removed, kept)
}

/// Turn masked keys back into the real ones already stored for the provider.
fn resolve_masked_keys(
    doc: &mut Value,
    existing: Option<&crate::store::StoredProvider>,
    at: &str,
) -> AdminResult<()> {
    let keys = api::doc_keys(doc);
    if !keys.iter().any(|(k, _)| k.contains('…')) {
        return Ok(());
    }
    let known = existing.map(|e| api::doc_keys(&e.doc)).unwrap_or_default();
    let mut resolved = Vec::new();
    for (k, enabled) in keys {
        if k.contains('…') {
            let real = known
                .iter()
                .find(|(real, _)| crate::config::mask_secret(real) == k)
                .ok_or_else(|| AdminError::invalid(vec![FieldError {
                    field: format!("{at}.api_keys"),
                    reason: format!("masked key {k} matches no stored key; export with include_keys=true to move keys"),
                }]))?;
            resolved.push((real.0.clone(), enabled));
        } else {
            resolved.push((k, enabled));
        }
    }
    api::set_doc_keys(doc, &resolved);
    Ok(())
}

/// Names only in `after`, only in `before`, and in both with another value.
fn name_changes<V: PartialEq>(
    before: &std::collections::BTreeMap<String, V>,
    after: &std::collections::BTreeMap<String, V>,
) -> NameChanges {
    NameChanges {
        added: after
            .keys()
            .filter(|n| !before.contains_key(*n))
            .cloned()
            .collect(),
        removed: before
            .keys()
            .filter(|n| !after.contains_key(*n))
            .cloned()
            .collect(),
        changed: after
            .iter()
            .filter(|(n, v)| before.get(*n).is_some_and(|b| b != *v))
            .map(|(n, _)| n.clone())
            .collect(),
    }
}

fn diff(current: &ApiConfig, proposed: &ApiConfig) -> ImportChanges {
    let names = |c: &ApiConfig| {
        c.providers
            .iter()
            .map(|p| (p.name.clone(), p.doc.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (before, after) = (names(current), names(proposed));
    let aliases = |c: &ApiConfig| {
        c.aliases
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (ab, aa) = (aliases(current), aliases(proposed));
    ImportChanges {
        providers: name_changes(&before, &after),
        aliases: name_changes(&ab, &aa),
        settings_changed: api::SETTINGS_SECTIONS.iter().any(|n| {
            let section = |c: &ApiConfig| c.settings.get(*n).filter(|v| !v.is_null()).cloned();
            section(current) != section(proposed)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_import_schema_names_the_configuration_sections() {
        use utoipa::PartialSchema;
        // The import's sections, then the configuration file's others
        // (the configuration type refuses any other field).
        let import =
            super::super::bodies::property_names(super::super::bodies::ImportDoc::schema());
        assert_eq!(&import[..IMPORT_SECTIONS.len()], IMPORT_SECTIONS);
        let whole = serde_json::to_value(crate::config::FileConfig::default()).expect("config");
        let mut all: Vec<&String> = whole.as_object().expect("object").keys().collect();
        let mut documented: Vec<&String> = import.iter().collect();
        all.sort();
        documented.sort();
        assert_eq!(documented, all);
    }

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url_password("redis://:hunter2-secret@cache:6379/0"),
            "redis://:…@cache:6379/0"
        );
        assert_eq!(
            mask_url_password("redis://user:pw@host/1"),
            "redis://user:…@host/1"
        );
        assert_eq!(
            mask_url_password("redis://localhost:6379/0"),
            "redis://localhost:6379/0"
        );
    }
}
