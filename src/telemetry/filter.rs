//! The log filter as `LOG_LEVEL` spells it (read by the configuration's
//! checks too, so it depends on nothing else here).

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
