use clap::Parser;
use llm_orchestrator::cli::{Cli, Command, DbAction};
use llm_orchestrator::health::HealthRegistry;
use llm_orchestrator::{config, server, store, telemetry};
use std::io::Write;
use std::process::ExitCode;

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
                    println!("database {} is at schema version {v}", process.database_url);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("error: cannot open {}: {e}", process.database_url);
                ExitCode::FAILURE
            }
        };
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
    let addr = match server::listen_addr(&process) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let snapshot = &boot.snapshot;
    tracing::info!(config = %boot.source, providers = snapshot.provider_count(), "configuration loaded");
    if snapshot.provider_count() == 0 {
        tracing::warn!(
            "no providers are configured, so every model is unknown; add a [[providers]] block to a TOML file \
             (see conf/gateway.toml) and start with --config <file>, or POST /api/providers"
        );
    }
    if snapshot.auth_token.is_none() {
        tracing::warn!("AUTH_TOKEN is not set: only loopback clients are accepted; set AUTH_TOKEN to serve other hosts");
    }
    let server = server::build(&process, boot, &addr, cli.config.clone());
    drop(rt);
    tracing::info!(%addr, "listening");
    // One machine-readable line on stdout for scripts and tests.
    println!("llm-orchestrator listening on http://{addr}");
    let _ = std::io::stdout().flush();
    server.run_forever()
}
