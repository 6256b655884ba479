//! The admin API's request bodies (and its error body) as types: what the
//! handlers parse and what `/docs/openapi.json` describes are the same
//! definitions, so the two cannot drift apart.
//!
//! Provider documents are [`ProviderSection`] itself — the file's own type,
//! so the file and the API accept exactly the same fields. They are typed
//! after two steps that need the raw document: the original short form's
//! `config` object is flattened, and a PATCH is applied as a JSON merge
//! patch (RFC 7386) to the stored document; the result is then parsed with
//! the field path of any complaint (`timeouts.connect_secs`).

use crate::config::{HealthSection, OverridesSection, ProviderSection, RoutingSection};
use crate::control::api::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

// ---------------------------------------------------------------- errors

/// Every admin error, whatever the status: framework rejections (405, 413,
/// …) are rewritten into this shape too.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for a person; never contains key material.
    pub message: String,
    /// Always `admin_error`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "admin_error")]
    pub kind: &'static str,
    /// Machine-readable: `validation_failed`, `not_found`, `conflict`,
    /// `missing_token`, `invalid_token`, `admin_token_unset`,
    /// `keys_on_admin_listener_only`, `bad_request`, `method_not_allowed`,
    /// `payload_too_large`, `unavailable`, `internal`, …
    #[schema(value_type = String, example = "validation_failed")]
    pub code: &'static str,
    /// For `validation_failed`: each field (by its path in the body) and
    /// the reason; empty otherwise.
    pub fields: Vec<FieldError>,
}

// ---------------------------------------------------------------- providers

/// `PATCH /api/providers/{id}` and the items of a batch's `update`: a JSON
/// merge patch of the provider document — any of its fields, `null`
/// removes one. Its schema is [`ProviderSection`]'s with nothing required
/// and every field nullable, derived from it so the two stay one.
pub struct ProviderPatch;

impl PartialSchema for ProviderPatch {
    fn schema() -> RefOr<Schema> {
        patch_of(ProviderSection::schema(), &[])
    }
}

impl ToSchema for ProviderPatch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        ProviderSection::schemas(schemas);
    }
}

/// A batch `update` item: the provider's id or name, and its merge patch.
pub struct ProviderUpdate;

impl PartialSchema for ProviderUpdate {
    fn schema() -> RefOr<Schema> {
        patch_of(ProviderSection::schema(), &["id"])
    }
}

impl ToSchema for ProviderUpdate {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        ProviderSection::schemas(schemas);
    }
}

/// `schema` with no required field and every property also `null` (a
/// merge patch), plus `extra` required properties naming the provider.
fn patch_of(schema: RefOr<Schema>, extra: &[&str]) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut obj)) = schema else {
        return schema;
    };
    obj.required.clear();
    for prop in obj.properties.values_mut() {
        let any_or_null = utoipa::openapi::schema::OneOfBuilder::new()
            .item(prop.clone())
            .item(
                utoipa::openapi::schema::Object::builder()
                    .schema_type(Type::Null)
                    .build(),
            )
            .build();
        *prop = RefOr::T(Schema::OneOf(any_or_null));
    }
    for name in extra {
        obj.properties
            .insert((*name).to_string(), IdOrName::schema());
        obj.required.push((*name).to_string());
    }
    obj.description = Some(if extra.is_empty() {
        "JSON merge patch (RFC 7386) of a provider document: the fields given replace the stored ones, `null` removes one; the result is validated as a whole.".into()
    } else {
        "A provider (`id`: its numeric id or name) and a JSON merge patch of its document.".into()
    });
    RefOr::T(Schema::Object(obj))
}

/// A provider named by its numeric id or its name.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IdOrName {
    Id(i64),
    Name(String),
}

impl IdOrName {
    pub fn as_key(&self) -> String {
        match self {
            IdOrName::Id(n) => n.to_string(),
            IdOrName::Name(s) => s.clone(),
        }
    }
}

