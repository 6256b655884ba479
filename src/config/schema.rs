//! The external configuration schema: what operators write in TOML.
//!
//! These types mirror the file one to one and carry no invariants; they are
//! turned into the validated [`crate::config::Snapshot`] by `compile`. Unknown
//! keys are rejected so a typo (`wieght = 3`) is an error, not a silent default.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    #[serde(deserialize_with = "table")]
    pub app: AppSection,
    #[serde(deserialize_with = "table")]
    pub server: ServerSection,
    #[serde(deserialize_with = "table")]
    pub admin: AdminSection,
    #[serde(deserialize_with = "table")]
    pub log: LogSection,
    #[serde(deserialize_with = "table")]
    pub database: DatabaseSection,
    #[serde(deserialize_with = "table")]
    pub redis: RedisSection,
    #[serde(deserialize_with = "table")]
    pub health: HealthSection,
    #[serde(deserialize_with = "table")]
    pub routing: RoutingSection,
    /// Global model aliases: client-facing name -> model name the providers serve.
    pub aliases: BTreeMap<String, String>,
    /// Parameter overrides applied to every upstream request body.
    #[serde(deserialize_with = "table")]
    pub overrides: OverridesSection,
    pub providers: Vec<ProviderSection>,
    /// Prices per model glob (USD per million tokens), checked before the
    /// built-in table (see `crate::ledger::prices`).
    pub prices: Vec<crate::ledger::PriceSection>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppSection {
    pub name: String,
    /// `development` (readable logs) or `production`.
    pub env: String,
}

