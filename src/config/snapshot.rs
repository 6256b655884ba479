//! The validated internal configuration.
//!
//! [`compile`] checks everything and collects every error; what comes out is
//! split into [`ProcessSettings`] (fixed for the life of the process: ports,
//! threads, logging) and the hot [`Snapshot`] (providers, keys, routes) that
//! the data plane reads through `ArcSwap` and that later changes replace whole.

use super::error::ConfigErrors;
use super::schema::{FileConfig, OverridesSection, ProviderSection};
use crate::health::{HealthPolicy, HealthRegistry, KeyState, ProviderHealth};
use crate::protocol::chat::overrides::{Overrides, VendorEdits};
use crate::protocol::chat::VendorOptions;
use crate::routing::route::{ModelPattern, Route, RouteCache};
pub use crate::telemetry::mask_secret;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

/// How the log file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRotation {
    Daily,
    Hourly,
    Never,
}

/// Settings read once at start; changing them needs a restart.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    pub app_name: String,
    pub production: bool,
    pub host: String,
    pub port: u16,
    pub threads: usize,
    pub grace_period: Duration,
    pub upgrade_sock: String,
    pub log_level: String,
    pub log_file: Option<String>,
    pub log_rotation: LogRotation,
    pub log_max_files: usize,
    pub database_url: String,
    pub redis_enabled: bool,
    pub redis_url: String,
    /// Admin listener address, `None` = none.
    pub admin_listen: Option<String>,
    pub admin_on_main: bool,
    pub log_retention_days: u32,
    pub log_retention_rows: u64,
    /// Limits on client connections and request heads (`server.*`).
    pub edge: EdgeSettings,
}

/// What one client may hold: connections, time to send a request, head
/// size, and the memory buffered answers take together.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSettings {
    /// 0 = automatic (see `server::connection_cap`).
    pub max_connections: usize,
    pub head_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_head_bytes: usize,
    pub max_buffered_response_bytes: usize,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        let s = super::schema::ServerSection::default();
        EdgeSettings {
            max_connections: s.max_connections,
            head_timeout: Duration::from_secs_f64(s.head_timeout_secs),
            body_timeout: Duration::from_secs_f64(s.body_timeout_secs),
            keepalive_timeout: Duration::from_secs_f64(s.keepalive_timeout_secs),
            max_head_bytes: s.max_head_bytes,
            max_buffered_response_bytes: s.max_buffered_response_bytes,
        }
    }
}

/// Bounds of `server.max_head_bytes`: Pingora itself stops at 1 MiB.
pub const MAX_HEAD_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=1024 * 1024 - 1;

/// Active health checking and the passive health policy.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    pub enabled: bool,
    pub interval: Duration,
    pub policy: HealthPolicy,
    pub probe: ProbeKind,
    pub probe_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Models,
    Connect,
    Completion,
}

/// The hot, immutable configuration every request reads.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases with every applied change (file reload or admin write).
    pub version: u64,
    pub auth_token: Option<String>,
    /// Bearer token of the admin API (falls back to `auth_token`).
    pub admin_token: Option<String>,
    pub health: HealthSettings,
    pub max_body_bytes: usize,
    pub routing: RoutingSettings,
    pub providers: Vec<Arc<Provider>>,
    pub aliases: HashMap<String, String>,
    pub overrides: Overrides,
    /// Routes for every model name the config mentions, built up front.
    routes: HashMap<String, Arc<Route>>,
    /// Routes for other names (served by catch-all or glob providers).
    dynamic_routes: RouteCache,
    /// Pre-rendered `GET /v1/models` body.
    pub models_body: Bytes,
    /// Masks this snapshot's secrets in vendor error text; built on the
    /// first error that needs it (see `telemetry::Redactor`).
    pub redactor: std::sync::OnceLock<crate::telemetry::Redactor>,
    /// `[[prices]]` before the built-in prices (see `crate::ledger`).
    pub prices: Arc<crate::ledger::PriceTable>,
}

#[derive(Debug, Clone)]
pub struct RoutingSettings {
    pub max_attempts: u32,
    pub request_timeout: Duration,
    pub rate_limit_cooldown: Duration,
    pub max_retry_after: Duration,
    pub auth_failure_cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Gemini,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s {
            "openai" => Some(ProviderKind::OpenAi),
            "anthropic" => Some(ProviderKind::Anthropic),
            "gemini" => Some(ProviderKind::Gemini),
            _ => None,
        }
    }
}

/// The `anthropic-version` used when a provider does not set one.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` for vendors that require it when the client gave none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Most `strip_betas` entries per provider.
pub const MAX_STRIP_BETAS: usize = 64;

/// Where a provider lives: parsed once from `base_url`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Set when `host` is an IP literal, so no DNS is needed.
    pub ip: Option<IpAddr>,
    /// Path prefix without trailing slash, e.g. `/v1`.
    pub base_path: String,
    /// Value of the `Host` header (`host` or `host:port`).
    pub host_header: String,
}

