//! Active health checks: a Pingora background service that probes every
//! distinct vendor endpoint each `health.interval_secs`, through
//! pingora-load-balancing's `HealthCheck` machinery, and feeds the results
//! into the same state machines as passive health.
//!
//! Targets are rebuilt from the current snapshot on every pass, so config
//! changes apply at the next pass. Two providers on the same endpoint with
//! the same key are probed once. Besides one probe per provider (with a
//! usable key), every key disabled after a 401/403 is re-checked: a 2xx puts
//! it back in rotation at once.

use crate::config::{ProbeKind, Provider, Snapshot};
use crate::control::live::Live;
use crate::health::{now_ms, CooldownReason};
use crate::protocol::chat::{self, Family, Part, Role, Text, Turn};
use crate::proxy::upstream::{ProbeRequest, ProbeResult};
use async_trait::async_trait;
use bytes::Bytes;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora_load_balancing::discovery::Static;
use pingora_load_balancing::health_check::HealthCheck;
use pingora_load_balancing::{Backend, Backends, Extensions};
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Sends one probe (the data plane implements it with its connection pool).
#[async_trait]
pub trait Prober: Send + Sync {
    async fn probe(&self, req: ProbeRequest<'_>) -> (ProbeResult, Bytes);
}

pub struct HealthChecker {
    state: Arc<Live>,
    prober: Arc<dyn Prober>,
}

impl HealthChecker {
    pub fn new(state: Arc<Live>, prober: Arc<dyn Prober>) -> Self {
        HealthChecker { state, prober }
    }

