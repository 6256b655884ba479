//! Prometheus metrics, in the text exposition format, without a metrics
//! crate: the data plane only touches atomics behind a read lock (a write
//! lock is taken once per new label set), and everything that can be read
//! from state that already exists — health, keys, config version, dropped
//! log rows, process CPU and memory — is read at scrape time instead of
//! being counted on the hot path.

use crate::config::Snapshot;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds (seconds) shared by the latency and first-byte histograms:
/// from a cached local answer to a long reasoning stream.
const BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Label sets per family beyond which new models are counted as `other`:
/// the model name comes from clients, and an unbounded label set would
/// grow memory and break the scraper.
const MAX_SERIES: usize = 5_000;

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Counters per (client API, provider, model, status).
#[derive(Default)]
struct RequestSeries {
    requests: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    cached_tokens: AtomicU64,
}

/// The ledger's counters per (provider, model): tokens by billed class and
/// cost. Models are those a provider answered for (bounded by the config,
/// and by [`MAX_SERIES`] for glob providers).
#[derive(Default)]
struct LedgerSeries {
    input: AtomicU64,
    cached_read: AtomicU64,
    cache_write_5m: AtomicU64,
    cache_write_1h: AtomicU64,
    output: AtomicU64,
    reasoning: AtomicU64,
    cost_micros: AtomicU64,
}

/// Histograms per (client API, provider, stream).
#[derive(Default)]
struct LatencySeries {
    duration: Histogram,
    ttfb: Histogram,
}

/// A map of label sets to series that only takes the write lock to add one.
///
/// Series are named by their rendered label string (`series`, what
/// `/metrics` prints). The data plane finds its series by the label
/// *values* instead (`by_values`: a hash of the values, then a compare), so
/// a request formats and escapes nothing once its series exists; the label
/// string is built only the first time a combination is seen.
struct Family<T> {
    series: RwLock<HashMap<String, Arc<T>>>,
    by_values: RwLock<HashMap<u64, Vec<ByValues<T>>, foldhash::fast::RandomState>>,
    /// Per-process random seed: label values come from clients (model
    /// names), so the hash must not be predictable.
    hasher: foldhash::fast::RandomState,
}

/// One label combination as the data plane names it: text values and one
/// number (a status, a flag).
struct ByValues<T> {
    texts: Box<[Box<str>]>,
    number: u64,
    series: Arc<T>,
}