#[derive(Debug)]
pub struct ApiKey {
    /// The secret itself; only ever written into the upstream request.
    secret: String,
    /// `Bearer <secret>`, built once and marked sensitive.
    bearer: http::HeaderValue,
    /// The bare secret as a (sensitive) header value, for `x-api-key` style auth.
    raw: http::HeaderValue,
    /// Masked form (`sk-…abcd`) for logs and responses.
    pub masked: String,
    pub state: Arc<KeyState>,
}

impl ApiKey {
    pub fn secret(&self) -> &str {
        &self.secret
    }
    pub fn bearer(&self) -> &http::HeaderValue {
        &self.bearer
    }
    pub fn raw_header(&self) -> &http::HeaderValue {
        &self.raw
    }
}

#[derive(Debug, Clone)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub total: Duration,
}

#[derive(Debug)]
pub struct Provider {
    pub index: usize,
    pub name: String,
    pub kind: ProviderKind,
    pub endpoint: Endpoint,
    /// Empty for keyless servers (local vLLM, Ollama).
    pub keys: Vec<ApiKey>,
    pub weight: u32,
    pub enabled: bool,
    pub models: Vec<ModelPattern>,
    pub model_map: HashMap<String, String>,
    /// Canonical overrides, applied after the global ones.
    pub overrides: Overrides,
    /// Edits of the vendor's own body (`[providers.overrides.vendor]`).
    pub vendor_edits: VendorEdits,
    pub timeouts: Timeouts,
    /// The vendor API: endpoint, auth and its egress adapter.
    pub vendor: &'static crate::providers::Vendor,
    /// What the egress adapter reads of this provider's settings.
    pub vendor_options: VendorOptions,
    /// The vendor's chat path when fixed (see `Vendor::fixed_chat_path`);
    /// empty when it depends on the model.
    pub chat_path: String,
    /// `anthropic-version` header value (Anthropic providers).
    pub anthropic_version: String,
    /// The same, ready to insert into each upstream request.
    pub anthropic_version_header: http::HeaderValue,
    pub default_max_tokens: u64,
    /// `anthropic-beta` flags never forwarded to this provider.
    pub strip_betas: Vec<String>,
    /// Speaks the OpenAI Responses API itself: Responses clients' bodies
    /// pass through to `{base_path}/responses` (`responses = "native"`).
    pub responses_native: bool,
    /// Passive (and active) health, shared across snapshots.
    pub health: Arc<ProviderHealth>,
    /// Round-robin position for key choice.
    pub next_key: AtomicUsize,
}

impl Provider {
    /// Does this provider serve the (alias-resolved) model name?
    pub fn serves(&self, model: &str) -> bool {
        self.model_map.contains_key(model)
            || self.models.is_empty()
            || self.models.iter().any(|p| p.matches(model))
    }

    /// The model name to send upstream.
    pub fn upstream_model<'a>(&'a self, model: &'a str) -> &'a str {
        self.model_map.get(model).map_or(model, String::as_str)
    }
}

/// The enabled providers that serve `model`, as `(index, weight)`.
fn serving<'a>(
    providers: &'a [Arc<Provider>],
    model: &'a str,
) -> impl Iterator<Item = (usize, u32)> + 'a {
    providers
        .iter()
        .filter(move |p| p.enabled && p.serves(model))
        .map(|p| (p.index, p.weight))
}

impl Snapshot {
    /// Candidates for a client model name: alias resolved, then providers.
    /// `None` when no enabled provider serves it.
    pub fn route(&self, client_model: &str) -> Option<Arc<Route>> {
        let model = self
            .aliases
            .get(client_model)
            .map_or(client_model, String::as_str);
        if let Some(r) = self.routes.get(model) {
            return Some(r.clone());
        }
        self.dynamic_routes.get_or_build(model, || {
            Route::build(model, serving(&self.providers, model))
        })
    }

    pub fn provider_count(&self) -> usize {
        self.providers.len()
    }

    /// The masker for every secret of this snapshot: vendor keys,
    /// `AUTH_TOKEN` and the admin token. Used on error paths only.
    pub fn redactor(&self) -> &crate::telemetry::Redactor {
        self.redactor.get_or_init(|| {
            let keys = self
                .providers
                .iter()
                .flat_map(|p| p.keys.iter().map(ApiKey::secret));
            let tokens = self
                .auth_token
                .iter()
                .chain(self.admin_token.iter())
                .map(String::as_str);
            crate::telemetry::Redactor::new(keys.chain(tokens))
        })
    }
}

