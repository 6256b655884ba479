//! Logging: `tracing` for our events, Pingora's `log` records captured into
//! the same subscriber, written by a background thread so a slow disk or
//! terminal never stalls a request.

use crate::config::ProcessSettings;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Accept the original `LOG_LEVEL` values (`INFO`, `debug`, …) as well as
/// full `tracing` filter directives.
pub fn parse_filter(level: &str) -> Result<EnvFilter, String> {
    let lower = level.trim().to_ascii_lowercase();
    let directive = match lower.as_str() {
        "warning" => "warn".to_string(),
        "critical" | "fatal" => "error".to_string(),
        "" => "info".to_string(),
        _ => lower,
    };
    EnvFilter::try_new(&directive).map_err(|e| e.to_string())
}

/// Install the global subscriber. Keep the guard alive for the life of the
/// process: dropping it flushes and stops the writer thread.
pub fn init(settings: &ProcessSettings) -> Result<WorkerGuard, String> {
    let filter = parse_filter(&settings.log_level)?;
    let (writer, guard) = match &settings.log_file {
        Some(path) => {
            let path = std::path::Path::new(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            tracing_appender::non_blocking(file)
        }
        None => tracing_appender::non_blocking(std::io::stderr()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .with_target(true);
    let result = if settings.production {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(guard)
}
