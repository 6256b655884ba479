//! Models the vendors list themselves: the active `models` probe reads the
//! answer of `GET {base_url}/models`, keeps the ids (bounded), and
//! `GET /v1/models` adds those a provider serves through a glob, or through
//! no `models` list at all, to the names the configuration spells out.

use crate::config::{Provider, ProviderKind, Snapshot};
use bytes::Bytes;
use serde::Deserialize;
use std::collections::BTreeSet;

/// Most ids kept per provider.
pub const MAX_IDS: usize = 1000;
/// Longest id kept (longer ones are not model names a client would send).
pub const MAX_ID_LEN: usize = 256;

#[derive(Deserialize)]
struct Listed<'a> {
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
    /// Gemini: `models/gemini-2.5-pro`.
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct List<'a> {
    /// OpenAI and Anthropic.
    #[serde(borrow, default)]
    data: Vec<Listed<'a>>,
    /// Gemini.
    #[serde(borrow, default)]
    models: Vec<Listed<'a>>,
}

/// The model ids in a vendor's model list answer; empty when it is not one.
pub fn model_ids(kind: ProviderKind, body: &[u8]) -> Vec<String> {
    let Ok(list) = serde_json::from_slice::<List<'_>>(body) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = list
        .data
        .iter()
        .chain(list.models.iter())
        .filter_map(|m| match kind {
            ProviderKind::Gemini => m
                .name
                .as_deref()
                .map(|n| n.strip_prefix("models/").unwrap_or(n)),
            _ => m.id.as_deref(),
        })
        .filter(|id| {
            !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
        })
        .take(MAX_IDS)
        .map(str::to_string)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The ids of `p`'s vendor list that `p` serves without naming them: all of
/// them when it has no `models` list, else those matching one of its globs.
fn served<'a>(p: &'a Provider, ids: &'a [String]) -> impl Iterator<Item = &'a String> + 'a {
    ids.iter().filter(move |id| {
        p.models.is_empty()
            || p.models
                .iter()
                .any(|m| m.exact().is_none() && m.matches(id))
    })
}

/// The `GET /v1/models` body: the configured names and aliases (rendered
/// once per snapshot), plus the discovered ids enabled providers serve.
pub fn models_body(snap: &Snapshot) -> Bytes {
    let lists: Vec<_> = snap
        .providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| (p, p.health.discovered()))
        .filter(|(_, ids)| !ids.is_empty())
        .collect();
    if lists.is_empty() {
        return snap.models_body.clone();
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&snap.models_body) else {
        return snap.models_body.clone();
    };
    let Some(data) = doc.get_mut("data").and_then(|d| d.as_array_mut()) else {
        return snap.models_body.clone();
    };
    let listed: BTreeSet<String> = data
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    let found: BTreeSet<&String> = lists
        .iter()
        .flat_map(|(p, ids)| served(p, ids))
        .filter(|id| !listed.contains(id.as_str()) && !snap.aliases.contains_key(id.as_str()))
        .collect();
    for id in found {
        data.push(serde_json::json!({
            "id": id, "object": "model", "created": 0, "owned_by": "llm-orchestrator"
        }));
    }
    Bytes::from(doc.to_string())
}

/// One listed model: its id and, for an alias, the model it names.
struct Entry {
    id: String,
    alias_of: Option<String>,
}

/// The ids `GET /v1/models` lists, in its order (configured names, then
/// aliases, then discovered ids).
fn entries(snap: &Snapshot) -> Vec<Entry> {
    #[derive(Deserialize)]
    struct Item {
        id: String,
        #[serde(default)]
        alias_of: Option<String>,
    }
    #[derive(Deserialize)]
    struct Doc {
        data: Vec<Item>,
    }
    serde_json::from_slice::<Doc>(&models_body(snap))
        .map(|d| d.data)
        .unwrap_or_default()
        .into_iter()
        .map(|i| Entry {
            id: i.id,
            alias_of: i.alias_of,
        })
        .collect()
}

/// Anthropic's model object. The gateway knows no release dates: every
/// model is dated the Unix epoch (RFC 3339), and named by its id.
fn anthropic_model(e: &Entry) -> serde_json::Value {
    let display = match &e.alias_of {
        Some(target) => format!("{} (alias of {target})", e.id),
        None => e.id.clone(),
    };
    serde_json::json!({
        "type": "model",
        "id": e.id,
        "display_name": display,
        "created_at": "1970-01-01T00:00:00Z",
    })
}

