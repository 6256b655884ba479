//! Command-line interface.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "llm-orchestrator",
    version,
    about = "LLM API gateway on Cloudflare Pingora: OpenAI-compatible routing, key balancing and failover",
    long_about = "LLM API gateway on Cloudflare Pingora.\n\n\
        Without --config the gateway starts from embedded defaults (no providers). \
        Environment variables of the original design (APP_HOST, APP_PORT, AUTH_TOKEN, LOG_LEVEL, \
        LOG_FILE, DATABASE_URL, REDIS_URL, REDIS_ENABLED, HEALTH_CHECK_*) override the file."
)]
pub struct Cli {
    /// TOML configuration file (see conf/gateway.toml).
    #[arg(short, long, env = "LLM_ORCHESTRATOR_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Validate the configuration (file + environment), print every error, and exit:
    /// status 0 when valid, 1 when not.
    #[arg(long, global = true)]
    pub check: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Validate the configuration and exit (same as --check).
    Check,
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Create or upgrade the SQLite schema (also done automatically on start).
    Migrate,
}
