//! Building and running the Pingora server from the compiled configuration.

use crate::config::{self, FileConfig, ProcessSettings, Snapshot};
use crate::control::api::ApiConfig;
use crate::health::HealthRegistry;
use crate::proxy::{Gateway, GatewayState};
use crate::store::Store;
use pingora::connectors::ConnectorOptions;
use pingora::prelude::Opt;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use std::sync::Arc;
use tokio::net::TcpSocket;

/// The address to listen on, and for port 0 the socket that holds it.
///
/// Port 0 asks the OS for a free port; Pingora binds by address string, so
/// the port is found here and then handed over by number. The probe socket
/// is kept bound (never listening) for the life of the process: both it and
/// Pingora's listener set SO_REUSEADDR, which lets one of them listen beside
/// a bound twin, while another process's `bind(0)` or outgoing `connect()`
/// skips a port that a bound socket owns. Dropping the probe instead left a
/// window in which a second gateway started at the same moment could be
/// handed the same port, bind it first, and answer the first one's clients.
pub fn listen_addr(process: &ProcessSettings) -> Result<(String, Option<PortHold>), String> {
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
        return Ok((fmt(process.port), None));
    }
    // A host name resolves as Pingora will resolve it (first address).
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, 0))
        .map_err(|e| format!("cannot bind {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot bind {host}: it resolves to no address"))?;
    let (port, hold) = hold_free_port(addr).map_err(|e| format!("cannot bind {host}: {e}"))?;
    Ok((fmt(port), Some(hold)))
}

/// Bind port 0 on `addr`'s IP with SO_REUSEADDR and keep the socket.
fn hold_free_port(addr: std::net::SocketAddr) -> std::io::Result<(u16, PortHold)> {
    let probe = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }?;
    probe.set_reuseaddr(true)?;
    probe.bind(std::net::SocketAddr::new(addr.ip(), 0))?;
    let port = probe.local_addr()?.port();
    Ok((port, PortHold { _socket: probe }))
}

/// A bound, never-listening socket that keeps an OS-chosen port ours until
/// the process exits (see [`listen_addr`]).
pub struct PortHold {
    _socket: TcpSocket,
}

/// Is a listen host (an IP address or `localhost`) reachable from this
/// machine only?
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What start-up has to say about who can reach what.
#[derive(Debug, Default)]
pub struct AccessReview {
    /// Why the gateway must not start (no token on a non-loopback address).
    pub refuse: Option<String>,
    pub warnings: Vec<String>,
}

/// The access rules checked at start (and by `--check`):
/// - without AUTH_TOKEN only loopback peers are served, so binding the main
///   port to a non-loopback address without one is refused unless
///   `allow_no_auth`;
/// - an admin API reachable on a non-loopback address (its own listener, or
///   the copy on a non-loopback main port) with the data plane's token, or
///   with a token shorter than 16 characters, is worth a warning.
pub fn access_review(
    process: &ProcessSettings,
    snapshot: &Snapshot,
    allow_no_auth: bool,
) -> AccessReview {
    let mut review = AccessReview::default();
    let main_public = !is_loopback_host(&process.host);
    if snapshot.auth_token.is_none() {
        if main_public && !allow_no_auth {
            review.refuse = Some(format!(
                "AUTH_TOKEN is not set and the main port is bound to {}, a non-loopback address; \
                 set AUTH_TOKEN (clients send it as their bearer token or x-api-key), or bind \
                 APP_HOST=127.0.0.1, or start with --allow-no-auth (ALLOW_NO_AUTH=true) to accept \
                 loopback peers only anyway",
                process.host
            ));
        }
        review.warnings.push(
            "AUTH_TOKEN is not set: only loopback peers are accepted. A reverse proxy or port \
             forwarder on this host makes every client a loopback peer, that is everyone: set \
             AUTH_TOKEN before putting anything in front of the gateway"
                .into(),
        );
    }
    let mut exposed = Vec::new();
    if let Some(listen) = &process.admin_listen {
        let loopback = listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if !loopback {
            exposed.push(format!("the admin listener {listen}"));
        }
    }
    if process.admin_on_main && main_public {
        exposed.push(format!("/api on the main port ({})", process.host));
    }
    if let (Some(admin), false) = (&snapshot.admin_token, exposed.is_empty()) {
        let at = exposed.join(" and ");
        if snapshot.auth_token.as_ref() == Some(admin) {
            review.warnings.push(format!(
                "the admin API is reachable on a non-loopback address ({at}) with the same token as \
                 the data plane (ADMIN_TOKEN unset or equal to AUTH_TOKEN): every client can change \
                 providers and keys; set a separate ADMIN_TOKEN, or bind ADMIN_LISTEN to 127.0.0.1 \
                 and set ADMIN_ON_MAIN_PORT=false"
            ));
        }
        if admin.chars().count() < 16 {
            review.warnings.push(format!(
                "the admin API is reachable on a non-loopback address ({at}) with a token shorter \
                 than 16 characters; use a long random ADMIN_TOKEN (e.g. `openssl rand -hex 32`)"
            ));
        }
    }
    review
}