/// Validate and compile. `source` names the origin in error messages; `env`
/// expands `${VAR}` in keys; `registry` carries key state across rebuilds.
pub fn compile(
    file: &FileConfig,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    registry: &HealthRegistry,
) -> Result<(ProcessSettings, Snapshot), ConfigErrors> {
    let mut errs = ConfigErrors::default();
    let e = &mut errs;

    // --- process-level settings
    if file.server.host.trim().is_empty() {
        e.push(source, "server.host", "must not be empty");
    } else if file.server.host != "localhost" && file.server.host.parse::<IpAddr>().is_err() {
        e.push(
            source,
            "server.host",
            format!(
                "{:?} is not an IP address (or `localhost`)",
                file.server.host
            ),
        );
    }
    let env_name = file.app.env.to_ascii_lowercase();
    if !matches!(
        env_name.as_str(),
        "development" | "production" | "dev" | "prod" | "test"
    ) {
        e.push(
            source,
            "app.env",
            format!("{:?} is not `development` or `production`", file.app.env),
        );
    }
    let log_rotation = match file.log.rotation.to_ascii_lowercase().as_str() {
        "daily" | "" => LogRotation::Daily,
        "hourly" => LogRotation::Hourly,
        "never" | "none" => LogRotation::Never,
        other => {
            e.push(
                source,
                "log.rotation",
                format!("{other:?} is not `daily`, `hourly` or `never`"),
            );
            LogRotation::Daily
        }
    };
    if let Some(why) = super::env::log_level_problem(&file.log.level) {
        e.push(source, "log.level", why);
    }
    if let Err((key, why)) = crate::store::check_settings(&file.database.kind, &file.database.url) {
        e.push(source, key, why);
    }
    if file.redis.enabled
        && !file.redis.url.starts_with("redis://")
        && !file.redis.url.starts_with("rediss://")
    {
        e.push(source, "redis.url", "must start with redis:// or rediss://");
    }
    let h = &file.health;
    if h.max_errors == 0 {
        e.push(source, "health.max_errors", "must be at least 1");
    }
    if h.recover_successes == 0 {
        e.push(source, "health.recover_successes", "must be at least 1");
    }
    if !(h.degraded_weight.is_finite() && (0.0..=1.0).contains(&h.degraded_weight)) {
        e.push(source, "health.degraded_weight", "must be between 0 and 1");
    }
    let retry_after = match h.retry_secs {
        Some(secs) => secs_allow_zero(e, source, "health.retry_secs", secs),
        None if h.retry_hours.is_finite() && (0.0..=8760.0).contains(&h.retry_hours) => {
            Duration::from_secs_f64(h.retry_hours * 3600.0)
        }
        None => {
            e.push(
                source,
                "health.retry_hours",
                "must be a number of hours between 0 and 8760",
            );
            Duration::from_secs(3600)
        }
    };
    let interval = secs(e, source, "health.interval_secs", h.interval_secs);
    let probe_timeout = secs(e, source, "health.probe_timeout_secs", h.probe_timeout_secs);
    let probe = match h.probe.as_str() {
        "models" => ProbeKind::Models,
        "connect" => ProbeKind::Connect,
        "completion" => ProbeKind::Completion,
        other => {
            e.push(
                source,
                "health.probe",
                format!("{other:?} is not a probe; use models, connect or completion"),
            );
            ProbeKind::Models
        }
    };
    let health = HealthSettings {
        enabled: h.enabled,
        interval,
        policy: HealthPolicy {
            max_errors: h.max_errors,
            recover_successes: h.recover_successes,
            retry_after,
            degraded_weight: h.degraded_weight,
        },
        probe,
        probe_timeout,
    };

    // --- hot settings
    let listen = file.admin.listen.trim();
    if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
        e.push(
            source,
            "admin.listen",
            format!("{listen:?} is not an address like 127.0.0.1:8001"),
        );
    }
    let max_body = file.server.max_body_bytes;
    if max_body == 0 || max_body > 1 << 30 {
        e.push(
            source,
            "server.max_body_bytes",
            "must be between 1 and 1073741824",
        );
    }
    let sv = &file.server;
    if sv.max_connections > 1_000_000 {
        e.push(
            source,
            "server.max_connections",
            "must be at most 1000000 (0 = automatic)",
        );
    }
    if !MAX_HEAD_BYTES_RANGE.contains(&sv.max_head_bytes) {
        e.push(
            source,
            "server.max_head_bytes",
            format!(
                "must be between {} and {}",
                MAX_HEAD_BYTES_RANGE.start(),
                MAX_HEAD_BYTES_RANGE.end()
            ),
        );
    }
    if sv.max_buffered_response_bytes < 1024 || sv.max_buffered_response_bytes > 1 << 40 {
        e.push(
            source,
            "server.max_buffered_response_bytes",
            "must be between 1024 and 1099511627776",
        );
    }
    let edge = EdgeSettings {
        max_connections: sv.max_connections,
        head_timeout: secs(e, source, "server.head_timeout_secs", sv.head_timeout_secs),
        body_timeout: secs(e, source, "server.body_timeout_secs", sv.body_timeout_secs),
        keepalive_timeout: secs(
            e,
            source,
            "server.keepalive_timeout_secs",
            sv.keepalive_timeout_secs,
        ),
        max_head_bytes: sv.max_head_bytes,
        max_buffered_response_bytes: sv.max_buffered_response_bytes,
    };
    let r = &file.routing;
    if r.max_attempts == 0 || r.max_attempts > 20 {
        e.push(source, "routing.max_attempts", "must be between 1 and 20");
    }
    let request_timeout = secs(
        e,
        source,
        "routing.request_timeout_secs",
        r.request_timeout_secs,
    );
    let rate_limit_cooldown = secs(
        e,
        source,
        "routing.rate_limit_cooldown_secs",
        r.rate_limit_cooldown_secs,
    );
    let max_retry_after = secs(
        e,
        source,
        "routing.max_retry_after_secs",
        r.max_retry_after_secs,
    );
    let auth_failure_cooldown = secs(
        e,
        source,
        "routing.auth_failure_cooldown_secs",
        r.auth_failure_cooldown_secs,
    );

    let overrides = compile_overrides(e, source, "overrides", &file.overrides);
    if !file.overrides.vendor.is_empty() {
        e.push(
            source,
            "overrides.vendor",
            "vendor edits name one vendor's body fields, so they belong to a provider: [providers.overrides.vendor]",
        );
    }

    let mut aliases = HashMap::new();
    for (alias, target) in &file.aliases {
        let key = format!("aliases.{alias:?}");
        if alias.trim().is_empty() || target.trim().is_empty() {
            e.push(source, key, "alias and target must not be empty");
        } else if alias == target {
            e.push(source, key, "an alias cannot point to itself");
        } else if file.aliases.contains_key(target) {
            e.push(
                source,
                key,
                format!("target {target:?} is itself an alias; point at the final model name"),
            );
        } else {
            aliases.insert(alias.clone(), target.clone());
        }
    }

    let mut names = BTreeSet::new();
    let mut providers = Vec::with_capacity(file.providers.len());
    for (i, p) in file.providers.iter().enumerate() {
        let at = format!("providers[{i}]");
        if !names.insert(p.name.clone()) {
            e.push(
                source,
                format!("{at}.name"),
                format!("duplicate provider name {:?}", p.name),
            );
        }
        if let Some(provider) = compile_provider(e, source, &at, i, p, env, registry) {
            providers.push(Arc::new(provider));
        }
    }

    if file.prices.len() > crate::ledger::prices::MAX_ENTRIES {
        e.push(
            source,
            "prices".to_string(),
            format!("at most {} entries", crate::ledger::prices::MAX_ENTRIES),
        );
    }
    for (i, p) in file.prices.iter().enumerate() {
        if let Err((field, why)) = p.check() {
            e.push(source, format!("prices[{i}].{field}"), why);
        }
    }

    if !errs.is_empty() {
        return Err(errs);
    }

    let production = matches!(env_name.as_str(), "production" | "prod");
    let process = ProcessSettings {
        app_name: file.app.name.clone(),
        production,
        host: file.server.host.clone(),
        port: file.server.port,
        threads: file.server.threads,
        grace_period: Duration::from_secs(file.server.grace_period_secs),
        upgrade_sock: file.server.upgrade_sock.clone(),
        log_level: file.log.level.clone(),
        log_file: Some(file.log.file.clone()).filter(|f| !f.trim().is_empty()),
        log_rotation,
        log_max_files: file.log.max_files,
        database_url: file.database.url.clone(),
        redis_enabled: file.redis.enabled,
        redis_url: file.redis.url.clone(),
        admin_listen: Some(file.admin.listen.trim().to_string()).filter(|l| !l.is_empty()),
        admin_on_main: file.admin.expose_on_main,
        log_retention_days: file.admin.log_retention_days,
        log_retention_rows: file.admin.log_retention_rows,
        edge,
    };

    // Every name the config spells out gets its route now; the rest are
    // resolved on first use and cached.
    let mut known: BTreeSet<String> = BTreeSet::new();
    for p in &providers {
        known.extend(p.model_map.keys().cloned());
        known.extend(
            p.models
                .iter()
                .filter_map(|m| m.exact().map(str::to_string)),
        );
    }
    known.extend(aliases.values().cloned());
    let mut routes = HashMap::new();
    for model in &known {
        if let Some(route) = Route::build(model, serving(&providers, model)) {
            routes.insert(model.clone(), Arc::new(route));
        }
    }

    let models_body = render_models(&known, &aliases, &routes);
    let snapshot = Snapshot {
        version: 1,
        auth_token: file.server.auth_token.clone(),
        admin_token: file
            .admin
            .token
            .clone()
            .or_else(|| file.server.auth_token.clone()),
        health,
        max_body_bytes: max_body,
        routing: RoutingSettings {
            max_attempts: r.max_attempts,
            request_timeout,
            rate_limit_cooldown,
            max_retry_after,
            auth_failure_cooldown,
        },
        providers,
        aliases,
        overrides,
        routes,
        dynamic_routes: RouteCache::default(),
        models_body,
        redactor: std::sync::OnceLock::new(),
        prices: Arc::new(crate::ledger::PriceTable::new(&file.prices)),
    };
    Ok((process, snapshot))
}

