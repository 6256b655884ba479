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

    /// Take the listening sockets over from a running instance (zero-downtime
    /// binary upgrade): start the new binary with --upgrade, then send SIGQUIT to
    /// the old one. Both must use the same server.upgrade_sock.
    #[arg(long)]
    pub upgrade: bool,

    /// Start without AUTH_TOKEN although the main port is bound to a
    /// non-loopback address (e.g. APP_HOST=0.0.0.0). Without a token only
    /// loopback peers are served — and a reverse proxy on the same host makes
    /// every client a loopback peer. Also ALLOW_NO_AUTH=true.
    #[arg(long)]
    pub allow_no_auth: bool,

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
    /// Print the effective configuration (file + admin API changes), keys masked
    /// unless --include-keys. Talks to a running gateway's admin API, or with
    /// --offline reads the configured database directly.
    Export {
        /// `toml` or `json`.
        #[arg(long, default_value = "toml")]
        format: String,
        /// Include the vendor keys and tokens in clear (handle the output as a secret).
        #[arg(long)]
        include_keys: bool,
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Make a TOML/JSON document's providers, aliases and settings the API-managed
    /// configuration (providers the file declares are skipped). --dry-run prints
    /// what would change and changes nothing.
    Import {
        /// The document (`-` = standard input).
        file: PathBuf,
        /// `toml` or `json`; default from the file name (`.json` → json, else toml).
        #[arg(long)]
        format: Option<String>,
        /// Report the changes without applying them.
        #[arg(long)]
        dry_run: bool,
        /// Confirm an import that deletes more API-managed providers and
        /// aliases than it keeps (refused without it).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        target: AdminTarget,
    },
}

/// Where `export`/`import` send their admin calls.
#[derive(Debug, clap::Args)]
pub struct AdminTarget {
    /// The running gateway's admin API base URL (default: the configured admin
    /// listener, http://127.0.0.1:8001).
    #[arg(long, env = "LLM_ORCHESTRATOR_ADMIN_URL")]
    pub url: Option<String>,
    /// Admin bearer token (default: ADMIN_TOKEN, then AUTH_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// Work on the configured database (DATABASE_URL) in this process instead of
    /// a running gateway: for backups and seeding while the gateway is stopped.
    /// A running gateway does not see offline imports until it restarts.
    #[arg(long, conflicts_with = "url")]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum DbAction {
    /// Create or upgrade the SQLite schema (also done automatically on start).
    Migrate,
}
