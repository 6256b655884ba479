//! Vendor host resolution, done with tokio (Pingora's `HttpPeer::new` would
//! resolve blocking and panic on failure). Answers are cached and refreshed
//! at most once a minute; a failed refresh keeps the previous answer.

use crate::config::Endpoint;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(60);
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct DnsCache {
    map: ArcSwap<HashMap<(String, u16), (SocketAddr, Instant)>>,
}

impl DnsCache {
    pub async fn resolve(&self, ep: &Endpoint) -> Result<SocketAddr, String> {
        if let Some(ip) = ep.ip {
            return Ok(SocketAddr::new(ip, ep.port));
        }
        let key = (ep.host.clone(), ep.port);
        let cached = self.map.load().get(&key).copied();
        if let Some((addr, at)) = cached {
            if at.elapsed() < TTL {
                return Ok(addr);
            }
        }
        let looked_up = tokio::time::timeout(
            LOOKUP_TIMEOUT,
            tokio::net::lookup_host((ep.host.as_str(), ep.port)),
        )
        .await;
        let fresh = match looked_up {
            Ok(Ok(mut addrs)) => addrs.next(),
            _ => None,
        };
        match (fresh, cached) {
            (Some(addr), _) => {
                self.map.rcu(|m| {
                    let mut m = HashMap::clone(m);
                    m.insert(key.clone(), (addr, Instant::now()));
                    Arc::new(m)
                });
                Ok(addr)
            }
            (None, Some((addr, _))) => Ok(addr),
            (None, None) => Err(format!("cannot resolve host {}", ep.host)),
        }
    }
}
