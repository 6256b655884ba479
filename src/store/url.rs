//! `DATABASE_TYPE` / `DATABASE_URL`: which backend, and the URL with its
//! password masked for every log line and error.

use super::StoreError;

/// The three backends, as `DATABASE_TYPE` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
    Postgres,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MySql => "mysql",
            Backend::Postgres => "postgres",
        }
    }
}

/// A MySQL or PostgreSQL server to connect to.
#[derive(Clone)]
pub(super) struct ServerUrl {
    pub kind: Backend,
    /// What the driver is given: `mysql+asyncmy://` and `mariadb://`
    /// rewritten to `mysql://`; query options (TLS) kept as written.
    pub driver_url: String,
    /// For logs and errors: the password replaced by `…`.
    pub masked: String,
}

pub(super) enum Parsed {
    Sqlite,
    Server(ServerUrl),
}

/// The backend a URL's scheme names, `None` for an unknown scheme.
pub fn backend_of(url: &str) -> Option<Backend> {
    let url = url.trim();
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase())?;
    match scheme.as_str() {
        "sqlite" => Some(Backend::Sqlite),
        // `mysql+asyncmy` is the original design's SQLAlchemy form.
        "mysql" | "mysql+asyncmy" | "mariadb" => Some(Backend::MySql),
        "postgres" | "postgresql" => Some(Backend::Postgres),
        _ => None,
    }
}

pub(super) fn parse(url: &str) -> Result<Parsed, StoreError> {
    let trimmed = url.trim();
    match backend_of(trimmed) {
        Some(Backend::Sqlite) => Ok(Parsed::Sqlite),
        Some(kind) => {
            let Some((_, rest)) = trimmed.split_once("://") else {
                return Err(StoreError::Url(format!(
                    "`{}`: expected {}://user:password@host:port/database",
                    mask_url(trimmed),
                    kind.label()
                )));
            };
            let scheme = match kind {
                Backend::MySql => "mysql",
                _ => "postgres",
            };
            Ok(Parsed::Server(ServerUrl {
                kind,
                driver_url: format!("{scheme}://{rest}"),
                masked: mask_url(trimmed),
            }))
        }
        None => Err(StoreError::Url(format!(
            "`{}`: use sqlite:///path.db, mysql://user:password@host/db or postgres://user:password@host/db",
            mask_url(trimmed)
        ))),
    }
}

/// The URL with the password (between `user:` and the last `@` of the
/// authority) replaced by `…`; query options are kept, except `password=`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?' | '#'))
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:…@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=…"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The configuration check for `database.type` and `database.url`: the
/// type must be one of the three and agree with the URL's scheme. Returns
/// the offending key and why.
pub fn check_settings(kind: &str, url: &str) -> Result<(), (&'static str, String)> {
    let want = match kind.trim().to_ascii_lowercase().as_str() {
        "sqlite" => Backend::Sqlite,
        "mysql" => Backend::MySql,
        "postgres" | "postgresql" => Backend::Postgres,
        _ => {
            return Err((
                "database.type",
                format!("{kind:?} is not supported; use sqlite, mysql or postgres"),
            ))
        }
    };
    let example = match want {
        Backend::Sqlite => "sqlite:///./data/llm_orchestrator.db",
        Backend::MySql => "mysql://user:password@host:3306/llm_orchestrator",
        Backend::Postgres => "postgres://user:password@host:5432/llm_orchestrator",
    };
    match backend_of(url) {
        Some(b) if b == want => Ok(()),
        _ => Err((
            "database.url",
            format!(
                "`{}` does not fit database type `{}`; it must look like {example}",
                mask_url(url.trim()),
                want.label()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("mysql+asyncmy://app:s3cr%40t@db:3306/llm?ssl-mode=REQUIRED"),
            "mysql+asyncmy://app:…@db:3306/llm?ssl-mode=REQUIRED"
        );
        assert_eq!(
            mask_url("postgres://app:p@ss@db/llm?sslmode=verify-full&password=x"),
            "postgres://app:…@db/llm?sslmode=verify-full&password=…"
        );
        assert_eq!(mask_url("postgres://db/llm"), "postgres://db/llm");
        assert_eq!(mask_url("postgres://app@db/llm"), "postgres://app@db/llm");
        assert_eq!(mask_url("sqlite:///./x.db"), "sqlite:///./x.db");
    }

    #[test]
    fn url_forms_and_types() {
        for (url, kind) in [
            ("sqlite:///x.db", Backend::Sqlite),
            ("mysql://u:p@h/d", Backend::MySql),
            ("mysql+asyncmy://u:p@h/d", Backend::MySql),
            ("mariadb://u:p@h/d", Backend::MySql),
            ("postgres://u:p@h/d", Backend::Postgres),
            ("postgresql://u:p@h/d?sslmode=require", Backend::Postgres),
        ] {
            assert_eq!(backend_of(url), Some(kind), "{url}");
            assert!(check_settings(kind.label(), url).is_ok(), "{url}");
        }
        let Ok(Parsed::Server(s)) = parse("mysql+asyncmy://u:pw@h:1/d?ssl-mode=REQUIRED") else {
            panic!("parsed");
        };
        assert_eq!(s.driver_url, "mysql://u:pw@h:1/d?ssl-mode=REQUIRED");
        assert!(!s.masked.contains("pw"));
        let Err(StoreError::Url(m)) = parse("oracle://u:hunter2@h/d") else {
            panic!("refused");
        };
        assert!(!m.contains("hunter2"), "{m}");
        let (key, why) = check_settings("mysql", "postgres://u:hunter2@h/d").unwrap_err();
        assert_eq!(key, "database.url");
        assert!(
            !why.contains("hunter2") && why.contains("mysql://"),
            "{why}"
        );
        assert_eq!(
            check_settings("oracle", "x").unwrap_err().0,
            "database.type"
        );
    }
}
