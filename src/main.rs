use clap::Parser;
use llm_orchestrator::cli::{Cli, Command};
use llm_orchestrator::health::HealthRegistry;
use llm_orchestrator::{server, telemetry};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let check = cli.check || matches!(cli.command, Some(Command::Check));
    let registry = HealthRegistry::new();
    let (process, snapshot, source) =
        match server::load_and_compile(cli.config.as_deref(), &registry) {
            Ok(loaded) => loaded,
            Err(errs) => {
                eprintln!(
                    "configuration is invalid ({} error{}):",
                    errs.0.len(),
                    if errs.0.len() == 1 { "" } else { "s" }
                );
                for e in &errs.0 {
                    eprintln!("  {e}");
                }
                return ExitCode::FAILURE;
            }
        };
    if check {
        println!(
            "configuration OK ({source}): {} provider{}",
            snapshot.provider_count(),
            if snapshot.provider_count() == 1 {
                ""
            } else {
                "s"
            }
        );
        return ExitCode::SUCCESS;
    }

    let _log_guard = match telemetry::init(&process) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
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
    tracing::info!(config = %source, providers = snapshot.provider_count(), "configuration loaded");
    if snapshot.provider_count() == 0 {
        tracing::warn!(
            "no providers are configured, so every model is unknown; add a [[providers]] block to a TOML file \
             (see conf/gateway.toml) and start with --config <file>"
        );
    }
    if snapshot.auth_token.is_none() {
        tracing::warn!("AUTH_TOKEN is not set: only loopback clients are accepted; set AUTH_TOKEN to serve other hosts");
    }
    let server = server::build(&process, snapshot, registry, &addr, cli.config.clone());
    tracing::info!(%addr, "listening");
    // One machine-readable line on stdout for scripts and tests.
    println!("llm-orchestrator listening on http://{addr}");
    let _ = std::io::stdout().flush();
    server.run_forever()
}
