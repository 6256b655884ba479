use clap::Parser;
use llm_orchestrator::cli::{Cli, Command, DbAction};
use llm_orchestrator::health::HealthRegistry;
use llm_orchestrator::{config, server, store, telemetry};
use std::io::Write;
use std::process::ExitCode;

/// jemalloc instead of glibc's malloc. A request makes ~77 allocations
/// (header maps, header values, log-row strings, buffers), nearly all
/// freed on the same thread moments later: jemalloc's thread cache serves
/// them in fewer instructions (callgrind, pass-through: 137.7k -> see
/// BENCHMARKS.md "Session 14"). mimalloc saved as much but held more
/// memory with 1,000 open streams.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn print_errors(errs: &config::ConfigErrors) {
    eprintln!(
        "configuration is invalid ({} error{}):",
        errs.0.len(),
        if errs.0.len() == 1 { "" } else { "s" }
    );
    for e in &errs.0 {
        eprintln!("  {e}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let check = cli.check || matches!(cli.command, Some(Command::Check));
    let (file, source) = match config::load(cli.config.as_deref(), &config::process_env) {
        Ok(loaded) => loaded,
        Err(errs) => {
            print_errors(&errs);
            return ExitCode::FAILURE;
        }
    };
    let registry = HealthRegistry::new();
    let (process, snapshot) = match config::compile(&file, &source, &config::process_env, &registry)
    {
        Ok(c) => c,
        Err(errs) => {
            print_errors(&errs);
            return ExitCode::FAILURE;
        }
    };
    let serving = !matches!(
        cli.command,
        Some(
            Command::Db { .. }
                | Command::Export { .. }
                | Command::Import { .. }
                | Command::Keys { .. }
        )
    );
    let allow_no_auth = match allow_no_auth_env() {
        Ok(v) => cli.allow_no_auth || v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let access = server::access_review(&process, &snapshot, allow_no_auth);
    if let (Some(why), true) = (&access.refuse, serving) {
        eprintln!("error: {why}");
        return ExitCode::FAILURE;
    }
    if check {
        let n = snapshot.provider_count();
        println!(
            "configuration OK ({source}): {n} provider{}",
            if n == 1 { "" } else { "s" }
        );
        return ExitCode::SUCCESS;
    }
    // Start-up work that needs async (opening SQLite) runs on a small
    // runtime of its own, before Pingora starts its services.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Db {
        action: DbAction::Migrate,
    }) = cli.command
    {
        return match rt.block_on(store::Store::open(&process.database_url)) {
            Ok(s) => match rt.block_on(s.schema_version()) {
                Ok(v) => {
                    println!(
                        "database {} is at schema version {v}",
                        store::mask_url(&process.database_url)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!(
                    "error: cannot open {}: {e}",
                    store::mask_url(&process.database_url)
                );
                ExitCode::FAILURE
            }
        };
    }

    if let Some(Command::Export { .. } | Command::Import { .. } | Command::Keys { .. }) =
        &cli.command
    {
        return rt.block_on(admin_command(
            cli, &process, file, source, snapshot, registry,
        ));
    }

    let _log_guard = match telemetry::init(&process) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let boot = match rt.block_on(server::boot(
        &process,
        file,
        source,
        snapshot,
        registry.clone(),
    )) {
        Ok(b) => b,
        Err(errs) => {
            print_errors(&errs);
            return ExitCode::FAILURE;
        }
    };
    // `_port_hold` lives as long as `run_forever` (which never returns).
    let (addr, _port_hold) = match server::listen_addr(&process) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let snapshot = &boot.snapshot;
    tracing::info!(config = %boot.source, providers = snapshot.provider_count(), "configuration loaded");
    if snapshot.provider_count() == 0 {
        let api = match (&process.admin_listen, &snapshot.admin_token) {
            (Some(listen), None) => format!(
                "or POST http://{}/api/providers on the admin listener (it accepts callers on this \
                 machine without a token while ADMIN_TOKEN and AUTH_TOKEN are unset)",
                listen.replace("0.0.0.0", "127.0.0.1")
            ),
            (Some(listen), Some(_)) => format!(
                "or POST http://{}/api/providers on the admin listener with `Authorization: Bearer \
                 <ADMIN_TOKEN, else AUTH_TOKEN>`",
                listen.replace("0.0.0.0", "127.0.0.1")
            ),
            (None, Some(_)) if process.admin_on_main => {
                "or POST /api/providers on this port with `Authorization: Bearer <ADMIN_TOKEN, else \
                 AUTH_TOKEN>`"
                    .to_string()
            }
            _ => "or set ADMIN_LISTEN=127.0.0.1:8001 (and ADMIN_TOKEN) to use the admin API".to_string(),
        };
        tracing::warn!(
            "no providers are configured, so every model is unknown; add a [[providers]] block to a TOML file \
             (see conf/gateway.toml) and start with --config <file>, {api}"
        );
    }
    for w in &access.warnings {
        tracing::warn!("{w}");
    }
    let server = server::build(&process, boot, &addr, cli.config.clone(), cli.upgrade);
    drop(rt);
    tracing::info!(%addr, "listening");
    // One machine-readable line on stdout for scripts and tests.
    println!("llm-orchestrator listening on http://{addr}");
    let _ = std::io::stdout().flush();
    server.run_forever()
}

/// `ALLOW_NO_AUTH` (the environment form of `--allow-no-auth`): a boolean,
/// anything else refused by name.
fn allow_no_auth_env() -> Result<bool, String> {
    match std::env::var("ALLOW_NO_AUTH") {
        Err(_) => Ok(false),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "false" | "no" | "off" => Ok(false),
            "1" | "true" | "yes" | "on" => Ok(true),
            _ => Err(format!(
                "ALLOW_NO_AUTH={v:?} is not a boolean (true/false, 1/0, yes/no, on/off)"
            )),
        },
    }
}

/// `export` and `import`: one admin call, to a running gateway or (with
/// `--offline`) to the admin routes in this process.
async fn admin_command(
    mut cli: Cli,
    process: &config::ProcessSettings,
    file: config::FileConfig,
    source: String,
    snapshot: config::Snapshot,
    registry: std::sync::Arc<HealthRegistry>,
) -> ExitCode {
    // `keys` owns its target (built from its arguments); the others borrow.
    let keys = match cli.command.take() {
        Some(Command::Keys { action }) => Some(action.request()),
        other => {
            cli.command = other;
            None
        }
    };
    let (target, method, path, content_type, body, output) =
        match (&cli.command, &keys) {
            (_, Some((target, method, path, body))) => (
                target,
                *method,
                path.clone(),
                Some("application/json").filter(|_| !body.is_empty()),
                body.clone(),
                None,
            ),
            (Some(c), None) => match c {
                Command::Export {
                    format,
                    include_keys,
                    output,
                    target,
                } => (
                    target,
                    "GET",
                    format!("/api/config/export?format={format}&include_keys={include_keys}"),
                    None,
                    Vec::new(),
                    output.clone(),
                ),
                Command::Import {
                    file,
                    format,
                    dry_run,
                    replace,
                    target,
                } => {
                    let body = if file.as_os_str() == "-" {
                        let mut b = Vec::new();
                        if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut b) {
                            eprintln!("error: cannot read standard input: {e}");
                            return ExitCode::FAILURE;
                        }
                        b
                    } else {
                        match std::fs::read(file) {
                            Ok(b) => b,
                            Err(e) => {
                                eprintln!("error: cannot read {}: {e}", file.display());
                                return ExitCode::FAILURE;
                            }
                        }
                    };
                    let format = format.clone().unwrap_or_else(|| {
                        if file.extension().is_some_and(|e| e == "json") {
                            "json".into()
                        } else {
                            "toml".into()
                        }
                    });
                    let ct = if format == "json" {
                        "application/json"
                    } else {
                        "application/toml"
                    };
                    (
                target,
                "POST",
                format!("/api/config/import?format={format}&dry_run={dry_run}&replace={replace}"),
                Some(ct),
                body,
                None,
            )
                }
                _ => return ExitCode::FAILURE,
            },
            (None, None) => return ExitCode::FAILURE,
        };
    let answer = if target.offline {
        let boot = match server::boot(process, file, source, snapshot, registry).await {
            Ok(b) => b,
            Err(errs) => {
                print_errors(&errs);
                return ExitCode::FAILURE;
            }
        };
        if boot.store.is_none() {
            eprintln!(
                "error: cannot open the database {}",
                llm_orchestrator::store::mask_url(&process.database_url)
            );
            return ExitCode::FAILURE;
        }
        let control = server::offline_control(process, boot, cli.config.clone());
        llm_orchestrator::admin::client::local(control, method, &path, content_type, body).await
    } else {
        let url = target.url.clone().unwrap_or_else(|| {
            let listen = process
                .admin_listen
                .clone()
                .unwrap_or_else(|| "127.0.0.1:8001".into());
            format!("http://{}", listen.replace("0.0.0.0", "127.0.0.1"))
        });
        let token = target
            .token
            .clone()
            .or_else(|| snapshot.admin_token.clone());
        llm_orchestrator::admin::client::remote(
            &url,
            token.as_deref(),
            method,
            &path,
            content_type,
            &body,
        )
        .await
        .map_err(|e| {
            format!("{e} (is the gateway running? use --url, or --offline for a stopped one)")
        })
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !(200..300).contains(&answer.status) {
        eprintln!(
            "error: the admin API answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        return ExitCode::FAILURE;
    }
    let secret = matches!(
        cli.command,
        Some(Command::Export {
            include_keys: true,
            ..
        })
    );
    let written = match output {
        Some(path) => write_output(&path, &answer.body, secret)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            let mut out = std::io::stdout();
            out.write_all(&answer.body)
                .and_then(|_| {
                    if answer.body.last() != Some(&b'\n') {
                        out.write_all(b"\n")
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| e.to_string())
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Write an export. One with keys in clear is created with mode 0600 from
/// the start (a temporary file in the same directory, renamed over the
/// target), so the keys are never readable by others, not even briefly and
/// not when the target already existed with a wider mode.
fn write_output(path: &std::path::Path, body: &[u8], secret: bool) -> std::io::Result<()> {
    if !secret {
        return std::fs::write(path, body);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options.open(&tmp).and_then(|mut f| {
        f.write_all(body)?;
        f.sync_all()
    });
    let result = result.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
