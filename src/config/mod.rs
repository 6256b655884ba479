//! Configuration: the TOML file and the original environment variables,
//! validated and compiled into one immutable [`Snapshot`].
//!
//! The flow is always file -> [`FileConfig`] (serde, no invariants) -> env
//! overrides -> [`compile`] (every check, every error collected) -> [`Snapshot`].
//! A snapshot that exists is valid; bad input never replaces a good one.

mod env;
mod error;
mod schema;
mod snapshot;

pub use env::apply_env;
pub use error::{ConfigError, ConfigErrors};
pub use schema::*;
pub use snapshot::*;

use std::path::Path;

/// One problem found in the configuration: where, which key, and why.
/// Parse a TOML document into the file schema. `source` names it in errors.
pub fn parse_toml(text: &str, source: &str) -> Result<FileConfig, ConfigErrors> {
    let (cfg, errs, _) = parse_toml_recovering(text, source);
    if errs.is_empty() {
        Ok(cfg)
    } else {
        Err(errs)
    }
}

/// Parse as much of the document as possible and list every problem:
/// each syntax error (the parser recovers and goes on), then each schema
/// error (unknown key, wrong type), found by removing the offending entry
/// and deserializing again. Returns the configuration without the bad
/// entries, so the caller can go on to report the remaining semantic
/// errors too, and the arrays that lost an element (later indices there
/// are off by one).
fn parse_toml_recovering(
    text: &str,
    source: &str,
) -> (FileConfig, ConfigErrors, Vec<(String, usize)>) {
    use serde::Deserialize;
    let at = |span: Option<std::ops::Range<usize>>| match span {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{source}:{line}:{col}")
        }
        None => source.to_string(),
    };
    let mut errs = ConfigErrors::default();
    // The parser recovers within a line but may drop the rest of the
    // document after some errors; blanking each line with a syntax error
    // (spaces, so offsets and line numbers stay) and parsing again finds
    // the errors after it too.
    let mut blanked = text.to_string();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..64 {
        let (_, syntax) = toml::de::DeTable::parse_recoverable(&blanked);
        let mut fresh = false;
        let mut lines = Vec::new();
        for e in &syntax {
            let location = at(e.span());
            let message = e.message().trim().to_string();
            if seen.insert((location.clone(), message.clone())) {
                errs.push(&location, "", message);
                fresh = true;
            }
            if let Some(span) = e.span() {
                lines.push(span.start);
            }
        }
        if !fresh {
            break;
        }
        for start in lines {
            blanked = blank_line(&blanked, start);
        }
    }
    let (mut root, _) = toml::de::DeTable::parse_recoverable(&blanked);
    let mut shifted = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    // Each round removes one entry; the bound only guards against a span
    // that keeps matching (it cannot: the entry is gone).
    for _ in 0..256 {
        match FileConfig::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(cfg) => return (cfg, errs, shifted),
            Err(e) => {
                let removed = e
                    .span()
                    .and_then(|span| remove_at(root.get_mut(), &span, "", &mut shifted));
                let message = e.message().trim().to_string();
                // "missing field `type`" right after we removed a bad
                // `type` is the same problem, already listed.
                let consequence = removed.as_deref().is_some_and(|path| {
                    message
                        .strip_prefix("missing field `")
                        .and_then(|m| m.split('`').next())
                        .is_some_and(|field| gone.contains(&format!("{path}.{field}")))
                });
                if !consequence {
                    errs.push(&at(e.span()), removed.clone().unwrap_or_default(), message);
                }
                match removed {
                    Some(path) => gone.push(path),
                    None => break,
                }
            }
        }
    }
    // Nothing deserialized: compiling the defaults would find nothing real.
    (FileConfig::default(), errs, vec![(String::new(), 0)])
}

/// `text` with the line holding byte `offset` replaced by spaces.
fn blank_line(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    out.extend(std::iter::repeat_n(' ', text[start..end].len()));
    out.push_str(&text[end..]);
    out
}

/// Remove the entry whose key or value sits at `span` — the innermost one,
/// so a missing field removes its table and not the array holding it —
/// and return its dotted path. Arrays that lost an element are added to
/// `shifted`.
fn remove_at(
    table: &mut toml::de::DeTable<'_>,
    span: &std::ops::Range<usize>,
    prefix: &str,
    shifted: &mut Vec<(String, usize)>,
) -> Option<String> {
    let path = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    for (k, v) in table.iter_mut() {
        let here = path(k.get_ref());
        if let Some(p) = remove_in_value(v.get_mut(), span, &here, shifted) {
            return Some(p);
        }
    }
    let key = table
        .iter()
        .find(|(k, v)| k.span() == *span || v.span() == *span)
        .map(|(k, _)| k.get_ref().to_string())?;
    let old = std::mem::take(table);
    for (k, v) in old {
        if k.get_ref().as_ref() != key.as_str() {
            table.insert(k, v);
        }
    }
    Some(path(&key))
}