    /// One pass over every target of the current snapshot.
    pub async fn run_once(&self) {
        let snap = self.state.snapshot.load_full();
        let targets = targets(&snap);
        if targets.is_empty() {
            return;
        }
        // Synthetic backends whose "address" is the target index: the
        // balancer crate only runs the checks, our probe does the I/O.
        let set: BTreeSet<Backend> = (0..targets.len())
            .map(|i| Backend {
                addr: PingoraAddr::Inet(SocketAddr::from((Ipv4Addr::UNSPECIFIED, i as u16))),
                weight: 1,
                ext: Extensions::new(),
            })
            .collect();
        let mut backends = Backends::new(Static::new(set));
        backends.set_health_check(Box::new(Probe {
            prober: self.prober.clone(),
            snap,
            targets,
        }));
        if backends.update(|_| {}).await.is_ok() {
            backends.run_health_check(true).await;
        }
    }
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            let (enabled, interval) = {
                let snap = self.state.snapshot.load();
                (snap.health.enabled, snap.health.interval)
            };
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            if enabled {
                self.run_once().await;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Is the endpoint up? Feeds provider health.
    Provider,
    /// Does this disabled key work again?
    KeyRecheck,
}

#[derive(Debug)]
struct Target {
    /// Every provider sharing this endpoint and key.
    providers: Vec<usize>,
    key: Option<usize>,
    purpose: Purpose,
}

/// Distinct (endpoint, key, purpose) probes for the enabled providers.
fn targets(snap: &Snapshot) -> Vec<Target> {
    let now = now_ms();
    let mut out: Vec<Target> = Vec::new();
    type Id = (String, u16, String, &'static str, Option<String>, bool);
    let mut seen: HashMap<Id, usize> = HashMap::new();
    let mut add = |p: &Provider, key: Option<usize>, purpose: Purpose, out: &mut Vec<Target>| {
        let id = (
            p.endpoint.host.clone(),
            p.endpoint.port,
            p.endpoint.base_path.clone(),
            p.kind.as_str(),
            key.map(|k| p.keys[k].secret().to_string()),
            purpose == Purpose::Provider,
        );
        match seen.get(&id) {
            Some(&t) => out[t].providers.push(p.index),
            None => {
                seen.insert(id, out.len());
                out.push(Target {
                    providers: vec![p.index],
                    key,
                    purpose,
                });
            }
        }
    };
    for p in snap.providers.iter().filter(|p| p.enabled) {
        // The provider probe needs a key the vendor should accept.
        let usable = p.keys.iter().position(|k| k.state.available(now));
        if p.keys.is_empty() || usable.is_some() {
            add(p, usable, Purpose::Provider, &mut out);
        }
        for (k, key) in p.keys.iter().enumerate() {
            if key.state.reason(now) == CooldownReason::AuthFailed {
                add(p, Some(k), Purpose::KeyRecheck, &mut out);
            }
        }
    }
    // The synthetic backend addresses hold the index in a u16 port.
    out.truncate(u16::MAX as usize);
    out
}

struct Probe {
    prober: Arc<dyn Prober>,
    snap: Arc<Snapshot>,
    targets: Vec<Target>,
}

impl Probe {
    fn target(&self, backend: &Backend) -> Option<&Target> {
        match &backend.addr {
            PingoraAddr::Inet(a) => self.targets.get(a.port() as usize),
            _ => None,
        }
    }

    /// The 1-token completion for `probe = "completion"`: the provider's
    /// first exact model name, in the vendor's format.
    fn completion(&self, p: &Provider) -> Option<(String, Bytes)> {
        let model = p
            .model_map
            .values()
            .next()
            .map(String::as_str)
            .or_else(|| p.models.iter().find_map(|m| m.exact()))?;
        let mut req = chat::Request::new(model, Family::OpenAi);
        req.turns.push(Turn {
            role: Role::User,
            parts: vec![Part::Text(Text::plain("ping"))],
        });
        req.max_tokens = Some(1);
        let body = p
            .vendor
            .egress
            .encode_request(&req, model, &p.vendor_options)
            .ok()?;
        Some((
            p.vendor.chat_path(&p.endpoint.base_path, model, false),
            body,
        ))
    }
}

#[async_trait]
impl HealthCheck for Probe {
    async fn check(&self, backend: &Backend) -> pingora::Result<()> {
        let fail = |why: String| {
            Err(pingora::Error::explain(
                pingora::ErrorType::HTTPStatus(0),
                why,
            ))
        };
        let Some(t) = self.target(backend) else {
            return fail("unknown health-check target".into());
        };
        let Some(p) = t
            .providers
            .first()
            .and_then(|&i| self.snap.providers.get(i))
        else {
            return fail("provider left the configuration".into());
        };
        let h = &self.snap.health;
        let key = t.key.map(|k| &p.keys[k]);
        let completion = match (h.probe, t.purpose) {
            (ProbeKind::Completion, Purpose::Provider) => self.completion(p),
            _ => None,
        };
        let (result, body) = self
            .prober
            .probe(ProbeRequest {
                provider: p,
                key,
                completion,
                connect_only: h.probe == ProbeKind::Connect && t.purpose == Purpose::Provider,
                timeout: h.probe_timeout,
            })
            .await;
        let policy = &h.policy;
        let providers = t
            .providers
            .iter()
            .filter_map(|&i| self.snap.providers.get(i));
        match (t.purpose, &result) {
            (Purpose::Provider, ProbeResult::Ok) => {
                // The vendor's model list: what `GET /v1/models` can offer
                // for glob-served and catch-all providers.
                let ids = (h.probe == ProbeKind::Models)
                    .then(|| crate::health::discovery::model_ids(p.kind, &body))
                    .filter(|ids| !ids.is_empty());
                providers.for_each(|p| {
                    p.health.on_success(policy);
                    if let Some(ids) = &ids {
                        p.health.set_discovered(ids.clone());
                    }
                })
            }
            (Purpose::Provider, ProbeResult::Failed(why)) => {
                let why = format!("active check: {why}");
                providers.for_each(|p| p.health.on_failure(None, &why, policy));
            }
            (Purpose::Provider, ProbeResult::Status(status, _))
                if *status >= 500 || *status == 408 =>
            {
                let why = format!("active check: HTTP {status}");
                providers.for_each(|p| p.health.on_failure(Some(*status), &why, policy));
            }
            // A 403 for a model or resource says nothing about the key.
            (_, ProbeResult::Status(403, _))
                if p.vendor.denial(403, &body) == crate::providers::Denial::NotPermitted =>
            {
                if t.purpose == Purpose::Provider {
                    providers.for_each(|p| p.health.on_success(policy));
                }
            }
            (_, ProbeResult::Status(status @ (401..=403), _)) => {
                if let Some(k) = key {
                    if k.state.reason(now_ms()) != CooldownReason::AuthFailed {
                        tracing::warn!(provider = %p.name, key = %k.masked, status, "active check: key rejected, disabling it");
                    }
                    k.state.cool_down(
                        self.snap.routing.auth_failure_cooldown,
                        CooldownReason::AuthFailed,
                    );
                }
            }
            (_, ProbeResult::Status(429, reset)) => {
                if let Some(k) = key {
                    let park = reset.decide(
                        self.snap.routing.rate_limit_cooldown,
                        self.snap.routing.max_retry_after,
                    );
                    k.state.park(&p.name, &k.masked, &park);
                }
            }
            // Some compatible servers have no model list: the endpoint
            // answered, which is what this probe asks.
            (Purpose::Provider, ProbeResult::Status(..)) => {
                providers.for_each(|p| p.health.on_success(policy))
            }
            (Purpose::KeyRecheck, ProbeResult::Ok) => {
                if let Some(k) = key {
                    k.state.clear();
                    tracing::info!(provider = %p.name, key = %k.masked, "active check: key accepted again, back in rotation");
                }
            }
            (Purpose::KeyRecheck, _) => {}
        }
        match result {
            ProbeResult::Ok => Ok(()),
            ProbeResult::Status(s, _) => fail(format!("HTTP {s}")),
            ProbeResult::Failed(why) => fail(why),
        }
    }

    fn health_threshold(&self, _success: bool) -> usize {
        // Consecutive-count logic lives in our state machine.
        1
    }

    fn backend_summary(&self, backend: &Backend) -> String {
        self.target(backend)
            .and_then(|t| t.providers.first())
            .and_then(|&i| self.snap.providers.get(i))
            .map_or_else(
                || "health-check target".to_string(),
                |p| format!("provider {}", p.name),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{compile, parse_toml};
    use crate::health::HealthRegistry;
    use std::time::Duration;

    fn snapshot(toml: &str) -> Snapshot {
        let file = parse_toml(toml, "t.toml").expect("toml");
        compile(&file, "t.toml", &|_| None, &HealthRegistry::default())
            .expect("valid")
            .1
    }

    #[test]
    fn one_probe_per_endpoint_and_key_plus_rechecks_of_disabled_keys() {
        let snap = snapshot(
            r#"
            [[providers]]
            name = "gpt"
            type = "openai"
            base_url = "http://127.0.0.1:9/v1"
            api_keys = ["sk-shared-0000001", "sk-other-00000002"]
            models = ["gpt-4o"]
            [[providers]]
            name = "gpt-mini"
            type = "openai"
            base_url = "http://127.0.0.1:9/v1"
            api_keys = ["sk-shared-0000001"]
            models = ["gpt-4o-mini"]
            [[providers]]
            name = "off"
            type = "openai"
            base_url = "http://127.0.0.1:10/v1"
            enabled = false
            "#,
        );
        let t = targets(&snap);
        assert_eq!(
            t.len(),
            1,
            "same endpoint and key: probed once for both providers"
        );
        assert_eq!(t[0].providers, vec![0, 1]);
        assert_eq!(t[0].purpose, Purpose::Provider);

        snap.providers[0].keys[1]
            .state
            .cool_down(Duration::from_secs(600), CooldownReason::AuthFailed);
        let t = targets(&snap);
        assert_eq!(t.len(), 2);
        assert_eq!((t[1].purpose, t[1].key), (Purpose::KeyRecheck, Some(1)));
    }
}
