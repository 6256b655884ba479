//! `/api/prices`: the price table the ledger prices requests by (see
//! [`crate::ledger::prices`]). Entries set through the API are kept in the
//! settings document (`prices`), so they are stored, audited and shared
//! between instances exactly like `/api/settings`; they are matched before
//! the file's `[[prices]]`, which come before the built-in table.

use super::*;
use crate::ledger::prices::{self, PriceSection};

/// Where a price entry comes from, in match order.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum PriceSource {
    /// Set with `PUT /api/prices`.
    Api,
    /// `[[prices]]` in the configuration file.
    File,
    /// The built-in table (src/ledger/prices.toml).
    Default,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PriceEntry {
    #[serde(flatten)]
    price: PriceSection,
    source: PriceSource,
}

/// Every entry in match order: the first whose `model` glob (and
/// `provider`, when set) matches a request prices it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PriceList {
    /// Always `list`.
    object: &'static str,
    /// The date of the built-in prices.
    defaults_as_of: &'static str,
    data: Vec<PriceEntry>,
}

/// `PUT /api/prices`: replaces the API's entries (`[]` removes them).
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PricesPut {
    prices: Vec<PriceSection>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct PricesSet {
    version: u64,
    #[serde(flatten)]
    list: PriceList,
}

/// The API's entries as stored in the settings document.
fn api_prices(settings: &Value) -> Vec<PriceSection> {
    settings
        .get("prices")
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

fn list(st: &AdminState) -> PriceList {
    let tag = |source| move |price| PriceEntry { price, source };
    let data = api_prices(&st.control.api_config().settings)
        .into_iter()
        .map(tag(PriceSource::Api))
        .chain(
            st.control
                .file_config()
                .0
                .prices
                .into_iter()
                .map(tag(PriceSource::File)),
        )
        .chain(
            prices::default_sections()
                .into_iter()
                .map(tag(PriceSource::Default)),
        )
        .collect();
    PriceList {
        object: "list",
        defaults_as_of: prices::DEFAULTS_AS_OF,
        data,
    }
}

#[utoipa::path(
    get,
    path = "/api/prices",
    tag = "settings",
    responses(
        (status = 200, description = "Every price entry in match order (API, file, built-in), USD per million tokens", body = PriceList),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn get_prices(State(st): State<AdminState>) -> Json<PriceList> {
    Json(list(&st))
}

#[utoipa::path(
    put,
    path = "/api/prices",
    tag = "settings",
    request_body = PricesPut,
    responses(
        (status = 200, description = "Set: the new version and every entry in match order", body = PricesSet),
        (status = 400, description = "The body is not JSON, or a query value is wrong", body = bodies::ErrorBody),
        (status = 422, description = "Validation failed: `error.fields` names each field by its path", body = bodies::ErrorBody),
        (status = 503, description = "The database is unavailable or not configured", body = bodies::ErrorBody),
    ),
    security(("bearer" = [])),
)]
pub(super) async fn put_prices(
    State(st): State<AdminState>,
    body: Bytes,
) -> AdminResult<Json<PricesSet>> {
    let PricesPut { prices: entries } = json_typed(&body)?;
    let mut errors: Vec<FieldError> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.check().err().map(|(field, reason)| FieldError {
                field: format!("prices[{i}].{field}"),
                reason,
            })
        })
        .collect();
    if entries.len() > prices::MAX_ENTRIES {
        errors.push(FieldError {
            field: "prices".into(),
            reason: format!("at most {} entries", prices::MAX_ENTRIES),
        });
    }
    if !errors.is_empty() {
        return Err(AdminError::invalid(errors));
    }
    let value = serde_json::to_value(&entries)
        .map_err(|e| AdminError::from(WriteError::Internal(e.to_string())))?;
    let (version, _) = st
        .control
        .write(|current, _| {
            let mut doc = current.settings.clone();
            if !doc.is_object() {
                doc = json!({});
            }
            if let Some(obj) = doc.as_object_mut() {
                if entries.is_empty() {
                    obj.remove("prices");
                } else {
                    obj.insert("prices".into(), value.clone());
                }
            }
            Ok(vec![ConfigChange::SetSettings { doc }])
        })
        .await?;
    Ok(Json(PricesSet {
        version,
        list: list(&st),
    }))
}
