//! The environment variables of the original design, applied over the file.
//! Each one has the final word over its file key, so container deployments
//! can run an unchanged file.

use super::{ConfigErrors, FileConfig};
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
    parse_into(&get, "APP_PORT", &mut cfg.server.port, errs);
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
    if let Some(v) = get("DATABASE_TYPE") {
        cfg.database.kind = v;
    }
    if let Some(v) = get("DATABASE_URL") {
        cfg.database.url = v;
    }
    if let Some(v) = get("REDIS_URL") {
        cfg.redis.url = v;
    }
    parse_bool(&get, "REDIS_ENABLED", &mut cfg.redis.enabled, errs);
    if let Some(v) = get("LOG_LEVEL") {
        cfg.log.level = v;
    }
    if let Some(v) = env("LOG_FILE") {
        cfg.log.file = v;
    }
    parse_into(
        &get,
        "GRACE_PERIOD_SECS",
        &mut cfg.server.grace_period_secs,
        errs,
    );
    if let Some(v) = get("UPGRADE_SOCK") {
        cfg.server.upgrade_sock = v;
    }
    if let Some(v) = get("LOG_ROTATION") {
        cfg.log.rotation = v;
    }
    parse_into(&get, "LOG_MAX_FILES", &mut cfg.log.max_files, errs);
    parse_bool(&get, "HEALTH_CHECK_ENABLED", &mut cfg.health.enabled, errs);
    parse_into(
        &get,
        "HEALTH_CHECK_INTERVAL",
        &mut cfg.health.interval_secs,
        errs,
    );
    parse_into(
        &get,
        "HEALTH_CHECK_MAX_ERRORS",
        &mut cfg.health.max_errors,
        errs,
    );
    parse_into(
        &get,
        "HEALTH_CHECK_RETRY_HOURS",
        &mut cfg.health.retry_hours,
        errs,
    );
}

fn parse_into<T: FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut T,
    errs: &mut ConfigErrors,
) {
    if let Some(v) = get(name) {
        match v.trim().parse::<T>() {
            Ok(parsed) => *slot = parsed,
            Err(_) => errs.push(SOURCE, name, format!("{v:?} is not a valid number")),
        }
    }
}

fn parse_bool(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    slot: &mut bool,
    errs: &mut ConfigErrors,
) {
    if let Some(v) = get(name) {
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => *slot = true,
            "0" | "false" | "no" | "off" => *slot = false,
            _ => errs.push(SOURCE, name, format!("{v:?} is not a boolean (true/false)")),
        }
    }
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
            ("LOG_LEVEL", "DEBUG"),
        ]);
        assert!(errs.is_empty(), "{errs}");
        assert_eq!(cfg.server.host, "127.0.0.1");
        assert_eq!(cfg.server.port, 9000);
        assert_eq!(cfg.server.auth_token.as_deref(), Some("t0ken"));
        assert!(cfg.redis.enabled);
        assert_eq!(cfg.health.max_errors, 7);
        assert_eq!(cfg.health.retry_hours, 0.5);
        assert_eq!(cfg.log.level, "DEBUG");
    }

    #[test]
    fn bad_values_are_reported_by_variable_name() {
        let (_, errs) = run(&[("APP_PORT", "eighty"), ("REDIS_ENABLED", "maybe")]);
        let keys: Vec<_> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["APP_PORT", "REDIS_ENABLED"]);
    }
}
