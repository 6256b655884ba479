//! Routes: which providers serve a model and the weighted choice among
//! them (through pingora-load-balancing). Plain data built from a
//! snapshot's providers; knows nothing of the configuration types.

use arc_swap::ArcSwap;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_load_balancing::selection::algorithms::Random;
use pingora_load_balancing::selection::weighted::Weighted;
use pingora_load_balancing::selection::{BackendSelection, UniqueIterator};
use pingora_load_balancing::{Backend, Extensions};
use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// A served-model pattern: an exact name or a glob with `*` and `?`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelPattern {
    Exact(String),
    /// `name*`, the commonest glob (every shipped price entry is one): a
    /// prefix compare instead of the byte-by-byte glob walk. The price
    /// table is scanned in order for every answer, so this is paid per
    /// request (callgrind: ~1.4k instructions for a Gemini model, found
    /// late in the table).
    Prefix(String),
    Glob(String),
}

impl ModelPattern {
    pub fn parse(s: &str) -> Option<ModelPattern> {
        let s = s.trim();
        if s.is_empty() {
            None
        } else if let Some(prefix) = s.strip_suffix('*').filter(|p| !p.contains(['*', '?'])) {
            Some(ModelPattern::Prefix(prefix.to_string()))
        } else if s.contains(['*', '?']) {
            Some(ModelPattern::Glob(s.to_string()))
        } else {
            Some(ModelPattern::Exact(s.to_string()))
        }
    }

    pub fn exact(&self) -> Option<&str> {
        match self {
            ModelPattern::Exact(s) => Some(s),
            ModelPattern::Prefix(_) | ModelPattern::Glob(_) => None,
        }
    }

    /// Up to two leading bytes every name this pattern matches starts with
    /// (the literal text before any wildcard), and how many there are.
    pub fn lead(&self) -> ([u8; 2], usize) {
        let (ModelPattern::Exact(s) | ModelPattern::Prefix(s) | ModelPattern::Glob(s)) = self;
        let mut lead = ([0u8; 2], 0);
        for b in s.bytes().take(2).take_while(|b| !matches!(b, b'*' | b'?')) {
            lead.0[lead.1] = b;
            lead.1 += 1;
        }
        lead
    }

    pub fn matches(&self, model: &str) -> bool {
        match self {
            ModelPattern::Exact(s) => s == model,
            ModelPattern::Prefix(p) => model.starts_with(p.as_str()),
            ModelPattern::Glob(g) => glob_match(g.as_bytes(), model.as_bytes()),
        }
    }
}

/// Iterative wildcard match (`*` any run, `?` one byte) with backtracking
/// to the last star: linear in practice, no recursion.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The providers that can serve one model, and a weighted selector over them.
pub struct Route {
    /// The model name after alias resolution.
    pub model: String,
    /// Provider indexes into the snapshot's provider list.
    pub candidates: Vec<usize>,
    selector: Arc<Weighted<Random>>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("model", &self.model)
            .field("candidates", &self.candidates)
            .finish()
    }
}

/// pingora-load-balancing identifies a backend by (address, weight) only, so
/// each provider gets a synthetic address that encodes its index; the
/// selector never connects anywhere, it only chooses.
fn backend_for(index: usize, weight: u32) -> Backend {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, index as u16));
    Backend {
        addr: PingoraAddr::Inet(addr),
        weight: weight as usize,
        ext: Extensions::new(),
    }
}

fn index_of(backend: &Backend) -> Option<usize> {
    match &backend.addr {
        PingoraAddr::Inet(a) => Some(a.port() as usize),
        _ => None,
    }
}

impl Route {
    /// The route for `model` over the providers that serve it, given as
    /// `(index, weight)`; `None` when there are none.
    pub fn build(model: &str, serving: impl Iterator<Item = (usize, u32)>) -> Option<Route> {
        // The selector stores indexes as u16.
        let serving: Vec<(usize, u32)> = serving.filter(|&(i, _)| i <= u16::MAX as usize).collect();
        if serving.is_empty() {
            return None;
        }
        let candidates: Vec<usize> = serving.iter().map(|&(i, _)| i).collect();
        let backends: BTreeSet<Backend> = serving
            .iter()
            .map(|&(i, weight)| backend_for(i, weight))
            .collect();
        Some(Route {
            model: model.to_string(),
            candidates,
            selector: Arc::new(Weighted::<Random>::build(&backends)),
        })
    }

