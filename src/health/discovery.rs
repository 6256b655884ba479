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
