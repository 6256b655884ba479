//! Building and running the Pingora server from the compiled configuration.

use crate::config::{self, ProcessSettings, Snapshot};
use crate::health::HealthRegistry;
use crate::proxy::{Gateway, GatewayState};
use pingora::connectors::ConnectorOptions;
use pingora::prelude::Opt;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use std::net::TcpListener;
use std::sync::Arc;

/// The address to listen on. Port 0 asks the OS for a free port; Pingora
/// binds by address string, so the port is found here and then handed over
/// (the OS will not hand the same ephemeral port out again immediately).
pub fn listen_addr(process: &ProcessSettings) -> Result<String, String> {
    let host = if process.host == "localhost" {
        "127.0.0.1"
    } else {
        process.host.as_str()
    };
    let fmt = |port: u16| {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    };
    if process.port != 0 {
        return Ok(fmt(process.port));
    }
    let probe = TcpListener::bind(fmt(0)).map_err(|e| format!("cannot bind {host}: {e}"))?;
    let port = probe
        .local_addr()
        .map_err(|e| format!("cannot read the bound port: {e}"))?
        .port();
    Ok(fmt(port))
}

pub fn build(
    process: &ProcessSettings,
    snapshot: Snapshot,
    registry: Arc<HealthRegistry>,
    addr: &str,
    config_file: Option<std::path::PathBuf>,
) -> Server {
    let threads = if process.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        process.threads
    };
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(process.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(process.grace_period.as_secs()),
        upstream_keepalive_pool_size: 1024,
        // Work stealing keeps long streams from pinning one thread while
        // others idle.
        work_stealing: true,
        ..ServerConf::default()
    };

    let connector =
        pingora::connectors::http::Connector::new(Some(ConnectorOptions::from_server_conf(&conf)));
    let state = GatewayState::new(snapshot, registry, connector);

    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Gateway::new(state.clone()),
        "llm-orchestrator data plane",
    );
    service.add_tcp(addr);
    server.add_service(service);
    server.add_service(pingora::services::background::background_service(
        "health checker",
        crate::health::checker::HealthChecker::new(state.clone()),
    ));
    let control = crate::control::ControlPlane::new(state.clone(), config_file, process.clone());
    server.add_service(pingora::services::background::background_service(
        "config file watcher",
        crate::control::FileWatcher::new(control, std::time::Duration::from_secs(1)),
    ));
    if process.redis_enabled {
        server.add_service(pingora::services::background::background_service(
            "redis health sync",
            crate::health::shared::RedisSync::new(&process.redis_url, state.registry.clone()),
        ));
    }
    server
}

/// Compile the configuration for `serve` and `--check`.
pub fn load_and_compile(
    path: Option<&std::path::Path>,
    registry: &HealthRegistry,
) -> Result<(ProcessSettings, Snapshot, String), config::ConfigErrors> {
    let (file, source) = config::load(path, &config::process_env)?;
    let (process, snapshot) = config::compile(&file, &source, &config::process_env, registry)?;
    Ok((process, snapshot, source))
}