fn openai_model(e: &Entry) -> serde_json::Value {
    let mut m = serde_json::json!({
        "id": e.id, "object": "model", "created": 0, "owned_by": "llm-orchestrator"
    });
    if let Some(target) = &e.alias_of {
        m["alias_of"] = target.as_str().into();
    }
    m
}

/// Anthropic's paging parameters (`limit` 1-1000, `after_id`, `before_id`);
/// without `limit` the whole list is one page.
#[derive(Deserialize, Default)]
pub struct AnthropicPage {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after_id: Option<String>,
    #[serde(default)]
    before_id: Option<String>,
}

impl AnthropicPage {
    /// Read from a query string; unknown or malformed parameters are
    /// ignored (as the list is small, a bad `limit` just means one page).
    pub fn from_query(query: Option<&str>) -> AnthropicPage {
        let mut page = AnthropicPage::default();
        for (k, v) in query
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
        {
            match k {
                "limit" => page.limit = v.parse().ok().filter(|n| (1..=1000).contains(n)),
                "after_id" if v.len() <= MAX_ID_LEN => page.after_id = Some(v.to_string()),
                "before_id" if v.len() <= MAX_ID_LEN => page.before_id = Some(v.to_string()),
                _ => {}
            }
        }
        page
    }
}

/// `GET /v1/models` in Anthropic's shape: `data[]` of model objects,
/// `has_more`, `first_id`, `last_id` (null when the page is empty).
pub fn anthropic_models_body(snap: &Snapshot, page: &AnthropicPage) -> Bytes {
    let all = entries(snap);
    let pos = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| all.iter().position(|e| &e.id == id))
    };
    let (mut start, mut end) = (0, all.len());
    if let Some(i) = pos(&page.after_id) {
        start = i + 1;
    }
    if let Some(i) = pos(&page.before_id) {
        end = i.max(start);
    }
    let window = &all[start.min(end)..end];
    let limit = page.limit.unwrap_or(window.len());
    // `before_id` pages backwards: the page ends right before it.
    let shown = if page.before_id.is_some() && page.after_id.is_none() {
        &window[window.len().saturating_sub(limit)..]
    } else {
        &window[..limit.min(window.len())]
    };
    let has_more = shown.len() < window.len();
    let body = serde_json::json!({
        "data": shown.iter().map(anthropic_model).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": shown.first().map(|e| e.id.as_str()),
        "last_id": shown.last().map(|e| e.id.as_str()),
    });
    Bytes::from(body.to_string())
}

/// `GET /v1/models/{id}` in Anthropic's shape (`anthropic`) or OpenAI's: a listed id, or a name
/// some provider serves (a glob or catch-all provider); `None` otherwise.
pub fn model_body(snap: &Snapshot, anthropic: bool, id: &str) -> Option<Bytes> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return None;
    }
    let entry = entries(snap).into_iter().find(|e| e.id == id).or_else(|| {
        snap.route(id).map(|_| Entry {
            id: id.to_string(),
            alias_of: None,
        })
    })?;
    let doc = if anthropic {
        anthropic_model(&entry)
    } else {
        openai_model(&entry)
    };
    Some(Bytes::from(doc.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_each_vendor_list_bounded() {
        let oa = br#"{"object":"list","data":[{"id":"gpt-4o","object":"model"},{"id":"o3-mini"},{"id":"bad id"},{"id":""}]}"#;
        assert_eq!(model_ids(ProviderKind::OpenAi, oa), ["gpt-4o", "o3-mini"]);
        let an = br#"{"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude"}],"has_more":false}"#;
        assert_eq!(
            model_ids(ProviderKind::Anthropic, an),
            ["claude-sonnet-4-5"]
        );
        let ge = br#"{"models":[{"name":"models/gemini-2.5-pro","displayName":"G"}],"nextPageToken":"x"}"#;
        assert_eq!(model_ids(ProviderKind::Gemini, ge), ["gemini-2.5-pro"]);
        assert!(model_ids(ProviderKind::OpenAi, b"<html>").is_empty());
        let long = format!(r#"{{"data":[{{"id":"{}"}}]}}"#, "m".repeat(MAX_ID_LEN + 1));
        assert!(model_ids(ProviderKind::OpenAi, long.as_bytes()).is_empty());
        let many: Vec<String> = (0..MAX_IDS + 50)
            .map(|i| format!(r#"{{"id":"m{i:05}"}}"#))
            .collect();
        let many = format!(r#"{{"data":[{}]}}"#, many.join(","));
        assert_eq!(
            model_ids(ProviderKind::OpenAi, many.as_bytes()).len(),
            MAX_IDS
        );
    }
}
