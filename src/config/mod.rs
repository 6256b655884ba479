//! Configuration: the TOML file and the original environment variables,
//! validated and compiled into one immutable [`Snapshot`].
//!
//! The flow is always file -> [`FileConfig`] (serde, no invariants) -> env
//! overrides -> [`compile`] (every check, every error collected) -> [`Snapshot`].
//! A snapshot that exists is valid; bad input never replaces a good one.

mod env;
mod schema;
mod snapshot;

pub use env::apply_env;
pub use schema::*;
pub use snapshot::*;

use std::fmt;
use std::path::Path;

/// One problem found in the configuration: where, which key, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// File path (with line:column when known) or `environment`.
    pub source: String,
    /// Dotted key path such as `providers[0].base_url`, or the variable name.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.source, self.key, self.reason)
        }
    }
}

/// Every error found, so an operator fixes a file in one round.
#[derive(Debug, Clone, Default)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn push(&mut self, source: &str, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ConfigError {
            source: source.to_string(),
            key: key.into(),
            reason: reason.into(),
        });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parse a TOML document into the file schema. `source` names it in errors.
pub fn parse_toml(text: &str, source: &str) -> Result<FileConfig, ConfigErrors> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let mut errs = ConfigErrors::default();
        let location = match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                format!("{source}:{line}:{col}")
            }
            None => source.to_string(),
        };
        errs.push(&location, "", e.message().trim().to_string());
        errs
    })
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
/// merged schema plus a label for error messages.
pub fn load(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(FileConfig, String), ConfigErrors> {
    let (mut file, source) = match path {
        Some(p) => {
            let source = p.display().to_string();
            let text = std::fs::read_to_string(p).map_err(|e| {
                let mut errs = ConfigErrors::default();
                errs.push(&source, "", format!("cannot read the file: {e}"));
                errs
            })?;
            (parse_toml(&text, &source)?, source)
        }
        None => (FileConfig::default(), "embedded defaults".to_string()),
    };
    let mut errs = ConfigErrors::default();
    apply_env(&mut file, env, &mut errs);
    if errs.is_empty() {
        Ok((file, source))
    } else {
        Err(errs)
    }
}

/// The process environment, as `load` wants it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
