//! Lower-case hex, by table: [`super::hash`] runs on every request that
//! carries a key, and a `format!` per byte cost ~23k instructions there
//! (callgrind). A leaf module, so the limiter and the audit log use it too.

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}
