//! Clocks and key fingerprints: the leaves every other health file uses.

use std::sync::OnceLock;
use std::time::Instant;

/// Unix time in milliseconds (for display only; decisions use [`now_ms`]).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Milliseconds on a process-local monotonic clock (never 0 after start).
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    start.elapsed().as_millis() as u64 + 1
}

/// A stable, non-reversible identifier of a key (FNV-1a 64), the same in
/// every instance, so peers can name a key without sending it.
pub fn fingerprint(secret: &str) -> String {
    format!("{:016x}", fingerprint_bytes(secret.as_bytes()))
}

/// FNV-1a 64 of some bytes.
pub fn fingerprint_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