fn secs(e: &mut ConfigErrors, source: &str, key: &str, v: f64) -> Duration {
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Duration::from_secs_f64(v)
    } else {
        e.push(
            source,
            key,
            format!("{v} is not a number of seconds in (0, 86400]"),
        );
        Duration::from_secs(1)
    }
}

fn secs_allow_zero(e: &mut ConfigErrors, source: &str, key: &str, v: f64) -> Duration {
    if v == 0.0 {
        Duration::ZERO
    } else {
        secs(e, source, key, v)
    }
}

/// `toml` values as JSON, for the override compilers.
fn json_pairs(
    m: &std::collections::BTreeMap<String, toml::Value>,
) -> Vec<(String, serde_json::Value)> {
    m.iter()
        .filter_map(|(k, v)| serde_json::to_value(v).ok().map(|v| (k.clone(), v)))
        .collect()
}

/// Canonical overrides (`set` / `default` / `drop`), every problem reported
/// at its key (`overrides.set.logit_bias`) with what to write instead.
fn compile_overrides(
    e: &mut ConfigErrors,
    source: &str,
    at: &str,
    o: &OverridesSection,
) -> Overrides {
    Overrides::compile(&json_pairs(&o.set), &json_pairs(&o.default), &o.drop).unwrap_or_else(
        |problems| {
            for (key, why) in problems {
                e.push(source, format!("{at}.{key}"), why);
            }
            Overrides::default()
        },
    )
}