    /// Weighted random choice among candidates that `accept` allows (not yet
    /// tried, healthy enough, has a usable key). `keep(i)` in 0..=1 scales a
    /// candidate's chance on the weighted passes (degraded providers keep
    /// part of their weight). The first draw follows the weights exactly;
    /// when it is refused, pingora's iterator falls back to a uniform walk,
    /// and a final scan guarantees an acceptable candidate is never missed.
    pub fn pick(
        &self,
        accept: impl Fn(usize) -> bool,
        keep: impl Fn(usize) -> f64,
    ) -> Option<usize> {
        // One candidate (one provider serves the model, the common case):
        // the walk below would end with the final scan's answer anyway,
        // after ~800 instructions of hashing in pingora's iterator.
        if let [only] = self.candidates[..] {
            return accept(only).then_some(only);
        }
        let mut iter = UniqueIterator::new(self.selector.iter(b""), self.candidates.len() * 2 + 2);
        while let Some(b) = iter.get_next() {
            if let Some(i) = index_of(&b) {
                if accept(i) {
                    let k = keep(i);
                    if k >= 1.0 || rand::random::<f64>() < k {
                        return Some(i);
                    }
                }
            }
        }
        self.candidates.iter().copied().find(|&i| accept(i))
    }
}

/// Lock-free read cache of routes for names not known at build time
/// (catch-all and glob providers). Bounded so a client inventing model names
/// cannot grow it without limit.
#[derive(Default)]
pub struct RouteCache {
    map: ArcSwap<HashMap<String, Option<Arc<Route>>>>,
}

impl std::fmt::Debug for RouteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RouteCache({} entries)", self.map.load().len())
    }
}

const ROUTE_CACHE_LIMIT: usize = 1024;

impl RouteCache {
    pub fn get_or_build(
        &self,
        model: &str,
        build: impl FnOnce() -> Option<Route>,
    ) -> Option<Arc<Route>> {
        if let Some(hit) = self.map.load().get(model) {
            return hit.clone();
        }
        let built = build().map(Arc::new);
        if self.map.load().len() < ROUTE_CACHE_LIMIT {
            self.map.rcu(|m| {
                let mut m = HashMap::clone(m);
                m.insert(model.to_string(), built.clone());
                m
            });
        }
        built
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_candidate_is_picked_when_accepted_whatever_its_weight_share() {
        let route = Route::build("m", [(7, 3)].into_iter());
        let route = route.as_ref();
        assert_eq!(route.and_then(|r| r.pick(|i| i == 7, |_| 1.0)), Some(7));
        // A degraded provider keeps part of its weight, but a lone one is
        // still the only choice (the multi-candidate walk's final scan).
        assert_eq!(route.and_then(|r| r.pick(|i| i == 7, |_| 0.0)), Some(7));
        assert_eq!(route.and_then(|r| r.pick(|_| false, |_| 1.0)), None);
        // Two candidates still go through the weighted walk.
        let two = Route::build("m", [(1, 1), (2, 1)].into_iter());
        assert_eq!(two.and_then(|r| r.pick(|i| i == 2, |_| 0.0)), Some(2));
    }

    #[test]
    fn globs_match_like_shell_patterns() {
        let g = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes());
        assert!(g("gpt-4o*", "gpt-4o"));
        assert!(g("gpt-4o*", "gpt-4o-mini"));
        assert!(!g("gpt-4o*", "gpt-4"));
        assert!(g("*-mini", "o3-mini"));
        assert!(g("claude-?-opus*", "claude-3-opus-2024"));
        assert!(g("a*b*c", "axxbyyc"));
        assert!(!g("a*b*c", "axxbyy"));
        assert!(g("*", ""));
    }

    #[test]
    fn prefix_patterns_match_as_their_glob_does() {
        let names = [
            "",
            "g",
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4",
            "gemini-2.5-flash",
            "o3-mini",
        ];
        for pat in [
            "gpt-4o*",
            "gpt-4o-mini*",
            "*",
            "g*",
            "gemini-2.5-flash*",
            "*-mini",
            "gpt-?o*",
            "gpt-4o",
        ] {
            let parsed = ModelPattern::parse(pat).unwrap_or_else(|| panic!("{pat}"));
            // Only a single trailing star becomes a prefix compare.
            let prefix = pat.ends_with('*') && pat.matches(['*', '?']).count() == 1;
            assert_eq!(matches!(parsed, ModelPattern::Prefix(_)), prefix, "{pat}");
            for name in names {
                let by_glob = if pat.contains(['*', '?']) {
                    glob_match(pat.as_bytes(), name.as_bytes())
                } else {
                    pat == name
                };
                assert_eq!(parsed.matches(name), by_glob, "{pat} vs {name}");
                // The price table's lead-byte skip never skips a match.
                if by_glob {
                    let (lead, n) = parsed.lead();
                    assert!(name.as_bytes().starts_with(&lead[..n]), "{pat} vs {name}");
                }
            }
        }
    }
}