/// Everything the server needs, prepared before Pingora starts.
pub struct Boot {
    pub file: FileConfig,
    pub source: String,
    pub snapshot: Snapshot,
    pub registry: Arc<HealthRegistry>,
    pub store: Option<Store>,
    /// Why the database could not be opened, when it could not.
    pub store_error: Option<String>,
    pub api: ApiConfig,
    /// Client keys as stored (empty without a database).
    pub keys: crate::keys::KeyTable,
}

/// Open the database and merge its API-managed configuration with the
/// file. A merge that does not compile stops the start (with every error):
/// serving a config that silently dropped an admin's edit would be worse.
pub async fn boot(
    process: &ProcessSettings,
    file: FileConfig,
    source: String,
    file_snapshot: Snapshot,
    registry: Arc<HealthRegistry>,
) -> Result<Boot, config::ConfigErrors> {
    let instance = crate::store::instance_name(&config::process_env, process.port);
    let masked = crate::store::mask_url(&process.database_url);
    let (store, store_error) = match Store::open_as(&process.database_url, &instance).await {
        Ok(s) => (Some(s), None),
        // A shared database (MySQL, PostgreSQL) holds the configuration the
        // other instances serve: starting without it would serve a
        // different one. Stop and say why (wrong password, unreachable).
        Err(e)
            if crate::store::backend_of(&process.database_url)
                .is_some_and(|b| b != crate::store::BackendKind::Sqlite) =>
        {
            return Err(config::ConfigErrors(vec![config::ConfigError {
                source: "database".into(),
                key: "DATABASE_URL".into(),
                reason: e.to_string(),
            }]));
        }
        Err(e) => {
            tracing::error!(database = %masked, error = %e, "cannot open the database: the admin API cannot write and request logs are not kept");
            (None, Some(format!("cannot open {masked}: {e}")))
        }
    };
    let api = match &store {
        Some(s) => crate::control::load_api(s).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the API-managed configuration; starting from the file only");
            ApiConfig::default()
        }),
        None => ApiConfig::default(),
    };
    let snapshot = if api.providers.is_empty()
        && api.aliases.is_empty()
        && api.settings.as_object().is_none_or(|o| o.is_empty())
    {
        file_snapshot
    } else {
        let merged = crate::control::api::merge(&file, &api).map_err(|errs| {
            config::ConfigErrors(
                errs.into_iter()
                    .map(|e| config::ConfigError {
                        source: "database".into(),
                        key: e.field,
                        reason: e.reason,
                    })
                    .collect(),
            )
        })?;
        config::compile(&merged, &source, &config::process_env, &registry)?.1
    };
    Ok(Boot {
        file,
        source,
        snapshot,
        registry,
        keys: match &store {
            Some(s) => crate::control::load_keys(s).await.unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot read the client keys; only AUTH_TOKEN is accepted until they can be read");
                crate::keys::KeyTable::default()
            }),
            None => crate::keys::KeyTable::default(),
        },
        store,
        store_error,
        api,
    })
}

/// `DATABASE_LOG_BACKLOG_ROWS`: request-log rows kept in memory while the
/// database does not take them (see [`crate::store::LogBacklog`]). Not a
/// file setting: only outages of unusual length need it changed.
fn log_backlog_rows() -> usize {
    match config::process_env("DATABASE_LOG_BACKLOG_ROWS") {
        None => crate::store::backlog::DEFAULT_BOUND,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                tracing::warn!(value = %v, "DATABASE_LOG_BACKLOG_ROWS is not a whole number; using the default");
                crate::store::backlog::DEFAULT_BOUND
            }
        },
    }
}