impl Default for AppSection {
    fn default() -> Self {
        AppSection {
            name: "llm-orchestrator".into(),
            env: "development".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub host: String,
    /// 0 picks a free port (tests); the bound address is printed on stdout.
    pub port: u16,
    /// Bearer token clients must present. Prefer the `AUTH_TOKEN` variable.
    pub auth_token: Option<String>,
    /// Worker threads of the data plane; 0 = one per CPU.
    pub threads: usize,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish on shutdown.
    pub grace_period_secs: u64,
    /// Unix socket through which a new binary takes the listening sockets
    /// over from the running one (`--upgrade`, then SIGQUIT to the old one).
    pub upgrade_sock: String,
    /// Open client connections beyond which new ones get a 503 and are
    /// closed; 0 = automatic (half the process's file-descriptor limit, at
    /// most 65536).
    pub max_connections: usize,
    /// Seconds a client gets to send a whole request head (request line and
    /// headers); slower ones get a 408.
    pub head_timeout_secs: f64,
    /// Longest pause (seconds) between two pieces of a request body before
    /// the request gets a 408.
    pub body_timeout_secs: f64,
    /// Seconds an idle kept-alive connection waits for its next request.
    pub keepalive_timeout_secs: f64,
    /// Largest request head (request line and headers) in bytes; larger
    /// ones get 414 (request line) or 431 (headers).
    pub max_head_bytes: usize,
    /// Memory all buffered upstream answers (non-streamed answers that are
    /// translated whole) may take together; beyond it requests get a 503.
    pub max_buffered_response_bytes: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            // Loopback unless configured otherwise: serving other hosts
            // needs AUTH_TOKEN (the gateway refuses to start on a
            // non-loopback address without one; see `--allow-no-auth`).
            host: "127.0.0.1".into(),
            port: 8000,
            auth_token: None,
            threads: 0,
            max_body_bytes: 16 * 1024 * 1024,
            grace_period_secs: 5,
            upgrade_sock: "/tmp/llm-orchestrator-upgrade.sock".into(),
            max_connections: 0,
            head_timeout_secs: 10.0,
            body_timeout_secs: 30.0,
            keepalive_timeout_secs: 60.0,
            max_head_bytes: 64 * 1024,
            max_buffered_response_bytes: 256 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Address of the admin API's own listener; empty = no own listener.
    pub listen: String,
    /// Also serve `/api/*` and `/docs` on the main port (as the original did).
    pub expose_on_main: bool,
    /// Bearer token for the admin API; unset = the AUTH_TOKEN.
    pub token: Option<String>,
    /// Request logs older than this many days are deleted (0 = keep).
    pub log_retention_days: u32,
    /// At most this many request-log rows are kept, newest first (0 = no limit).
    pub log_retention_rows: u64,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            listen: "127.0.0.1:8001".into(),
            expose_on_main: true,
            token: None,
            log_retention_days: 30,
            log_retention_rows: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `trace`, `debug`, `info`, `warn`, `error` (case-insensitive), or a
    /// `tracing` filter directive such as `info,pingora=warn`.
    pub level: String,
    /// Log file path; empty = standard error. With rotation the date is
    /// put before the extension: `logs/gateway.log` → `logs/gateway.2026-11-26.log`.
    pub file: String,
    /// `daily` (default), `hourly` or `never`.
    pub rotation: String,
    /// Rotated files kept (oldest deleted first); 0 = keep all.
    pub max_files: usize,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            file: String::new(),
            rotation: "daily".into(),
            max_files: 14,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite`, `mysql` or `postgres`; must agree with the URL's scheme.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            kind: "sqlite".into(),
            url: "sqlite:///./data/llm_orchestrator.db".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSection {
    pub enabled: bool,
    pub url: String,
}

impl Default for RedisSection {
    fn default() -> Self {
        RedisSection {
            enabled: false,
            url: "redis://localhost:6379/0".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSection {
    /// Active checks on a timer (passive health is always on).
    pub enabled: bool,
    /// Seconds between active checks.
    pub interval_secs: f64,
    /// Consecutive errors that make a provider unhealthy.
    pub max_errors: u32,
    /// Hours before an unhealthy provider gets a trial request.
    pub retry_hours: f64,
    /// The same in seconds; when set it wins over `retry_hours`.
    pub retry_secs: Option<f64>,
    /// Consecutive successes that make a degraded provider healthy again.
    pub recover_successes: u32,
    /// Share of its weight a degraded provider keeps (0 to 1).
    pub degraded_weight: f64,
    /// Active probe: `models` (GET the vendor's model list: free),
    /// `connect` (TCP/TLS connect only), or `completion` (a 1-token chat
    /// request: costs a little, proves the model answers).
    pub probe: String,
    /// Timeout of one probe.
    pub probe_timeout_secs: f64,
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            enabled: true,
            interval_secs: 300.0,
            max_errors: 5,
            retry_hours: 1.0,
            retry_secs: None,
            recover_successes: 3,
            degraded_weight: 0.5,
            probe: "models".into(),
            probe_timeout_secs: 10.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSection {
    /// Upstream attempts per request, failovers included.
    pub max_attempts: u32,
    /// Deadline for a whole request: every attempt and the full response.
    pub request_timeout_secs: f64,
    /// Key cooldown after a 429 that carries no usable `Retry-After`.
    pub rate_limit_cooldown_secs: f64,
    /// Upper bound on a `Retry-After` the gateway honours.
    pub max_retry_after_secs: f64,
    /// Key cooldown after 401/402/403 (the key is likely revoked or unpaid).
    pub auth_failure_cooldown_secs: f64,
}

impl Default for RoutingSection {
    fn default() -> Self {
        RoutingSection {
            max_attempts: 4,
            request_timeout_secs: 600.0,
            rate_limit_cooldown_secs: 30.0,
            max_retry_after_secs: 3600.0,
            auth_failure_cooldown_secs: 600.0,
        }
    }
}

/// Overrides of canonical request fields (`temperature`, `max_tokens`, …),
/// applied global-first then per provider, before translation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OverridesSection {
    /// Fields forced to a value (replacing what the client sent).
    #[schema(value_type = Object)]
    pub set: BTreeMap<String, toml::Value>,
    /// Fields given a value only when the client sent none.
    #[schema(value_type = Object)]
    pub default: BTreeMap<String, toml::Value>,
    /// Fields removed before the request leaves the gateway.
    pub drop: Vec<String>,
    /// Per provider only: edits of the vendor's own body by dotted path
    /// (`generationConfig.thinkingConfig.thinkingBudget`), applied after
    /// translation, for fields only that vendor has.
    #[serde(default, skip_serializing_if = "VendorEditsSection::is_empty")]
    pub vendor: VendorEditsSection,
}

/// `[providers.overrides.vendor]`: `set` / `default` / `drop` by dotted path
/// in the vendor's request body.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VendorEditsSection {
    #[schema(value_type = Object)]
    pub set: BTreeMap<String, toml::Value>,
    #[schema(value_type = Object)]
    pub default: BTreeMap<String, toml::Value>,
    pub drop: Vec<String>,
}

impl VendorEditsSection {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.default.is_empty() && self.drop.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    #[schema(min_length = 1)]
    pub name: String,
    /// `openai`, `anthropic` or `gemini`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(openai|anthropic|gemini)$")]
    pub kind: String,
    #[schema(pattern = "^https?://[^/]")]
    pub base_url: String,
    /// One key; merged with `api_keys`.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Several keys; `${VAR}` is replaced by the environment variable VAR.
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// Keys kept but not used (disabled through the admin API).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_api_keys: Vec<String>,
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000)]
    pub weight: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Served models: exact names or globs (`gpt-4o*`); empty = every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Client model name -> upstream model name (keys are served too).
    #[serde(default)]
    pub model_map: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "table")]
    pub overrides: OverridesSection,
    #[serde(default, deserialize_with = "table")]
    pub timeouts: TimeoutsSection,
    /// `anthropic-version` sent to Anthropic providers. `2023-06-01` (the
    /// default) accepts temperature/top_p; with `2026-10-21` the gateway
    /// drops them from translated requests because that version rejects them.
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// `max_tokens` sent when a client omits it and the vendor requires it
    /// (Anthropic), or as Gemini's `maxOutputTokens` default.
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// `anthropic-beta` flags removed from what a client sent before it
    /// goes to this (Anthropic) provider, for upstreams that reject them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strip_betas: Vec<String>,
    /// How Responses API clients (`/v1/responses`) are served: `"native"`
    /// passes their body through to `{base_url}/responses`, `"chat"`
    /// translates to the vendor's chat API. Default: native for type
    /// `openai` at `api.openai.com`, chat otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<String>,
    /// The keys are used exactly as written, `${VAR}` included: set for
    /// providers managed through the admin API (the environment is expanded
    /// only for the file's own providers). Not part of the file format.
    #[serde(skip)]
    pub literal_keys: bool,
}

/// A section that must be written as a table (object). Serde would also
/// build these structs from an array — `timeouts = []` silently became
/// the defaults — so arrays and scalars are refused here.
fn table<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct TableOnly<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for TableOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a table (an object with named keys)")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(TableOnly(std::marker::PhantomData))
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsSection {
    /// TCP (and TLS) connection establishment.
    pub connect_secs: f64,
    /// From the request being sent to the first response byte.
    pub first_byte_secs: f64,
    /// Longest silence between two body reads (slow reasoning streams).
    pub idle_secs: f64,
    /// Whole attempt, response body included.
    pub total_secs: f64,
}

impl Default for TimeoutsSection {
    fn default() -> Self {
        TimeoutsSection {
            connect_secs: 10.0,
            first_byte_secs: 120.0,
            idle_secs: 120.0,
            total_secs: 600.0,
        }
    }
}
