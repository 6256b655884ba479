//! The environment variables of the original design, applied over the file.
//! Each one has the final word over its file key, so container deployments
//! can run an unchanged file.

use super::error::ConfigErrors;
use super::schema::FileConfig;
use std::str::FromStr;

const SOURCE: &str = "environment";

pub fn apply_env(
    cfg: &mut FileConfig,
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut ConfigErrors,
) {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());

    if let Some(v) = get("APP_NAME") {
        cfg.app.name = v;
    }
    if let Some(v) = get("APP_ENV") {
        cfg.app.env = v;
    }
    if let Some(v) = get("APP_HOST") {
        cfg.server.host = v;
    }
    parse_into(
        &get,
        "APP_PORT",
        "a port number from 0 to 65535",
        &mut cfg.server.port,
        errs,
    );
    if let Some(v) = env("AUTH_TOKEN") {
        // An explicitly empty AUTH_TOKEN clears a token set in the file.
        cfg.server.auth_token = Some(v).filter(|v| !v.is_empty());
    }
    if let Some(v) = env("ADMIN_LISTEN") {
        cfg.admin.listen = v;
    }
    if let Some(v) = env("ADMIN_TOKEN") {
        cfg.admin.token = Some(v).filter(|v| !v.is_empty());
    }
    parse_bool(
        &get,
        "ADMIN_ON_MAIN_PORT",
        &mut cfg.admin.expose_on_main,
        errs,
    );
    parse_choice(
        &get,
        "DATABASE_TYPE",
        &["sqlite", "mysql", "postgres"],
        &mut cfg.database.kind,
        errs,
    );
    if let Some(v) = get("DATABASE_URL") {
        cfg.database.url = v;
    }
    if let Some(v) = get("REDIS_URL") {
        cfg.redis.url = v;
    }
    parse_bool(&get, "REDIS_ENABLED", &mut cfg.redis.enabled, errs);
    if let Some(v) = get("LOG_LEVEL") {
        match log_level_problem(&v) {
            None => cfg.log.level = v,
            Some(why) => errs.push(SOURCE, "LOG_LEVEL", why),
        }
    }
    if let Some(v) = env("LOG_FILE") {
        cfg.log.file = v;
    }
    parse_into(
        &get,
        "GRACE_PERIOD_SECS",
        "a whole number of seconds",
        &mut cfg.server.grace_period_secs,
        errs,
    );
    if let Some(v) = get("UPGRADE_SOCK") {
        cfg.server.upgrade_sock = v;
    }
    parse_choice(
        &get,
        "LOG_ROTATION",
        &["daily", "hourly", "never"],
        &mut cfg.log.rotation,
        errs,
    );
    parse_into(
        &get,
        "LOG_MAX_FILES",
        "a whole number of files (0 = keep all)",
        &mut cfg.log.max_files,
        errs,
    );
    parse_bool(&get, "HEALTH_CHECK_ENABLED", &mut cfg.health.enabled, errs);
    parse_into(
        &get,
        "HEALTH_CHECK_INTERVAL",
        "a number of seconds",
        &mut cfg.health.interval_secs,
        errs,
    );
    parse_into(
        &get,
        "HEALTH_CHECK_MAX_ERRORS",
        "a whole number",
        &mut cfg.health.max_errors,
        errs,
    );
    parse_into(
        &get,
        "HEALTH_CHECK_RETRY_HOURS",
        "a number of hours",
        &mut cfg.health.retry_hours,
        errs,
    );
    // Documented with the others but was never read: set, it was ignored.
    let mut retry_secs = cfg.health.retry_secs.unwrap_or_default();
    if get("HEALTH_CHECK_RETRY_SECS").is_some() {
        let before = errs.0.len();
        parse_into(
            &get,
            "HEALTH_CHECK_RETRY_SECS",
            "a number of seconds",
            &mut retry_secs,
            errs,
        );
        if errs.0.len() == before {
            cfg.health.retry_secs = Some(retry_secs);
        }
    }
}

fn parse_into<T: FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    expected: &str,
    slot: &mut T,
    errs: &mut ConfigErrors,
) {
    if let Some(v) = get(name) {
        match v.trim().parse::<T>() {
            Ok(parsed) => *slot = parsed,
            Err(_) => errs.push(
                SOURCE,
                name,
                format!("{v:?} is not accepted; expected {expected}"),
            ),
        }
    }
}

/// One of `choices` (any case), kept as written; anything else is an error
/// listing them.
fn parse_choice(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    choices: &[&str],
    slot: &mut String,
    errs: &mut ConfigErrors,
) {
    let Some(v) = get(name) else {
        return;
    };
    if choices.iter().any(|c| v.trim().eq_ignore_ascii_case(c)) {
        *slot = v;
        return;
    }
    let accepted = match choices {
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        [] => String::new(),
    };
    errs.push(
        SOURCE,
        name,
        format!("{v:?} is not accepted; use {accepted}"),
    );
}