/// A provider's `[providers.overrides.vendor]` dotted-path edits.
fn compile_vendor_edits(
    e: &mut ConfigErrors,
    source: &str,
    at: &str,
    o: &OverridesSection,
) -> VendorEdits {
    let v = &o.vendor;
    VendorEdits::compile(&json_pairs(&v.set), &json_pairs(&v.default), &v.drop).unwrap_or_else(
        |problems| {
            for (key, why) in problems {
                e.push(source, format!("{at}.{key}"), why);
            }
            VendorEdits::default()
        },
    )
}

fn compile_provider(
    e: &mut ConfigErrors,
    source: &str,
    at: &str,
    index: usize,
    p: &ProviderSection,
    env: &dyn Fn(&str) -> Option<String>,
    registry: &HealthRegistry,
) -> Option<Provider> {
    let before = e.0.len();
    let name_ok = !p.name.is_empty()
        && p.name.len() <= 64
        && p.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        e.push(
            source,
            format!("{at}.name"),
            format!("{:?} must be 1-64 characters of A-Z a-z 0-9 - _ .", p.name),
        );
    }
    let kind = ProviderKind::parse(&p.kind);
    if kind.is_none() {
        e.push(
            source,
            format!("{at}.type"),
            format!(
                "unknown provider type {:?}; known types: openai, anthropic, gemini",
                p.kind
            ),
        );
    }
    let anthropic_version = p
        .anthropic_version
        .clone()
        .unwrap_or_else(|| DEFAULT_ANTHROPIC_VERSION.to_string());
    if anthropic_version.is_empty()
        || !anthropic_version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-')
    {
        e.push(
            source,
            format!("{at}.anthropic_version"),
            format!("{anthropic_version:?} is not a date like 2023-06-01"),
        );
    }
    if p.anthropic_version.is_some() && kind != Some(ProviderKind::Anthropic) {
        e.push(
            source,
            format!("{at}.anthropic_version"),
            "only applies to providers of type anthropic",
        );
    }
    if !p.strip_betas.is_empty() && kind != Some(ProviderKind::Anthropic) {
        e.push(
            source,
            format!("{at}.strip_betas"),
            "only applies to providers of type anthropic",
        );
    }
    if p.strip_betas.len() > MAX_STRIP_BETAS {
        e.push(
            source,
            format!("{at}.strip_betas"),
            format!("at most {MAX_STRIP_BETAS} flags"),
        );
    }
    for (i, flag) in p.strip_betas.iter().enumerate() {
        // Beta names are like `prompt-caching-2024-07-31`: one token of a
        // comma-separated header value.
        let ok = !flag.is_empty()
            && flag.len() <= 128
            && flag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            e.push(
                source,
                format!("{at}.strip_betas[{i}]"),
                format!("{flag:?} is not a beta flag name (1-128 characters of A-Z a-z 0-9 - _ .)"),
            );
        }
    }
    let default_max_tokens = p.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
    if default_max_tokens == 0 {
        e.push(
            source,
            format!("{at}.default_max_tokens"),
            "must be at least 1",
        );
    }
    let endpoint = parse_base_url(&p.base_url).map_err(|why| {
        e.push(source, format!("{at}.base_url"), why);
    });
    let responses_native = match p.responses.as_deref() {
        Some("native") if kind == Some(ProviderKind::OpenAi) => true,
        Some("native") => {
            e.push(
                source,
                format!("{at}.responses"),
                "only providers of type openai can speak the Responses API natively",
            );
            false
        }
        Some("chat") => false,
        Some(other) => {
            e.push(
                source,
                format!("{at}.responses"),
                format!("{other:?} is not one of \"native\", \"chat\""),
            );
            false
        }
        // vLLM, DeepSeek and most OpenAI-compatible servers have no
        // /responses: only OpenAI's own API is native by default.
        None => {
            kind == Some(ProviderKind::OpenAi)
                && endpoint
                    .as_ref()
                    .is_ok_and(|ep| ep.host.eq_ignore_ascii_case("api.openai.com"))
        }
    };

    let mut keys = Vec::new();
    let raw_keys = p.api_key.iter().chain(p.api_keys.iter());
    for (k, raw) in raw_keys.enumerate() {
        let key_at = format!("{at}.api_keys[{k}]");
        let expanded = if p.literal_keys {
            Ok(raw.clone())
        } else {
            expand_env(raw, env)
        };
        match expanded {
            // `${VAR:-}` explicitly allows an absent key.
            Ok(secret) if secret.trim().is_empty() && raw.contains(":-") => {}
            Ok(secret) if secret.trim().is_empty() => {
                e.push(source, key_at, "API key is empty");
            }
            Ok(secret) => {
                let headers = (
                    http::HeaderValue::from_str(&format!("Bearer {secret}")),
                    http::HeaderValue::from_str(&secret),
                );
                let (bearer, raw) = match headers {
                    (Ok(mut bearer), Ok(mut raw)) if !secret.contains(' ') => {
                        bearer.set_sensitive(true);
                        raw.set_sensitive(true);
                        (bearer, raw)
                    }
                    _ => {
                        e.push(
                            source,
                            key_at,
                            "API key contains spaces or characters not allowed in an HTTP header",
                        );
                        continue;
                    }
                };
                if keys
                    .iter()
                    .any(|existing: &ApiKey| existing.secret == secret)
                {
                    e.push(source, key_at, "duplicate API key in this provider");
                    continue;
                }
                keys.push(ApiKey {
                    bearer,
                    raw,
                    masked: mask_secret(&secret),
                    state: registry.key_state(&p.name, &secret),
                    secret,
                });
            }
            Err(var) => e.push(
                source,
                key_at,
                format!("environment variable {var} is not set"),
            ),
        }
    }

    if keys.is_empty()
        && p.enabled
        && matches!(kind, Some(ProviderKind::Anthropic | ProviderKind::Gemini))
    {
        e.push(
            source,
            format!("{at}.api_keys"),
            format!("an enabled {} provider needs at least one API key", p.kind),
        );
    }
    if p.weight == 0 || p.weight > 1000 {
        e.push(
            source,
            format!("{at}.weight"),
            "must be between 1 and 1000 (use enabled = false to take a provider out)",
        );
    }
    let mut models = Vec::new();
    for (m, pat) in p.models.iter().enumerate() {
        match ModelPattern::parse(pat) {
            Some(pattern) => models.push(pattern),
            None => e.push(
                source,
                format!("{at}.models[{m}]"),
                "model pattern must not be empty",
            ),
        }
    }
    let mut model_map = HashMap::new();
    for (from, to) in &p.model_map {
        if from.trim().is_empty() || to.trim().is_empty() {
            e.push(
                source,
                format!("{at}.model_map"),
                "model names must not be empty",
            );
        } else {
            model_map.insert(from.clone(), to.clone());
        }
    }
    let overrides = compile_overrides(e, source, &format!("{at}.overrides"), &p.overrides);
    let vendor_edits = compile_vendor_edits(e, source, &format!("{at}.overrides"), &p.overrides);
    let t = &p.timeouts;
    let timeouts = Timeouts {
        connect: secs(
            e,
            source,
            &format!("{at}.timeouts.connect_secs"),
            t.connect_secs,
        ),
        first_byte: secs(
            e,
            source,
            &format!("{at}.timeouts.first_byte_secs"),
            t.first_byte_secs,
        ),
        idle: secs(e, source, &format!("{at}.timeouts.idle_secs"), t.idle_secs),
        total: secs(
            e,
            source,
            &format!("{at}.timeouts.total_secs"),
            t.total_secs,
        ),
    };

    if e.0.len() != before {
        return None;
    }
    let vendor = crate::providers::by_name(kind?.as_str())?;
    Some(Provider {
        index,
        name: p.name.clone(),
        kind: kind?,
        vendor,
        vendor_options: VendorOptions {
            // OpenAI-compatible servers decide their own limit.
            default_max_tokens: (vendor.family() != crate::protocol::chat::Family::OpenAi)
                .then_some(default_max_tokens),
            anthropic_version: anthropic_version.clone(),
        },
        chat_path: vendor
            .fixed_chat_path(&endpoint.as_ref().ok()?.base_path)
            .unwrap_or_default(),
        endpoint: endpoint.ok()?,
        keys,
        weight: p.weight,
        enabled: p.enabled,
        models,
        model_map,
        overrides,
        vendor_edits,
        timeouts,
        // Validated above as digits and dashes, so a valid header value.
        anthropic_version_header: http::HeaderValue::from_str(&anthropic_version)
            .unwrap_or(http::HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION)),
        anthropic_version,
        default_max_tokens,
        strip_betas: p.strip_betas.clone(),
        responses_native,
        health: registry.provider(&p.name),
        next_key: AtomicUsize::new(0),
    })
}

