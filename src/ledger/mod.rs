//! The usage and cost ledger (issue #17): prices per model and token
//! class, the cost of each request in integer micro-dollars, and budgets
//! per client key.
//!
//! The data plane calls [`Ledger::admit`] before a client key's request
//! (budgets) and [`Ledger::record`] when it ends (cost, spend). Both work
//! from memory; Redis shares spend between instances (see [`budgets`]).

pub mod budgets;
pub mod prices;
pub mod stream_usage;

pub use budgets::{Budget, Budgets, Exhausted, Period, Spend};
pub use prices::{PriceSection, PriceTable};

use crate::protocol::types::Usage;

/// What the gateway keeps for the ledger: spend per key and period.
#[derive(Default)]
pub struct Ledger {
    pub budgets: Budgets,
}

/// One finished request's place in the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// `None`: no price matched the model.
    pub cost_micros: Option<u64>,
}

impl Ledger {
    /// Budget check before the request of client key `key_id`, whose
    /// budgets are `budgets`.
    pub async fn admit(&self, key_id: i64, budgets: &[Budget]) -> Result<(), Exhausted> {
        if budgets.is_empty() {
            return Ok(());
        }
        let now = crate::health::wall_ms() as i64;
        self.budgets.check(key_id, budgets, now).await
    }

    /// Price a finished request, count it in `/metrics` and against its
    /// key's budgets.
    pub fn record(
        &self,
        metrics: &crate::metrics::Metrics,
        prices: &PriceTable,
        r: &Finished<'_>,
    ) -> Entry {
        let Some(usage) = r.usage else {
            return Entry::default();
        };
        // The names a price may be listed under, on the stack (no `Vec`
        // per request).
        let (mut names, mut n) = ([""; 2], 0);
        for m in [r.upstream_model, r.model].into_iter().flatten() {
            names[n] = m;
            n += 1;
        }
        let cost = prices.cost(r.provider, &names[..n], usage);
        if let Some(provider) = r.provider {
            metrics.ledger(
                provider,
                r.model.unwrap_or(""),
                &prices::Classes::of(usage),
                cost.unwrap_or(0),
            );
        }
        if let Some(k) = r.key {
            self.budgets.settle(
                k.id,
                k.budgeted,
                Spend {
                    tokens: usage.prompt_tokens.saturating_add(usage.completion_tokens),
                    micros: cost.unwrap_or(0),
                },
                crate::health::wall_ms() as i64,
            );
        }
        Entry { cost_micros: cost }
    }
}

impl Ledger {
    /// Load this instance's view of the current periods' spend from the
    /// request log, once at start (bounded: a slow database leaves the
    /// budgets counting from zero, with a warning).
    pub async fn preload(&self, store: &crate::store::Store) {
        let now = crate::health::wall_ms() as i64;
        let load = async {
            let mut rows = Vec::new();
            for p in [Period::Day, Period::Month, Period::Total] {
                for s in store.spend_by_key(p.start(now)).await? {
                    let spend = Spend {
                        tokens: s.tokens,
                        micros: s.cost_micros,
                    };
                    rows.push((s.key_id, p, spend));
                }
            }
            Ok::<_, crate::store::StoreError>(rows)
        };
        match tokio::time::timeout(std::time::Duration::from_secs(30), load).await {
            Ok(Ok(rows)) => {
                self.budgets.preload(&rows, now);
                tracing::debug!(entries = rows.len(), "budget spend reloaded from the request log");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "budget spend not reloaded from the request log; budgets count from zero")
            }
            Err(_) => tracing::warn!(
                "budget spend not reloaded from the request log within 30 s; budgets count from zero"
            ),
        }
    }
}

/// A finished data-plane request, as the ledger needs it.
pub struct Finished<'a> {
    pub key: Option<KeyRef>,
    pub provider: Option<&'a str>,
    /// The model name sent to the vendor (priced first).
    pub upstream_model: Option<&'a str>,
    /// The model name the client asked for.
    pub model: Option<&'a str>,
    pub usage: Option<&'a Usage>,
}

/// The client key a request ran under, as the ledger needs it (the ledger
/// sits below `keys` and does not read its documents).
#[derive(Debug, Clone, Copy)]
pub struct KeyRef {
    pub id: i64,
    /// The key has at least one budget (its spend is tracked).
    pub budgeted: bool,
}