fn remove_in_value(
    value: &mut toml::de::DeValue<'_>,
    span: &std::ops::Range<usize>,
    here: &str,
    shifted: &mut Vec<(String, usize)>,
) -> Option<String> {
    match value {
        toml::de::DeValue::Table(t) => remove_at(t, span, here, shifted),
        toml::de::DeValue::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let at = format!("{here}[{}]", original_index(shifted, here, i));
                if let Some(p) = remove_in_value(v.get_mut(), span, &at, shifted) {
                    return Some(p);
                }
            }
            let i = items.iter().position(|v| v.span() == *span)?;
            let original = original_index(shifted, here, i);
            let kept: Vec<_> = items
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, v)| v.clone())
                .collect();
            *items = kept.into_iter().collect();
            shifted.push((here.to_string(), original));
            Some(format!("{here}[{original}]"))
        }
        _ => None,
    }
}

/// The index an element had in the file, given the elements already
/// removed from the array at `path` (by their indices in the file), so
/// errors name `providers[1]` even after `providers[0]` was dropped.
fn original_index(removed: &[(String, usize)], path: &str, current: usize) -> usize {
    let mut gone: Vec<usize> = removed
        .iter()
        .filter(|(p, _)| p == path)
        .map(|(_, i)| *i)
        .collect();
    gone.sort_unstable();
    let mut index = current;
    for g in gone {
        if g <= index {
            index += 1;
        }
    }
    index
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

/// Read the file (if any), apply environment overrides, and return the
/// merged schema plus a label for error messages. When anything is wrong,
/// the error lists every problem found: syntax errors, unknown keys and
/// wrong types, bad environment values, and what compiling the rest of
/// the configuration finds — one round of fixes, not one per run.
pub fn load(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(FileConfig, String), ConfigErrors> {
    let (mut file, source, mut errs, shifted) = match path {
        Some(p) => {
            let source = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| {
                let mut errs = ConfigErrors::default();
                errs.push(&source, "", format!("cannot read the file: {e}"));
                errs
            })?;
            let (file, errs, shifted) = parse_toml_recovering(&text, &source);
            (file, source, errs, shifted)
        }
        None => (
            FileConfig::default(),
            "embedded defaults".to_string(),
            ConfigErrors::default(),
            Vec::new(),
        ),
    };
    apply_env(&mut file, env, &mut errs);
    if errs.is_empty() {
        return Ok((file, source));
    }
    // Indices after a removed array element would point at the wrong
    // entry: problems inside such an array are left out (better fewer than
    // misplaced ones).
    let misplaced = |key: &str| {
        shifted
            .iter()
            .any(|(a, _)| a.is_empty() || key.starts_with(&format!("{a}[")))
    };
    let registry = crate::health::HealthRegistry::default();
    if let Err(more) = compile(&file, &source, env, &registry) {
        errs.0
            .extend(more.0.into_iter().filter(|e| !misplaced(&e.key)));
    }
    Err(errs)
}

/// The process environment, as `load` wants it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).expect("write");
        let errs = load(Some(&path), &|_| None).expect_err("invalid");
        errs.0
            .iter()
            .map(|e| {
                let at = e.source.rsplit_once("t.toml").map_or("", |(_, a)| a);
                format!("{at} {} {}", e.key, e.reason)
            })
            .collect()
    }

    #[test]
    fn every_problem_is_listed_with_the_index_it_has_in_the_file() {
        let errs = check(
            "[[providers]]\nname = \"a\"\nbase_url = \"http://h\"\n\
             [[providers]]\nname = \"b\"\ntype = 5\nweight = \"x\"\nbase_url = \"http://h\"\n\
             this is broken\n\
             [routing]\nmax_attempts = 0\nwieght = 1\n",
        );
        let want = [
            ":9:6 ",
            ":1:1 providers[0] missing field `type`",
            ":6:8 providers[1].type invalid type",
            ":7:10 providers[1].weight invalid type",
            ":12:1 routing.wieght unknown field",
            " routing.max_attempts must be between",
        ];
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
        for w in want {
            assert!(
                errs.iter().any(|e| e.starts_with(w)),
                "{w:?} not in {errs:#?}"
            );
        }
    }
}