/// Does a key have the `${VAR}` form the file's keys expand?
pub fn is_env_reference(raw: &str) -> bool {
    let t = raw.trim();
    t.starts_with("${") && t.ends_with('}')
}

/// `${VAR}` -> the variable's value (error when unset); `${VAR:-fallback}`
/// -> the value, or `fallback` when unset or empty; anything else literal.
fn expand_env(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let trimmed = raw.trim();
    if let Some(expr) = trimmed.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        return match expr.split_once(":-") {
            Some((var, fallback)) => Ok(env(var)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| fallback.to_string())),
            None => env(expr).ok_or_else(|| expr.to_string()),
        };
    }
    Ok(raw.to_string())
}

/// Parse `http(s)://host[:port][/path]`.
pub fn parse_base_url(url: &str) -> Result<Endpoint, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|err| format!("{url:?} is not a URL: {err}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(format!("{url:?} must start with http:// or https://")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "{url:?}: credentials in the URL are not allowed; use api_keys"
        ));
    }
    if uri.query().is_some() {
        return Err(format!(
            "{url:?}: a query string is not allowed in base_url"
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    // `Authority::port()` is `None` both for "no port" and for one that
    // does not fit a u16: `:99999` silently became the scheme's default
    // port. Read the digits ourselves (after an IPv6 literal's `]`).
    let after_host = authority
        .as_str()
        .rsplit_once(']')
        .map_or(authority.as_str(), |(_, rest)| rest);
    let port = match after_host.rsplit_once(':') {
        None => {
            if tls {
                443
            } else {
                80
            }
        }
        Some((_, digits)) => match digits.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "{url:?}: port {digits:?} is not between 1 and 65535"
                ))
            }
        },
    };
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Endpoint {
        tls,
        ip: host.parse().ok(),
        host_header: authority.as_str().to_string(),
        host,
        port,
        base_path,
    })
}

