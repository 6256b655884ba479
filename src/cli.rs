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
    /// Client keys (`/api/keys`): list, create (prints the secret, the only
    /// time it is shown), update, revoke (disable) or delete.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// `llm-orchestrator keys …`: each is one `/api/keys` call; the answer's
/// JSON is printed.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Every key, masked.
    List {
        #[command(flatten)]
        target: AdminTarget,
    },
    /// A new key; the answer holds its secret (`llmo-…`), shown this once.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        fields: KeyFields,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Change the given fields of a key.
    Update {
        /// The key's id (`keys list`).
        id: i64,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: KeyFields,
        /// Remove a limit or the expiry: rpm, tpm, max-concurrent, expires
        /// (repeatable).
        #[arg(long, value_parser = ["rpm", "tpm", "max-concurrent", "expires"])]
        unset: Vec<String>,
        /// Enable the key again.
        #[arg(long, conflicts_with = "disabled")]
        enabled: bool,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Disable a key (it answers 401 until updated with --enabled).
    Revoke {
        id: i64,
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Delete a key for good.
    Delete {
        id: i64,
        #[command(flatten)]
        target: AdminTarget,
    },
}

/// The fields `keys create` and `keys update` share.
#[derive(Debug, clap::Args)]
pub struct KeyFields {
    /// Owner or team label.
    #[arg(long)]
    pub owner: Option<String>,
    /// A model name or glob the key may use (repeatable; none: every model).
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// A client API the key may use: openai, anthropic, responses, gemini
    /// (repeatable; none: every API).
    #[arg(long = "api")]
    pub apis: Vec<String>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<u32>,
    /// Tokens (input + output) per minute.
    #[arg(long)]
    pub tpm: Option<u64>,
    /// Requests in flight at once.
    #[arg(long)]
    pub max_concurrent: Option<u32>,
    /// Unix time in milliseconds after which the key stops working.
    #[arg(long)]
    pub expires_ms: Option<i64>,
    /// Create the key disabled / disable it.
    #[arg(long)]
    pub disabled: bool,
}

impl KeyFields {
    fn into_json(self, doc: &mut serde_json::Map<String, serde_json::Value>) {
        use serde_json::json;
        if let Some(v) = self.owner {
            doc.insert("owner".into(), json!(v));
        }
        if !self.models.is_empty() {
            doc.insert("models".into(), json!(self.models));
        }
        if !self.apis.is_empty() {
            doc.insert("apis".into(), json!(self.apis));
        }
        if let Some(v) = self.rpm {
            doc.insert("rpm".into(), json!(v));
        }
        if let Some(v) = self.tpm {
            doc.insert("tpm".into(), json!(v));
        }
        if let Some(v) = self.max_concurrent {
            doc.insert("max_concurrent".into(), json!(v));
        }
        if let Some(v) = self.expires_ms {
            doc.insert("expires_ms".into(), json!(v));
        }
        if self.disabled {
            doc.insert("enabled".into(), json!(false));
        }
    }
}

impl KeysAction {
    /// The admin call: target, method, path and JSON body (empty: none).
    pub fn request(self) -> (AdminTarget, &'static str, String, Vec<u8>) {
        let mut doc = serde_json::Map::new();
        let (target, method, path) = match self {
            KeysAction::List { target } => (target, "GET", "/api/keys".to_string()),
            KeysAction::Create {
                name,
                fields,
                target,
            } => {
                doc.insert("name".into(), name.into());
                fields.into_json(&mut doc);
                (target, "POST", "/api/keys".to_string())
            }
            KeysAction::Update {
                id,
                name,
                fields,
                unset,
                enabled,
                target,
            } => {
                if let Some(n) = name {
                    doc.insert("name".into(), n.into());
                }
                fields.into_json(&mut doc);
                for u in unset {
                    let field = match u.as_str() {
                        "max-concurrent" => "max_concurrent",
                        "expires" => "expires_ms",
                        other => other,
                    };
                    doc.insert(field.to_string(), serde_json::Value::Null);
                }
                if enabled {
                    doc.insert("enabled".into(), true.into());
                }
                (target, "PATCH", format!("/api/keys/{id}"))
            }
            KeysAction::Revoke { id, target } => {
                doc.insert("enabled".into(), false.into());
                (target, "PATCH", format!("/api/keys/{id}"))
            }
            KeysAction::Delete { id, target } => (target, "DELETE", format!("/api/keys/{id}")),
        };
        let body = if method == "GET" || method == "DELETE" {
            Vec::new()
        } else {
            serde_json::Value::Object(doc).to_string().into_bytes()
        };
        (target, method, path, body)
    }
}

/// Where `export`/`import`/`keys` send their admin calls.
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
