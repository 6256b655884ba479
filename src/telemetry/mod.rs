//! Logging: `tracing` for our events, Pingora's `log` records captured into
//! the same subscriber, written by a background thread so a slow disk or
//! terminal never stalls a request.

pub mod filter;
mod redact;

pub use filter::parse_filter;
pub use redact::{mask_secret, Redactor};

use crate::config::{LogRotation, ProcessSettings};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;

/// At TRACE, Pingora's HTTP client logs every upstream request head as raw
/// bytes (`Writing request header: …`, with the vendor key in
/// `Authorization` / `x-api-key` / `x-goog-api-key`) and every response
/// body (which can echo a key), and its proxy logs every client request
/// head (`Request header: …`, with the client's token). Those modules are
/// capped at DEBUG whatever the filter says; the rest of TRACE stays
/// available.
fn without_wire_dumps(mut filter: EnvFilter) -> EnvFilter {
    if filter.max_level_hint() != Some(tracing_subscriber::filter::LevelFilter::TRACE) {
        return filter;
    }
    for target in ["pingora_core::protocols::http::v1::client", "pingora_proxy"] {
        if let Ok(d) = format!("{target}=debug").parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Install the global subscriber. Keep the guard alive for the life of the
/// process: dropping it flushes and stops the writer thread.
pub fn init(settings: &ProcessSettings) -> Result<WorkerGuard, String> {
    let filter = without_wire_dumps(parse_filter(&settings.log_level)?);
    // The writer's queue is preallocated: the default 128,000 lines cost
    // ~4 MB of resident memory from the start. 8,192 lines still absorb a
    // burst; past that, lines are dropped rather than blocking a request
    // (as before: the default queue is lossy too).
    let queue = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(8192)
        .lossy(true);
    let (writer, guard) = match &settings.log_file {
        Some(path) => queue.finish(log_file(
            std::path::Path::new(path),
            settings.log_rotation,
            settings.log_max_files,
        )?),
        None => queue.finish(std::io::stderr()),
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

/// The log file appender: `dir/stem.ext` becomes `dir/stem.2026-11-26.ext`
/// (daily), `dir/stem.2026-11-26-13.ext` (hourly) or stays `dir/stem.ext`
/// (never). Old files beyond `max_files` are deleted at each rotation.
pub fn log_file(
    path: &std::path::Path,
    rotation: LogRotation,
    max_files: usize,
) -> Result<RollingFileAppender, String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("LOG_FILE {} has no file name", path.display()))?;
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, Some(e)),
        _ => (name, None),
    };
    let mut builder = RollingFileAppender::builder().rotation(match rotation {
        LogRotation::Daily => Rotation::DAILY,
        LogRotation::Hourly => Rotation::HOURLY,
        LogRotation::Never => Rotation::NEVER,
    });
    builder = if rotation == LogRotation::Never {
        builder.filename_prefix(name)
    } else {
        let b = builder.filename_prefix(stem);
        match ext {
            Some(e) => b.filename_suffix(e),
            None => b,
        }
    };
    if max_files > 0 && rotation != LogRotation::Never {
        builder = builder.max_log_files(max_files);
    }
    builder
        .build(dir)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn daily_file_has_the_date_before_the_extension() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = log_file(&dir.path().join("gateway.log"), LogRotation::Daily, 3).expect("open");
        w.write_all(b"line\n").expect("write");
        w.flush().expect("flush");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        let n = &names[0];
        assert!(
            n.starts_with("gateway.")
                && n.ends_with(".log")
                && n.len() == "gateway.2026-11-26.log".len(),
            "{n}"
        );
    }

    #[test]
    fn never_keeps_the_exact_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = log_file(&dir.path().join("g.log"), LogRotation::Never, 3).expect("open");
        w.write_all(b"x\n").expect("write");
        w.flush().expect("flush");
        assert!(dir.path().join("g.log").exists());
    }
}