/// `POST /api/providers/batch`, all or nothing. Each item is checked like
/// its single-provider call; errors name the item (`create[1].weight`).
/// Other top-level fields are ignored (as they always were).
#[derive(Deserialize, ToSchema)]
pub struct BatchBody {
    /// Providers to create (the body of `POST /api/providers` each).
    #[serde(default)]
    #[schema(value_type = Vec<ProviderSection>)]
    pub create: Vec<Value>,
    /// Providers to change: `id` plus a merge patch.
    #[serde(default)]
    #[schema(value_type = Vec<ProviderUpdate>)]
    pub update: Vec<Value>,
    /// Providers to delete, by id or name.
    #[serde(default)]
    pub delete: Vec<IdOrName>,
}

// ---------------------------------------------------------------- keys, aliases, settings

/// `POST /api/providers/{id}/keys`. Other fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct NewKey {
    /// The key itself; a `${VAR}` reference is refused (only the file
    /// expands the environment).
    pub api_key: String,
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/providers/{id}/keys/{key}`. Other fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct KeyPatch {
    pub enabled: bool,
}

/// `PUT /api/aliases/{alias}`. Other fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct AliasBody {
    /// The model (or another alias) requests for the alias go to; not empty.
    #[schema(pattern = "\\S")]
    pub target: String,
}

/// `PUT /api/settings`: a JSON merge patch of the API's settings. A
/// section given is merged into the API's copy of it (which then replaces
/// the file's section as a whole); `null` returns a section to the file.
/// Any other top-level field is refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema: the handler merges the raw patch, then types each section.
pub struct SettingsPatch {
    #[schema(nullable)]
    overrides: Option<OverridesSection>,
    #[schema(nullable)]
    routing: Option<RoutingSection>,
    #[schema(nullable)]
    health: Option<HealthSection>,
}

/// `POST /api/config/import` as JSON: a configuration document as an
/// export writes it. The import acts on `providers`, `aliases`,
/// `overrides`, `routing` and `health`; a section left out stays as it is.
/// The sections the file and the environment own are accepted and ignored;
/// any other field is refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
#[allow(dead_code)] // A schema: the import parses the whole configuration type.
pub struct ImportDoc {
    #[serde(default)]
    providers: Vec<ProviderSection>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    #[serde(default)]
    overrides: OverridesSection,
    #[serde(default)]
    routing: RoutingSection,
    #[serde(default)]
    health: HealthSection,
    /// Not imported (the file and the environment own it); checked like the file's section.
    #[serde(default)]
    #[schema(value_type = Object)]
    app: Value,
    /// Not imported (the file and the environment own it); checked like the file's section.
    #[serde(default)]
    #[schema(value_type = Object)]
    server: Value,
    /// Not imported (the file and the environment own it); checked like the file's section.
    #[serde(default)]
    #[schema(value_type = Object)]
    admin: Value,
    /// Not imported (the file and the environment own it); checked like the file's section.
    #[serde(default)]
    #[schema(value_type = Object)]
    log: Value,
    /// Not imported (the file and the environment own it); checked like the file's section.
    #[serde(default)]
    #[schema(value_type = Object)]
    database: Value,
    /// Not imported (the file and the environment own it); checked like the file's section.
    #[serde(default)]
    #[schema(value_type = Object)]
    redis: Value,
    /// Not imported (`PUT /api/prices` sets prices through the API);
    /// checked like the file's `[[prices]]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    prices: Value,
}

// ---------------------------------------------------------------- responses

/// A key as the API shows it: never the key itself.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    /// Stable public id: a prefix of the key's fingerprint.
    pub id: String,
    /// Masked (`sk-…abcd`).
    pub key: String,
    pub enabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    pub data: Vec<KeyView>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyAdded {
    pub version: u64,
    pub key: KeyView,
}

/// A provider's health as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// `healthy`, `degraded` or `unhealthy`.
    pub state: String,
    pub consecutive_errors: u32,
    pub last_error: Option<LastErrorView>,
}

#[derive(Serialize, ToSchema)]
pub struct LastErrorView {
    /// HTTP status; none for connection errors and timeouts.
    pub status: Option<u16>,
    pub message: String,
    /// Unix milliseconds.
    pub at_ms: u64,
}

