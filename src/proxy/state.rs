//! The data plane's shared state: the live state (snapshot, metrics, log
//! channel, shutdown signals; see `control::live`) plus what only the data
//! plane uses, the upstream connector and DNS cache.

use super::connector::Connector;
use crate::control::live::Live;
use crate::health::checker::Prober;
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// Shared by every request of every worker thread.
pub struct GatewayState {
    pub live: Arc<Live>,
    pub(super) connector: Connector,
    pub(super) dns: super::dns::DnsCache,
}

impl std::ops::Deref for GatewayState {
    type Target = Live;
    fn deref(&self) -> &Live {
        &self.live
    }
}

impl GatewayState {
    pub fn new(live: Arc<Live>, connector: Connector) -> Arc<Self> {
        Arc::new(GatewayState {
            live,
            connector,
            dns: super::dns::DnsCache::default(),
        })
    }
}

/// Active health probes go out through the data plane's connection pool
/// and DNS cache.
#[async_trait]
impl Prober for GatewayState {
    async fn probe(
        &self,
        req: super::upstream::ProbeRequest<'_>,
    ) -> (super::upstream::ProbeResult, Bytes) {
        super::upstream::probe(&self.connector, &self.dns, req).await
    }
}