fn render_models(
    known: &BTreeSet<String>,
    aliases: &HashMap<String, String>,
    routes: &HashMap<String, Arc<Route>>,
) -> Bytes {
    let mut data = Vec::new();
    let mut listed = BTreeSet::new();
    for model in known {
        if routes.contains_key(model) && listed.insert(model.clone()) {
            data.push(serde_json::json!({
                "id": model, "object": "model", "created": 0, "owned_by": "llm-orchestrator"
            }));
        }
    }
    let mut alias_names: Vec<_> = aliases.iter().collect();
    alias_names.sort();
    for (alias, target) in alias_names {
        if routes.contains_key(target) && listed.insert(alias.clone()) {
            data.push(serde_json::json!({
                "id": alias, "object": "model", "created": 0, "owned_by": "llm-orchestrator",
                "alias_of": target
            }));
        }
    }
    let body = serde_json::json!({ "object": "list", "data": data });
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_str(text: &str) -> Result<(ProcessSettings, Snapshot), ConfigErrors> {
        let file = super::super::parse_toml(text, "test.toml")?;
        compile(
            &file,
            "test.toml",
            &|v| (v == "KEY_FROM_ENV").then(|| "sk-env-0123456789".into()),
            &HealthRegistry::default(),
        )
    }

    #[test]
    fn embedded_defaults_compile_with_no_providers() {
        let (process, snap) = compile_str("").expect("defaults are valid");
        assert_eq!(process.port, 8000);
        assert_eq!(snap.provider_count(), 0);
        assert_eq!(snap.max_body_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn base_url_ports_outside_the_u16_range_are_refused() {
        for bad in [
            "http://127.0.0.1:99999/v1",
            "http://h:0/v1",
            "https://h:65536",
        ] {
            let err = parse_base_url(bad).err();
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("between 1 and 65535")),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(parse_base_url("http://h:65535").map(|e| e.port), Ok(65535));
        assert_eq!(parse_base_url("http://h/v1").map(|e| e.port), Ok(80));
        assert_eq!(parse_base_url("https://h/v1").map(|e| e.port), Ok(443));
        let errs = compile_str(
            "[[providers]]\nname = \"a\"\ntype = \"openai\"\nbase_url = \"http://127.0.0.1:99999/v1\"\n",
        )
        .expect_err("the file is refused too");
        assert_eq!(errs.0[0].key, "providers[0].base_url");
    }

    #[test]
    fn sections_written_as_arrays_are_refused() {
        for text in [
            "overrides = []",
            "routing = []",
            "[[providers]]\nname = \"a\"\ntype = \"openai\"\nbase_url = \"http://h\"\ntimeouts = []",
            "[[providers]]\nname = \"a\"\ntype = \"openai\"\nbase_url = \"http://h\"\noverrides = []",
        ] {
            let err = super::super::parse_toml(text, "t.toml").expect_err(text);
            assert!(err.to_string().contains("expected a table"), "{text}: {err}");
        }
    }

    #[test]
    fn every_error_is_listed_with_its_key() {
        let errs = compile_str(
            r#"
            [routing]
            max_attempts = 0
            [[providers]]
            name = "a"
            type = "openia"
            base_url = "ftp://x"
            weight = 0
            api_keys = ["${MISSING}"]
            [[providers]]
            name = "a"
            type = "openai"
            base_url = "http://127.0.0.1:1/v1"
            [providers.overrides]
            set = { model = "x" }
            "#,
        )
        .expect_err("invalid config");
        let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
        for want in [
            "routing.max_attempts",
            "providers[0].type",
            "providers[0].base_url",
            "providers[0].api_keys[0]",
            "providers[0].weight",
            "providers[1].name",
            "providers[1].overrides.set.model",
        ] {
            assert!(keys.contains(&want), "missing {want} in {keys:?}");
        }
        assert!(errs.0.iter().all(|e| e.source == "test.toml"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_location() {
        let errs = compile_str("[[providers]]\nname = \"a\"\nwieght = 3\n").expect_err("typo");
        let text = errs.to_string();
        assert!(text.contains("test.toml:3:"), "{text}");
        assert!(text.contains("wieght"), "{text}");
    }

    #[test]
    fn keys_are_masked_and_env_expanded() {
        let (_, snap) = compile_str(
            r#"
            [[providers]]
            name = "a"
            type = "openai"
            base_url = "https://api.example.com/v1/"
            api_keys = ["${KEY_FROM_ENV}", "sk-literal-abcdefgh"]
            "#,
        )
        .expect("valid");
        let p = &snap.providers[0];
        assert_eq!(p.keys[0].secret(), "sk-env-0123456789");
        assert_eq!(p.keys[0].masked, "sk-…6789");
        assert_eq!(p.keys[1].masked, "sk-…efgh");
        assert!(p.endpoint.tls);
        assert_eq!(p.endpoint.port, 443);
        assert_eq!(p.endpoint.base_path, "/v1");
        assert_eq!(mask_secret("short"), "…");
    }

    #[test]
    fn env_fallbacks_and_vendor_key_rules() {
        let (_, snap) = compile_str(
            r#"
            [[providers]]
            name = "a"
            type = "anthropic"
            base_url = "https://api.anthropic.com/v1"
            api_keys = ["${UNSET_VAR:-}", "${UNSET_VAR:-sk-fallback-00001}"]
            "#,
        )
        .expect("valid");
        let keys: Vec<&str> = snap.providers[0].keys.iter().map(|k| k.secret()).collect();
        assert_eq!(keys, vec!["sk-fallback-00001"]);
        assert_eq!(snap.providers[0].anthropic_version, "2023-06-01");

        let errs = compile_str(
            r#"
            [[providers]]
            name = "g"
            type = "gemini"
            base_url = "https://generativelanguage.googleapis.com/v1beta"
            [[providers]]
            name = "o"
            type = "openai"
            base_url = "http://127.0.0.1:9/v1"
            anthropic_version = "2026-10-21"
            "#,
        )
        .expect_err("gemini needs a key; anthropic_version is anthropic-only");
        let keys: Vec<&str> = errs.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["providers[0].api_keys", "providers[1].anthropic_version"]
        );
    }

    #[test]
    fn aliases_and_globs_route() {
        let (_, snap) = compile_str(
            r#"
            [aliases]
            fast = "gpt-4o-mini"
            [[providers]]
            name = "a"
            type = "openai"
            base_url = "http://127.0.0.1:9/v1"
            models = ["gpt-4o*"]
            [[providers]]
            name = "b"
            type = "openai"
            base_url = "http://127.0.0.1:9/v1"
            models = ["llama-3"]
            model_map = { "gpt-4o-mini" = "llama-3-8b" }
            "#,
        )
        .expect("valid");
        let r = snap.route("fast").expect("alias routes");
        assert_eq!(r.model, "gpt-4o-mini");
        assert_eq!(r.candidates.len(), 2);
        assert_eq!(
            snap.providers[1].upstream_model("gpt-4o-mini"),
            "llama-3-8b"
        );
        assert_eq!(snap.route("gpt-4o-2024").expect("glob").candidates, vec![0]);
        assert!(snap.route("claude").is_none());
        let models: serde_json::Value = serde_json::from_slice(&snap.models_body).expect("json");
        let ids: Vec<&str> = models["data"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids, vec!["gpt-4o-mini", "llama-3", "fast"]);
    }
}