/// Only `true` and `false` (any case): the original design compared the
/// value with "true", so `yes`, `on` or `1` meant false there — taking
/// them as true here would silently flip a migrated setting.
fn parse_bool(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut bool,
    errs: &mut ConfigErrors,
) {
    if let Some(v) = get(name) {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" => *slot = true,
            "false" => *slot = false,
            _ => errs.push(
                SOURCE,
                name,
                format!("{v:?} is not accepted; use true or false"),
            ),
        }
    }
}

/// Log levels by name, as `LOG_LEVEL` and `log.level` accept them.
const LEVELS: &[&str] = &[
    "trace", "debug", "info", "warn", "warning", "error", "critical", "fatal", "off",
];

/// Why a `LOG_LEVEL` / `log.level` value is refused, if it is. A level
/// name, or comma-separated `target=level` directives (a bare level among
/// them sets the default). A bare word such as `verbose` is valid
/// `tracing` syntax — "everything from the target named verbose" — which
/// logs nothing else, errors included; so it is refused here.
pub fn log_level_problem(level: &str) -> Option<String> {
    let accepted = || {
        format!(
            "{level:?} is not accepted; use one of trace, debug, info, warn, error, off (any case), \
             or directives such as \"info,pingora=warn\""
        )
    };
    let lower = level.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return None;
    }
    for part in lower.split(',').map(str::trim) {
        let level_part = match part.rsplit_once('=') {
            Some((target, lvl)) if !target.trim().is_empty() => lvl.trim(),
            Some(_) => return Some(accepted()),
            None => part,
        };
        if !LEVELS.contains(&level_part) {
            return Some(accepted());
        }
    }
    if crate::telemetry::filter::parse_filter(level).is_err() {
        return Some(accepted());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(vars: &[(&str, &str)]) -> (FileConfig, ConfigErrors) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut cfg = FileConfig::default();
        let mut errs = ConfigErrors::default();
        apply_env(&mut cfg, &|k| map.get(k).cloned(), &mut errs);
        (cfg, errs)
    }

    #[test]
    fn original_variables_override_the_file() {
        let (cfg, errs) = run(&[
            ("APP_HOST", "127.0.0.1"),
            ("APP_PORT", "9000"),
            ("AUTH_TOKEN", "t0ken"),
            ("REDIS_ENABLED", "true"),
            ("HEALTH_CHECK_MAX_ERRORS", "7"),
            ("HEALTH_CHECK_RETRY_HOURS", "0.5"),
            ("HEALTH_CHECK_RETRY_SECS", "90"),
            ("LOG_LEVEL", "DEBUG"),
        ]);
        assert!(errs.is_empty(), "{errs}");
        assert_eq!(cfg.server.host, "127.0.0.1");
        assert_eq!(cfg.server.port, 9000);
        assert_eq!(cfg.server.auth_token.as_deref(), Some("t0ken"));
        assert!(cfg.redis.enabled);
        assert_eq!(cfg.health.max_errors, 7);
        assert_eq!(cfg.health.retry_hours, 0.5);
        assert_eq!(cfg.health.retry_secs, Some(90.0));
        assert_eq!(cfg.log.level, "DEBUG");
    }

    #[test]
    fn bad_values_are_reported_by_variable_name() {
        let (_, errs) = run(&[("APP_PORT", "eighty"), ("REDIS_ENABLED", "maybe")]);
        let keys: Vec<_> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["APP_PORT", "REDIS_ENABLED"]);
    }

    #[test]
    fn values_that_only_look_valid_are_refused_with_the_accepted_ones() {
        for (name, value, accepted) in [
            ("LOG_LEVEL", "verbose", "trace, debug, info, warn, error"),
            (
                "LOG_LEVEL",
                "info,verbose",
                "trace, debug, info, warn, error",
            ),
            (
                "LOG_LEVEL",
                "pingora=loud",
                "trace, debug, info, warn, error",
            ),
            ("REDIS_ENABLED", "yes", "true or false"),
            ("HEALTH_CHECK_ENABLED", "1", "true or false"),
            ("ADMIN_ON_MAIN_PORT", "on", "true or false"),
            ("LOG_ROTATION", "weekly", "daily, hourly or never"),
            ("DATABASE_TYPE", "oracle", "sqlite, mysql or postgres"),
            ("APP_PORT", "99999", "0 to 65535"),
            ("HEALTH_CHECK_MAX_ERRORS", "-1", "whole number"),
            ("HEALTH_CHECK_RETRY_SECS", "soon", "number of seconds"),
        ] {
            let (_, errs) = run(&[(name, value)]);
            assert_eq!(errs.0.len(), 1, "{name}={value}: {errs}");
            let e = &errs.0[0];
            assert_eq!(e.key, name);
            assert!(
                e.reason.contains(accepted) && e.reason.contains(value),
                "{name}={value}: {e}"
            );
        }
        for ok in [
            "INFO",
            "Warning",
            "debug,pingora=warn",
            "llm_orchestrator=trace",
            "off",
        ] {
            assert_eq!(log_level_problem(ok), None, "{ok}");
        }
    }
}
