//! Lower-case hex, by table (a `format!` per byte cost ~23k instructions
//! a key hash in callgrind). A leaf module, so the limiter and the audit
//! log use it too.

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// The 32 bytes written as 64 hex digits (either case) in `text`; `None`
/// for anything else.
pub fn decode32(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let nibble = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode32_reverses_hex() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let text = super::hex(&bytes);
        assert_eq!(super::decode32(&text), Some(bytes));
        assert_eq!(super::decode32(&text.to_uppercase()), Some(bytes));
        assert_eq!(super::decode32(&text[1..]), None);
        assert_eq!(super::decode32(&format!("g{}", &text[1..])), None);
    }
}