impl<T: Default> Family<T> {
    fn new() -> Self {
        Family {
            series: RwLock::new(HashMap::new()),
            by_values: RwLock::new(HashMap::default()),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The series for these label values; `labels` renders them (called
    /// only for a combination not seen before), `overflow` is the label set
    /// used past [`MAX_SERIES`] (see [`Family::get`]).
    fn get_by(
        &self,
        texts: &[&str],
        number: u64,
        labels: impl FnOnce() -> String,
        overflow: impl FnOnce() -> String,
    ) -> Option<Arc<T>> {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = self.hasher.build_hasher();
        texts.hash(&mut h);
        number.hash(&mut h);
        let hash = h.finish();
        let same = |e: &ByValues<T>| {
            e.number == number
                && e.texts.len() == texts.len()
                && e.texts.iter().zip(texts).all(|(a, b)| &**a == *b)
        };
        if let Ok(map) = self.by_values.read() {
            if let Some(e) = map.get(&hash).and_then(|v| v.iter().find(|e| same(e))) {
                return Some(e.series.clone());
            }
        }
        let series = self.get(labels(), overflow)?;
        let mut map = self.by_values.write().ok()?;
        // Bounded like the series themselves: past the cap (client-chosen
        // model names) a combination is looked up by its label string.
        if map.len() < 2 * MAX_SERIES {
            let entries = map.entry(hash).or_default();
            if !entries.iter().any(same) {
                entries.push(ByValues {
                    texts: texts.iter().map(|t| Box::<str>::from(*t)).collect(),
                    number,
                    series: series.clone(),
                });
            }
        }
        Some(series)
    }

    fn get(&self, labels: String, overflow: impl FnOnce() -> String) -> Option<Arc<T>> {
        if let Ok(map) = self.series.read() {
            if let Some(s) = map.get(&labels) {
                return Some(s.clone());
            }
        }
        let mut map = self.series.write().ok()?;
        let labels = if map.len() >= MAX_SERIES && !map.contains_key(&labels) {
            overflow()
        } else {
            labels
        };
        Some(map.entry(labels).or_default().clone())
    }

    fn snapshot(&self) -> Vec<(String, Arc<T>)> {
        let mut v: Vec<_> = self
            .series
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// The request-log writer's counters.
pub struct LogCounts {
    pub dropped: u64,
    pub written: u64,
    pub batches: u64,
}

/// One finished client request, as the data plane saw it.
pub struct Finished<'a> {
    pub api: &'a str,
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
    pub status: u16,
    pub stream: bool,
    pub attempts: u32,
    pub latency: Duration,
    pub ttfb: Option<Duration>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
}

/// The client edge (connections, refused request heads) and the memory of
/// buffered answers: atomics shared with the connection wrapper
/// (`proxy::edge`) and the relay.
#[derive(Default)]
pub struct EdgeStats {
    /// Open client connections of the data plane.
    pub open: AtomicU64,
    /// Connections refused over `server.max_connections`.
    pub rejected: AtomicU64,
    pub head_timeouts: AtomicU64,
    pub heads_too_large: AtomicU64,
    pub too_many_headers: AtomicU64,
    pub malformed: AtomicU64,
    pub body_timeouts: AtomicU64,
    /// Bytes of upstream answers held for translation right now.
    pub buffered: AtomicU64,
    /// `server.max_buffered_response_bytes`.
    pub buffer_limit: AtomicU64,
    /// Requests refused because the buffer budget was spent.
    pub buffer_rejected: AtomicU64,
}

impl EdgeStats {
    fn render(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        family(
            out,
            "llm_client_connections",
            "gauge",
            "Open client connections of the data plane.",
        );
        let _ = writeln!(out, "llm_client_connections {}", get(&self.open));
        family(
            out,
            "llm_client_connections_rejected_total",
            "counter",
            "Client connections answered 503 and closed because server.max_connections were open.",
        );
        let _ = writeln!(
            out,
            "llm_client_connections_rejected_total {}",
            get(&self.rejected)
        );
        family(
            out,
            "llm_client_requests_rejected_total",
            "counter",
            "Requests refused before routing, by reason (head_timeout, body_timeout, head_too_large, too_many_headers, malformed).",
        );
        for (reason, v) in [
            ("head_timeout", &self.head_timeouts),
            ("body_timeout", &self.body_timeouts),
            ("head_too_large", &self.heads_too_large),
            ("too_many_headers", &self.too_many_headers),
            ("malformed", &self.malformed),
        ] {
            let _ = writeln!(
                out,
                "llm_client_requests_rejected_total{{reason=\"{reason}\"}} {}",
                get(v)
            );
        }
        family(
            out,
            "llm_buffered_response_bytes",
            "gauge",
            "Bytes of upstream answers held for translation right now.",
        );
        let _ = writeln!(out, "llm_buffered_response_bytes {}", get(&self.buffered));
        family(
            out,
            "llm_buffered_response_limit_bytes",
            "gauge",
            "server.max_buffered_response_bytes.",
        );
        let _ = writeln!(
            out,
            "llm_buffered_response_limit_bytes {}",
            get(&self.buffer_limit)
        );
        family(
            out,
            "llm_buffered_responses_rejected_total",
            "counter",
            "Requests answered 503 because buffered answers had spent server.max_buffered_response_bytes.",
        );
        let _ = writeln!(
            out,
            "llm_buffered_responses_rejected_total {}",
            get(&self.buffer_rejected)
        );
    }
}

/// Client-key limits (see [`crate::keys::limits`]).
#[derive(Default)]
pub struct LimitStats {
    pub rpm: AtomicU64,
    pub tpm: AtomicU64,
    pub concurrency: AtomicU64,
    /// 1 while Redis is configured but not answering, so each instance
    /// enforces its share of every limit on its own.
    pub fallback: AtomicU64,
}

impl LimitStats {
    fn render(&self, out: &mut String) {
        family(
            out,
            "llm_limited_requests_total",
            "counter",
            "Requests answered 429 because a client key's own limit (rpm, tpm, concurrency) was reached.",
        );
        for (limit, v) in [
            ("rpm", &self.rpm),
            ("tpm", &self.tpm),
            ("concurrency", &self.concurrency),
        ] {
            let _ = writeln!(
                out,
                "llm_limited_requests_total{{limit=\"{limit}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        family(
            out,
            "llm_limit_fallback",
            "gauge",
            "1 while Redis is configured but not answering: each instance enforces limit / instances on its own.",
        );
        let _ = writeln!(
            out,
            "llm_limit_fallback {}",
            self.fallback.load(Ordering::Relaxed)
        );
    }
}

pub struct Metrics {
    requests: Family<RequestSeries>,
    latency: Family<LatencySeries>,
    attempts: Family<AtomicU64>,
    ledger: Family<LedgerSeries>,
    /// Requests answered after more than one attempt.
    failovers: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_rejected: AtomicU64,
    started: std::time::SystemTime,
    /// Client connections, refused heads, buffered answers.
    pub edge: Arc<EdgeStats>,
    /// Client-key limits: refusals and the Redis fallback.
    pub limits: Arc<LimitStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::new(),
            latency: Family::new(),
            attempts: Family::new(),
            ledger: Family::new(),
            failovers: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_rejected: AtomicU64::new(0),
            started: std::time::SystemTime::now(),
            edge: Arc::new(EdgeStats {
                buffer_limit: AtomicU64::new(
                    crate::config::ServerSection::default().max_buffered_response_bytes as u64,
                ),
                ..EdgeStats::default()
            }),
            limits: Arc::default(),
        }
    }
}

impl Metrics {
    /// Called once per client request (chat or messages), after the answer.
    pub fn request(&self, r: &Finished<'_>) {
        let provider = r.provider.unwrap_or("");
        // An unroutable request names a model no provider serves; keeping
        // it as a label would let any client create series at will.
        let model = match r.provider {
            Some(_) => r.model.unwrap_or(""),
            None => "",
        };
        let labels = || {
            format!(
                "api=\"{}\",provider=\"{}\",model=\"{}\",status=\"{}\"",
                r.api,
                escape(provider),
                escape(model),
                r.status
            )
        };
        let overflow = || {
            format!(
                "api=\"{}\",provider=\"{}\",model=\"other\",status=\"{}\"",
                r.api,
                escape(provider),
                r.status
            )
        };
        let values = [r.api, provider, model];
        if let Some(s) = self
            .requests
            .get_by(&values, r.status.into(), labels, overflow)
        {
            s.requests.fetch_add(1, Ordering::Relaxed);
            s.prompt_tokens
                .fetch_add(r.prompt_tokens, Ordering::Relaxed);
            s.completion_tokens
                .fetch_add(r.completion_tokens, Ordering::Relaxed);
            s.cached_tokens
                .fetch_add(r.cached_tokens, Ordering::Relaxed);
        }
        let labels = || {
            format!(
                "api=\"{}\",provider=\"{}\",stream=\"{}\"",
                r.api,
                escape(provider),
                r.stream
            )
        };
        if let Some(s) =
            self.latency
                .get_by(&[r.api, provider], r.stream.into(), labels, String::new)
        {
            s.duration.observe(r.latency);
            if let Some(t) = r.ttfb {
                s.ttfb.observe(t);
            }
        }
        if r.attempts > 1 {
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A priced request's tokens by billed class and its cost (see
    /// `crate::ledger`).
    pub fn ledger(
        &self,
        provider: &str,
        model: &str,
        c: &crate::ledger::prices::Classes,
        cost_micros: u64,
    ) {
        // Found by label values like the other families: nothing is
        // formatted once the (provider, model) series exists.
        let labels = || {
            format!(
                "provider=\"{}\",model=\"{}\"",
                escape(provider),
                escape(model)
            )
        };
        let overflow = || format!("provider=\"{}\",model=\"other\"", escape(provider));
        if let Some(s) = self.ledger.get_by(&[provider, model], 0, labels, overflow) {
            for (counter, v) in [
                (&s.input, c.input),
                (&s.cached_read, c.cached_read),
                (&s.cache_write_5m, c.cache_write_5m),
                (&s.cache_write_1h, c.cache_write_1h),
                (&s.output, c.output),
                (&s.reasoning, c.reasoning),
                (&s.cost_micros, cost_micros),
            ] {
                if v > 0 {
                    counter.fetch_add(v, Ordering::Relaxed);
                }
            }
        }
    }

    /// One upstream attempt and how it ended (`ok`, `rate_limited`,
    /// `auth_failed`, `not_permitted`, `invalid_answer`, `status_4xx`,
    /// `status_5xx`, `connect`, `timeout`).
    pub fn attempt(&self, provider: &str, result: &'static str) {
        let labels = || format!("provider=\"{}\",result=\"{result}\"", escape(provider));
        if let Some(c) = self
            .attempts
            .get_by(&[provider, result], 0, labels, String::new)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reload(&self, accepted: bool) {
        if accepted {
            &self.reloads_ok
        } else {
            &self.reloads_rejected
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// `llm_billed_tokens_total` and `llm_cost_usd_total`.
    fn render_ledger(&self, out: &mut String) {
        let ledger = self.ledger.snapshot();
        family(
            out,
            "llm_billed_tokens_total",
            "counter",
            "Tokens by provider, model and billed class (input = uncached prompt, cached_read, cache_write_5m, cache_write_1h, output = completion without reasoning, reasoning); each token in one class.",
        );
        for (l, s) in &ledger {
            for (class, v) in [
                ("input", &s.input),
                ("cached_read", &s.cached_read),
                ("cache_write_5m", &s.cache_write_5m),
                ("cache_write_1h", &s.cache_write_1h),
                ("output", &s.output),
                ("reasoning", &s.reasoning),
            ] {
                let v = v.load(Ordering::Relaxed);
                if v > 0 {
                    let _ = writeln!(out, "llm_billed_tokens_total{{{l},class=\"{class}\"}} {v}");
                }
            }
        }
        family(
            out,
            "llm_cost_usd_total",
            "counter",
            "Cost by provider and model in US dollars, by the price table (counted in micro-dollars).",
        );
        for (l, s) in &ledger {
            let micros = s.cost_micros.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "llm_cost_usd_total{{{l}}} {}.{:06}",
                micros / 1_000_000,
                micros % 1_000_000
            );
        }
    }

    /// The whole exposition, for `GET /metrics`.
    pub fn render(&self, snap: &Snapshot, log: LogCounts) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let requests = self.requests.snapshot();
        family(&mut out, "llm_requests_total", "counter", "Client requests by client API, provider (empty when none was reached), requested model and status.");
        for (l, s) in &requests {
            let _ = writeln!(
                out,
                "llm_requests_total{{{l}}} {}",
                s.requests.load(Ordering::Relaxed)
            );
        }
        family(
            &mut out,
            "llm_tokens_total",
            "counter",
            "Tokens reported by the vendors, by direction (prompt, completion, cached).",
        );
        for (l, s) in &requests {
            for (dir, v) in [
                ("prompt", &s.prompt_tokens),
                ("completion", &s.completion_tokens),
                ("cached", &s.cached_tokens),
            ] {
                let v = v.load(Ordering::Relaxed);
                if v > 0 {
                    let _ = writeln!(out, "llm_tokens_total{{{l},direction=\"{dir}\"}} {v}");
                }
            }
        }
        let latency = self.latency.snapshot();
        family(
            &mut out,
            "llm_request_duration_seconds",
            "histogram",
            "Whole request time as the client sees it (streams: until the last byte).",
        );
        for (l, s) in &latency {
            s.duration
                .render(&mut out, "llm_request_duration_seconds", l);
        }
        family(
            &mut out,
            "llm_time_to_first_byte_seconds",
            "histogram",
            "Time until the first answer byte went to the client (for streams: the first token).",
        );
        for (l, s) in &latency {
            s.ttfb.render(&mut out, "llm_time_to_first_byte_seconds", l);
        }
        family(
            &mut out,
            "llm_upstream_attempts_total",
            "counter",
            "Upstream attempts by provider and result.",
        );
        for (l, c) in self.attempts.snapshot() {
            let _ = writeln!(
                out,
                "llm_upstream_attempts_total{{{l}}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        family(
            &mut out,
            "llm_failovers_total",
            "counter",
            "Client requests that needed more than one upstream attempt.",
        );
        let _ = writeln!(
            out,
            "llm_failovers_total {}",
            self.failovers.load(Ordering::Relaxed)
        );

        self.render_ledger(&mut out);

        let now = crate::health::now_ms();
        family(&mut out, "llm_provider_health", "gauge", "1 for the provider's current health state (healthy, degraded, unhealthy), 0 for the others.");
        for p in snap.providers.iter() {
            let current = p.health.state();
            for s in [
                crate::health::HealthState::Healthy,
                crate::health::HealthState::Degraded,
                crate::health::HealthState::Unhealthy,
            ] {
                let _ = writeln!(
                    out,
                    "llm_provider_health{{provider=\"{}\",state=\"{}\"}} {}",
                    escape(&p.name),
                    s.as_str(),
                    u8::from(s == current)
                );
            }
        }
        family(
            &mut out,
            "llm_provider_enabled",
            "gauge",
            "1 when the provider is enabled in the configuration.",
        );
        for p in snap.providers.iter() {
            let _ = writeln!(
                out,
                "llm_provider_enabled{{provider=\"{}\"}} {}",
                escape(&p.name),
                u8::from(p.enabled)
            );
        }
        family(&mut out, "llm_key_available", "gauge", "1 when a vendor key is usable, 0 while it cools down; key is the masked form, reason why it is not usable.");
        for p in snap.providers.iter() {
            for k in &p.keys {
                let reason = match k.state.reason(now) {
                    crate::health::CooldownReason::None => "available",
                    crate::health::CooldownReason::RateLimited => "rate_limited",
                    crate::health::CooldownReason::AuthFailed => "auth_failed",
                    crate::health::CooldownReason::QuotaExhausted => "quota_exhausted",
                };
                let _ = writeln!(
                    out,
                    "llm_key_available{{provider=\"{}\",key=\"{}\",reason=\"{reason}\"}} {}",
                    escape(&p.name),
                    escape(&k.masked),
                    u8::from(k.state.available(now))
                );
            }
        }
        family(
            &mut out,
            "llm_config_version",
            "gauge",
            "Version of the running configuration snapshot.",
        );
        let _ = writeln!(out, "llm_config_version {}", snap.version);
        family(
            &mut out,
            "llm_config_reloads_total",
            "counter",
            "Configuration changes (file, admin API, peers) by result.",
        );
        let _ = writeln!(
            out,
            "llm_config_reloads_total{{result=\"accepted\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "llm_config_reloads_total{{result=\"rejected\"}} {}",
            self.reloads_rejected.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "llm_log_rows_dropped_total",
            "counter",
            "Request-log rows dropped: the writer fell behind (the data plane never waits) or the database refused the write (disk full, locked).",
        );
        let _ = writeln!(out, "llm_log_rows_dropped_total {}", log.dropped);
        family(
            &mut out,
            "llm_log_rows_written_total",
            "counter",
            "Request-log rows committed to SQLite.",
        );
        let _ = writeln!(out, "llm_log_rows_written_total {}", log.written);
        family(
            &mut out,
            "llm_log_batches_total",
            "counter",
            "Request-log write transactions (rows are written in batches).",
        );
        let _ = writeln!(out, "llm_log_batches_total {}", log.batches);
        self.edge.render(&mut out);
        self.limits.render(&mut out);
        family(
            &mut out,
            "llm_build_info",
            "gauge",
            "Always 1; the version label says which build runs.",
        );
        let _ = writeln!(
            out,
            "llm_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        process(&mut out, self.started);
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Label values may hold quotes, backslashes or newlines (provider names
/// and models come from config and clients).
fn escape(v: &str) -> String {
    if !v.contains(['"', '\\', '\n']) {
        return v.to_string();
    }
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The usual `process_*` metrics, from `/proc/self` (Linux only; elsewhere
/// only the start time).
fn process(out: &mut String, started: std::time::SystemTime) {
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name, which is in parentheses and may
        // contain spaces.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 (1-based) → 11, 12 here.
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // Linux reports in USER_HZ, which is 100 on every platform we run on.
            let cpu = (ticks(11) + ticks(12)) / 100.0;
            family(
                out,
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time.",
            );
            let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let Some(rss) = kib("VmRSS:") {
            family(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory.",
            );
            let _ = writeln!(out, "process_resident_memory_bytes {}", rss * 1024);
        }
        if let Some(t) = kib("Threads:") {
            family(out, "process_threads", "gauge", "OS threads.");
            let _ = writeln!(out, "process_threads {t}");
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(out, "process_open_fds", "gauge", "Open file descriptors.");
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
    if let Ok(d) = started.duration_since(std::time::UNIX_EPOCH) {
        family(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time, Unix seconds.",
        );
        let _ = writeln!(out, "process_start_time_seconds {}", d.as_secs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(1000));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.05\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"300\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn series_found_by_values_are_the_rendered_ones() {
        let m = Metrics::default();
        let finished = |model: &'static str, status: u16| Finished {
            api: "openai",
            provider: Some("p\"1"),
            model: Some(model),
            status,
            stream: true,
            attempts: 1,
            latency: Duration::from_millis(1),
            ttfb: None,
            prompt_tokens: 2,
            completion_tokens: 3,
            cached_tokens: 0,
        };
        for _ in 0..3 {
            m.request(&finished("m", 200));
        }
        // Same texts, another number; another text, same number.
        m.request(&finished("m", 500));
        m.request(&finished("n", 200));
        m.attempt("p\"1", "ok");
        m.attempt("p\"1", "ok");
        let series: Vec<(String, u64)> = m
            .requests
            .snapshot()
            .into_iter()
            .map(|(l, s)| (l, s.requests.load(Ordering::Relaxed)))
            .collect();
        assert_eq!(
            series,
            [
                (
                    r#"api="openai",provider="p\"1",model="m",status="200""#.to_string(),
                    3
                ),
                (
                    r#"api="openai",provider="p\"1",model="m",status="500""#.to_string(),
                    1
                ),
                (
                    r#"api="openai",provider="p\"1",model="n",status="200""#.to_string(),
                    1
                ),
            ]
        );
        let latency = m.latency.snapshot();
        assert_eq!(latency.len(), 1);
        assert_eq!(
            latency[0].0,
            r#"api="openai",provider="p\"1",stream="true""#
        );
        assert_eq!(latency[0].1.duration.count.load(Ordering::Relaxed), 5);
        let attempts = m.attempts.snapshot();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].0, r#"provider="p\"1",result="ok""#);
        assert_eq!(attempts[0].1.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn model_labels_are_capped() {
        let m = Metrics::default();
        for i in 0..MAX_SERIES + 10 {
            m.request(&Finished {
                api: "openai",
                provider: Some("p"),
                model: Some(&format!("m{i}")),
                status: 200,
                stream: false,
                attempts: 1,
                latency: Duration::from_millis(1),
                ttfb: None,
                prompt_tokens: 1,
                completion_tokens: 1,
                cached_tokens: 0,
            });
        }
        let series = m.requests.snapshot();
        assert_eq!(series.len(), MAX_SERIES + 1);
        let other = series
            .iter()
            .find(|(l, _)| l.contains("model=\"other\""))
            .map(|(_, s)| s.requests.load(Ordering::Relaxed));
        assert_eq!(other, Some(10));
    }
}