/// Time between the end of the grace period and the runtimes' stop: for
/// requests still in flight to send their error event and for their
/// request-log rows to be written.
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Once the server is asked to hand its sockets to a new binary (SIGQUIT)
/// or to stop (SIGTERM), answers carry `Connection: close`, so keep-alive
/// clients move to the new process (or go away) between requests instead
/// of having an idle connection dropped under a request they just sent.
///
/// When Pingora's grace period starts, `grace` later the requests still in
/// flight are told to end (`Live::grace_over`): streams with an
/// in-band error event, each with its log line and request-log row.
/// Pingora itself waits [`SHUTDOWN_FLUSH`] longer before it stops the
/// runtimes, so that happens before they are dropped.
fn watch_shutdown(
    server: &Server,
    state: Arc<crate::control::live::Live>,
    grace: std::time::Duration,
) {
    use pingora::server::ExecutionPhase;
    let mut phases = server.watch_execution_phase();
    let spawned = std::thread::Builder::new()
        .name("shutdown-watch".into())
        .spawn(move || {
            while let Ok(phase) = phases.blocking_recv() {
                if matches!(
                    phase,
                    ExecutionPhase::GracefulUpgradeTransferringFds
                        | ExecutionPhase::GracefulUpgradeCloseTimeout
                        | ExecutionPhase::GracefulTerminate
                        | ExecutionPhase::ShutdownStarted
                ) && !state.draining.load(std::sync::atomic::Ordering::Relaxed)
                {
                    state
                        .draining
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(?phase, "draining: answers now close their connections");
                }
                if matches!(phase, ExecutionPhase::ShutdownGracePeriod) {
                    std::thread::sleep(grace);
                    state.grace_over.send_replace(true);
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch for shutdown; keep-alive connections are dropped at shutdown");
    }
}

/// The control plane alone, without a server: for the command line's
/// `--offline` admin calls on the configured database.
pub fn offline_control(
    process: &ProcessSettings,
    boot: Boot,
    config_file: Option<std::path::PathBuf>,
) -> Arc<crate::control::ControlPlane> {
    let live = crate::control::live::Live::new(boot.snapshot, boot.registry);
    crate::control::ControlPlane::new(
        live,
        config_file,
        boot.file,
        boot.source,
        process.clone(),
        boot.store,
        boot.api,
    )
}

pub fn build(
    process: &ProcessSettings,
    boot: Boot,
    addr: &str,
    config_file: Option<std::path::PathBuf>,
    upgrade: bool,
) -> Server {
    let threads = if process.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        process.threads
    };
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(process.grace_period.as_secs() + SHUTDOWN_FLUSH.as_secs()),
        graceful_shutdown_timeout_seconds: Some(process.grace_period.as_secs()),
        upstream_keepalive_pool_size: 1024,
        upgrade_sock: process.upgrade_sock.clone(),
        // Work stealing keeps long streams from pinning one thread while
        // others idle. With one thread there is nothing to steal from, and
        // Pingora then runs a current-thread Tokio runtime: no cross-thread
        // run queue, no atomics on every wake.
        work_stealing: threads > 1,
        // Pingora's own timeouts (its HTTP/1 server session's reads and
        // writes) of a second or more run on Tokio's timer, as the
        // gateway's do: the default (up to 15 minutes on Pingora's
        // "fast" wheel) starts a "Timer thread" that wakes every 10 ms
        // for the life of the process, on the core the request thread is
        // pinned to (`BENCHMARKS.md`, "Syscalls per request").
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..ServerConf::default()
    };

    let connector = crate::proxy::Connector::new(Some(ConnectorOptions::from_server_conf(&conf)));
    let Boot {
        file,
        source,
        snapshot,
        registry,
        store,
        store_error,
        api,
        keys,
    } = boot;
    let state = GatewayState::new(
        crate::control::live::Live::new(snapshot, registry),
        connector,
    );
    state.keys.store(Arc::new(keys));
    if store_error.is_some() {
        state.store_condition.store(
            crate::store::condition::UNAVAILABLE,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    let control = crate::control::ControlPlane::new(
        state.live.clone(),
        config_file,
        file,
        source,
        process.clone(),
        store.clone(),
        api,
    );
    if let Some(e) = store_error {
        let _ = control.store_error.set(e);
    }
    let (audit, audit_rx) = crate::admin::audit::Audit::new();
    let admin_listen = process.admin_listen.as_deref();
    if process.admin_on_main {
        let _ = state.admin.set(crate::admin::router(
            control.clone(),
            crate::admin::Listener::Main,
            audit.clone(),
            admin_listen,
        ));
    }

    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    watch_shutdown(&server, state.live.clone(), process.grace_period);
    server.bootstrap();
    // The proxy sits behind the edge checks (connection cap, head deadline
    // and size, JSON answers for refused heads): see `proxy::edge`.
    let limits = crate::proxy::edge::EdgeLimits::new(&process.edge);
    state.metrics.edge.buffer_limit.store(
        process.edge.max_buffered_response_bytes as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    tracing::info!(
        max_connections = limits.max_connections,
        head_timeout_s = limits.head_timeout.as_secs_f64(),
        max_head_bytes = limits.max_head_bytes,
        "client connections capped (server.max_connections)"
    );
    // Our own accept loop (`proxy::listen`): one task per connection
    // holding only the edge's future. Client connections have no read
    // buffer of their own (Pingora's HTTP session reads the request into
    // its buffers anyway; with 1,000 open streams 64 KiB L4 read buffers
    // were ~60 MiB of the peak), and their writes are collected by
    // `proxy::cork`.
    let service = crate::proxy::listen::DataPlane::new(
        addr.to_string(),
        crate::proxy::edge::EdgeApp::new(
            Gateway::new(state.clone()),
            limits,
            state.metrics.edge.clone(),
        ),
    );
    server.add_service(service);
    server.add_service(background_service(
        "health checker",
        crate::health::checker::HealthChecker::new(state.live.clone(), state.clone()),
    ));
    server.add_service(background_service(
        "config file watcher",
        crate::control::FileWatcher::new(control.clone(), std::time::Duration::from_secs(1)),
    ));
    if let Some(listen) = &process.admin_listen {
        server.add_service(background_service(
            "admin API",
            crate::admin::serve::AdminListener {
                router: crate::admin::router(
                    control.clone(),
                    crate::admin::Listener::Admin,
                    audit.clone(),
                    admin_listen,
                ),
                addr: listen.clone(),
            },
        ));
    }
    // One Redis connection for config sync, health sync and cluster
    // counters (control/redis.rs), connected by its own background service.
    let redis = if process.redis_enabled {
        match crate::control::redis::SharedRedis::new(&process.redis_url) {
            Ok(r) => {
                state.ledger.budgets.use_redis(r.clone());
                server.add_service(background_service(
                    "redis connection",
                    crate::control::redis::RedisService(r.clone()),
                ));
                Some(r)
            }
            Err(e) => {
                tracing::error!(error = %e, "nothing is shared through redis");
                None
            }
        }
    } else {
        None
    };
    let cluster = redis.as_ref().map(|r| {
        let c = Arc::new(crate::admin::cluster::ClusterUsage::new(r.clone()));
        let _ = control.cluster_usage.set(c.clone());
        c
    });
    if let Some(store) = &store {
        server.add_service(background_service(
            "audit log writer",
            crate::admin::audit::AuditWriter {
                store: store.clone(),
                audit,
                rx: tokio::sync::Mutex::new(Some(audit_rx)),
                retention_days: process.log_retention_days,
                retention_rows: process.log_retention_rows,
            },
        ));
    }
    if store.as_ref().is_some_and(|s| s.is_shared()) {
        server.add_service(background_service(
            "shared configuration poll",
            crate::control::poll::VersionPoller::new(control.clone(), crate::control::poll::POLL),
        ));
    }
    if let Some(store) = store {
        let (tx, rx) = tokio::sync::mpsc::channel(16 * 1024);
        let _ = state.log_tx.set(tx);
        server.add_service(background_service(
            "request log writer",
            crate::admin::serve::LogWriter {
                store,
                rx: tokio::sync::Mutex::new(Some(rx)),
                retention_days: process.log_retention_days,
                retention_rows: process.log_retention_rows,
                state: state.live.clone(),
                cluster,
                backlog_rows: log_backlog_rows(),
            },
        ));
    }
    if let Some(redis) = redis {
        // Client-key limits are shared through the same connection.
        state.live.limiter.attach(redis.clone());
        server.add_service(background_service(
            "client-key limit heartbeat",
            crate::keys::limits::Heartbeat(state.live.limiter.clone()),
        ));
        let handle = Arc::new(crate::control::handle::SyncHandle::default());
        let _ = control.sync.set(handle.clone());
        server.add_service(background_service(
            "redis config sync",
            crate::control::sync::ConfigSync::new(redis.clone(), control.clone(), handle),
        ));
        server.add_service(background_service(
            "redis health sync",
            crate::health::shared::RedisSync::new(redis, state.registry.clone()),
        ));
    }
    server
}

#[cfg(test)]
mod port_tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    #[test]
    fn a_held_port_is_never_handed_out_again_but_can_be_listened_on() {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let (port, _hold) = hold_free_port(any).expect("hold a port");
        // Other `bind(0)` callers (other gateways' probes, test mocks) are
        // given other ports while the hold lives; keep the sockets so each
        // bind has to find a new free port.
        let mut others = Vec::new();
        for _ in 0..500 {
            let l = std::net::TcpListener::bind(any).expect("bind 0");
            assert_ne!(l.local_addr().expect("addr").port(), port);
            others.push(l);
        }
        drop(others);
        // A listener with SO_REUSEADDR (what Pingora creates) takes the
        // held port over, and only one does.
        let at = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let take = |at| {
            let s = TcpSocket::new_v4()?;
            s.set_reuseaddr(true)?;
            s.bind(at)?;
            s.listen(16)
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let first = take(at).expect("the holder's listener binds the held port");
            assert!(take(at).is_err(), "a second listener on the held port");
            drop(first);
        });
    }
}