/// One provider as the API shows it: the provider document without its
/// keys, plus `id`, `source`, `read_only`, the masked `keys` and (when
/// running) `health`. Its schema is derived from [`ProviderSection`]'s.
pub struct ProviderView;

impl PartialSchema for ProviderView {
    fn schema() -> RefOr<Schema> {
        let schema = ProviderSection::schema();
        let RefOr::T(Schema::Object(mut obj)) = schema else {
            return schema;
        };
        for secret in ["api_key", "api_keys", "disabled_api_keys"] {
            obj.properties.shift_remove(secret);
            obj.required.retain(|r| r != secret);
        }
        let mut add = |name: &str, schema: RefOr<Schema>, required: bool| {
            obj.properties.insert(name.to_string(), schema);
            if required && !obj.required.iter().any(|r| r == name) {
                obj.required.push(name.to_string());
            }
        };
        add("id", IdOrName::schema(), true);
        add(
            "source",
            utoipa::openapi::schema::Object::builder()
                .schema_type(Type::String)
                .enum_values(Some(["file", "api"]))
                .description(Some("`file`: declared in the configuration file (read-only here); `api`: managed through the API"))
                .into(),
            true,
        );
        add("read_only", bool::schema(), true);
        add("keys", Vec::<KeyView>::schema(), true);
        add("health", HealthView::schema(), false);
        add("enabled", bool::schema(), true);
        add("weight", u32::schema(), true);
        obj.description = Some("A provider: its document (keys masked, listed in `keys`), where it comes from, and its health.".into());
        RefOr::T(Schema::Object(obj))
    }
}

impl ToSchema for ProviderView {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        ProviderSection::schemas(schemas);
        schemas.push((KeyView::name().into(), KeyView::schema()));
        schemas.push((HealthView::name().into(), HealthView::schema()));
        schemas.push((LastErrorView::name().into(), LastErrorView::schema()));
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    #[schema(value_type = Vec<ProviderView>)]
    pub data: Vec<Value>,
}

/// A provider written (created, replaced, patched, a key changed).
#[derive(Serialize, ToSchema)]
pub struct ProviderWritten {
    /// The configuration version now in force.
    pub version: u64,
    #[schema(value_type = ProviderView)]
    pub provider: Value,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderDeleted {
    pub version: u64,
    /// The deleted provider's id.
    pub deleted: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AliasEntry {
    pub alias: String,
    pub target: String,
    /// `file` or `api`.
    #[schema(value_type = String)]
    pub source: &'static str,
    pub read_only: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AliasList {
    #[schema(value_type = String, example = "list")]
    pub object: &'static str,
    pub data: Vec<AliasEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct AliasSet {
    pub version: u64,
    pub alias: String,
    pub target: String,
}

#[derive(Serialize, ToSchema)]
pub struct AliasDeleted {
    pub version: u64,
    pub deleted: String,
}

#[derive(Serialize, ToSchema)]
pub struct Reloaded {
    pub version: u64,
    pub reloaded: bool,
}

/// Names of the properties of a schema object (for tests keeping schema-only
/// types in step with the code that reads the body).
#[cfg(test)]
pub(super) fn property_names(schema: RefOr<Schema>) -> Vec<String> {
    match schema {
        RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_only_types_name_what_the_handlers_read() {
        assert_eq!(
            property_names(SettingsPatch::schema()),
            crate::control::api::SETTINGS_SECTIONS.to_vec()
        );
    }

    #[test]
    fn the_patch_schema_is_the_provider_schema_with_nothing_required() {
        let full = property_names(ProviderSection::schema());
        assert!(full.contains(&"base_url".to_string()), "{full:?}");
        assert_eq!(property_names(ProviderPatch::schema()), full);
        let RefOr::T(Schema::Object(patch)) = ProviderPatch::schema() else {
            panic!("an object schema");
        };
        assert!(patch.required.is_empty());
        let RefOr::T(Schema::Object(update)) = ProviderUpdate::schema() else {
            panic!("an object schema");
        };
        assert_eq!(update.required, vec!["id".to_string()]);
    }
}
