//! Aliases and settings: `/api/aliases`, `/api/settings`.

use super::*;

#[utoipa::path(
    get,
    path = "/api/aliases",
    tag = "aliases",
    responses(
        (status = 200, description = "`{object: list, data: [{alias, target, source, read_only}]}`", body = bodies::AliasList),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn list_aliases(State(st): State<AdminState>) -> Json<bodies::AliasList> {
    let (file, _) = st.control.file_config();
    let mut data: Vec<bodies::AliasEntry> = file
        .aliases
        .iter()
        .map(|(a, t)| bodies::AliasEntry {
            alias: a.clone(),
            target: t.clone(),
            source: "file",
            read_only: true,
        })
        .collect();
    for (a, t) in st.control.api_config().aliases {
        data.push(bodies::AliasEntry {
            alias: a,
            target: t,
            source: "api",
            read_only: false,
        });
    }
    Json(bodies::AliasList {
        object: "list",
        data,
    })
}

#[utoipa::path(
    put,
    path = "/api/aliases/{alias}",
    tag = "aliases",
    params(
        ("alias" = String, Path, description = "The alias (a model name clients send)"),
    ),
    request_body = bodies::AliasBody,
    responses(
        (status = 200, description = "Set: `{version, alias, target}`", body = bodies::AliasSet),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn put_alias(
    State(st): State<AdminState>,
    Path(alias): Path<String>,
    body: Bytes,
) -> AdminResult<Json<bodies::AliasSet>> {
    let bodies::AliasBody { target } = json_typed(&body)?;
    if target.trim().is_empty() {
        return Err(AdminError::invalid(vec![FieldError {
            field: "target".into(),
            reason: "a non-empty model name is required".into(),
        }]));
    }
    if st.control.file_config().0.aliases.contains_key(&alias) {
        return Err(AdminError::conflict(format!("alias `{alias}` is declared in the configuration file and is read-only through the API")));
    }
    let (version, _) = st
        .control
        .write(|_, _| {
            Ok(vec![ConfigChange::SetAlias {
                alias: alias.clone(),
                target: target.clone(),
            }])
        })
        .await?;
    Ok(Json(bodies::AliasSet {
        version,
        alias,
        target,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/aliases/{alias}",
    tag = "aliases",
    params(
        ("alias" = String, Path, description = "The alias (a model name clients send)"),
    ),
    responses(
        (status = 200, description = "Deleted: `{version, deleted}`", body = bodies::AliasDeleted),
        (status = 404, description = "No such provider, key or alias", body = bodies::ErrorBody),
        (status = 409, description = "Declared in the configuration file (read-only through the API), or the name or key exists already", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn delete_alias(
    State(st): State<AdminState>,
    Path(alias): Path<String>,
) -> AdminResult<Json<bodies::AliasDeleted>> {
    if st.control.file_config().0.aliases.contains_key(&alias) {
        return Err(AdminError::conflict(format!("alias `{alias}` is declared in the configuration file and is read-only through the API")));
    }
    if !st
        .control
        .api_config()
        .aliases
        .iter()
        .any(|(a, _)| *a == alias)
    {
        return Err(AdminError::not_found(format!(
            "alias `{alias}` does not exist"
        )));
    }
    let (version, _) = st
        .control
        .write(|_, _| {
            Ok(vec![ConfigChange::DeleteAlias {
                alias: alias.clone(),
            }])
        })
        .await?;
    Ok(Json(bodies::AliasDeleted {
        version,
        deleted: alias,
    }))
}

#[utoipa::path(
    get,
    path = "/api/settings",
    tag = "settings",
    responses(
        (status = 200, description = "Each of `overrides`, `routing`, `health`: its value in force and where it comes from", body = SettingsView),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_settings(State(st): State<AdminState>) -> Json<SettingsView> {
    let (file, _) = st.control.file_config();
    let api = st.control.api_config();
    let section = |name: &str, from_file: Result<Value, serde_json::Error>| match api
        .settings
        .get(name)
        .filter(|v| !v.is_null())
    {
        Some(v) => Setting {
            value: v.clone(),
            source: SettingSource::Api,
        },
        None => Setting {
            value: from_file.unwrap_or(Value::Null),
            source: SettingSource::File,
        },
    };
    Json(SettingsView {
        overrides: section("overrides", serde_json::to_value(&file.overrides)),
        routing: section("routing", serde_json::to_value(&file.routing)),
        health: section("health", serde_json::to_value(&file.health)),
    })
}

/// The settings in force, one entry per section of
/// [`api::SETTINGS_SECTIONS`] (a unit test keeps the two in step).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SettingsView {
    overrides: Setting,
    routing: Setting,
    health: Setting,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Setting {
    /// The section, as the configuration file spells it.
    #[schema(value_type = Object)]
    value: Value,
    source: SettingSource,
}

/// Where a section in force comes from: the file, or set through the API.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum SettingSource {
    File,
    Api,
}

/// The answer of `PUT /api/settings`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct SettingsSet {
    version: u64,
    settings: SettingsView,
}

/// `{"overrides": {...}, "routing": {...}, "health": {...}}`; a section set
/// to null goes back to the file's.
#[utoipa::path(
    put,
    path = "/api/settings",
    tag = "settings",
    request_body = bodies::SettingsPatch,
    responses(
        (status = 200, description = "Set: the new version and the settings in force (as `GET /api/settings`)", body = SettingsSet),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn put_settings(
    State(st): State<AdminState>,
    body: Bytes,
) -> AdminResult<Json<SettingsSet>> {
    let body = json_body(&body)?;
    let Some(obj) = body.as_object() else {
        return Err(AdminError::bad_request("settings must be a JSON object"));
    };
    let unknown: Vec<FieldError> = obj
        .keys()
        .filter(|k| !api::SETTINGS_SECTIONS.contains(&k.as_str()))
        .map(|k| FieldError {
            field: k.clone(),
            reason: format!(
                "unknown section; settable: {}",
                api::SETTINGS_SECTIONS.join(", ")
            ),
        })
        .collect();
    if !unknown.is_empty() {
        return Err(AdminError::invalid(unknown));
    }
    let not_tables = api::table_fields(obj, "", api::SETTINGS_SECTIONS);
    if !not_tables.is_empty() {
        return Err(AdminError::invalid(not_tables));
    }
    let (version, _) = st
        .control
        .write(|current, _| {
            let mut doc = current.settings.clone();
            if !doc.is_object() {
                doc = json!({});
            }
            api::merge_patch(&mut doc, &body);
            typed_settings(&doc)?;
            Ok(vec![ConfigChange::SetSettings { doc }])
        })
        .await?;
    Ok(Json(SettingsSet {
        version,
        settings: get_settings(State(st)).await.0,
    }))
}

/// The settings after a merge, each section typed: a wrong field is named
/// by its path in the body (`routing.max_attempts`).
fn typed_settings(doc: &Value) -> Result<(), WriteError> {
    use crate::config::{HealthSection, OverridesSection, RoutingSection};
    let mut errors = Vec::new();
    for name in api::SETTINGS_SECTIONS {
        let Some(v) = doc.get(*name).filter(|v| !v.is_null()) else {
            continue;
        };
        let checked = match *name {
            "overrides" => api::typed::<OverridesSection>(v).map(drop),
            "routing" => api::typed::<RoutingSection>(v).map(drop),
            _ => api::typed::<HealthSection>(v).map(drop),
        };
        if let Err(e) = checked {
            errors.push(FieldError {
                field: if e.field.is_empty() {
                    name.to_string()
                } else {
                    format!("{name}.{}", e.field)
                },
                reason: e.reason,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(WriteError::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn the_settings_view_has_one_entry_per_section() {
        assert_eq!(
            bodies::property_names(SettingsView::schema()),
            api::SETTINGS_SECTIONS.to_vec()
        );
    }
}
