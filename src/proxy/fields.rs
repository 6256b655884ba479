//! The header fields of an HTTP/1 head as read: slices of the bytes
//! received, looked up by a scan. Both halves of an exchange use it: the
//! client's request head (`downstream`) and the vendor's response head
//! (`h1`). A head has a dozen fields and the gateway asks for a handful;
//! building an `http::HeaderMap` (what Pingora's `RequestHeader` and
//! `ResponseHeader` hold) parsed every name into a `HeaderName` and hashed
//! it: ~1k instructions per field (callgrind), for fields mostly never
//! read.

use bytes::Bytes;

/// The fields of one head (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Fields {
    bytes: Bytes,
    spans: Vec<Span>,
}

/// Where one field's name and value are in [`Fields::bytes`].
#[derive(Debug, Clone, Copy)]
pub struct Span {
    name: u32,
    name_len: u32,
    value: u32,
    value_len: u32,
}

/// Where each of httparse's fields is in the buffer starting at `base`
/// (offsets, so they stay valid once the buffer is frozen into `Bytes`).
/// The buffer is a head bounded far below 4 GiB.
pub fn spans_of(base: *const u8, headers: &[httparse::Header<'_>]) -> Vec<Span> {
    let base = base as usize;
    headers
        .iter()
        .map(|h| Span {
            name: (h.name.as_ptr() as usize - base) as u32,
            name_len: h.name.len() as u32,
            value: (h.value.as_ptr() as usize - base) as u32,
            value_len: h.value.len() as u32,
        })
        .collect()
}

impl Fields {
    /// The fields at `spans` (from [`spans_of`]) in `bytes`.
    pub fn new(bytes: Bytes, spans: Vec<Span>) -> Fields {
        Fields { bytes, spans }
    }

    fn name(&self, s: &Span) -> &[u8] {
        &self.bytes[s.name as usize..(s.name + s.name_len) as usize]
    }

    fn value_of(&self, s: &Span) -> &[u8] {
        &self.bytes[s.value as usize..(s.value + s.value_len) as usize]
    }

    fn span(&self, name: &str) -> Option<&Span> {
        self.spans
            .iter()
            .find(|s| self.name(s).eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Every value of the field `name` (lower-case), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.spans
            .iter()
            .filter(move |s| self.name(s).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |s| self.value_of(s))
    }

    /// The first value of the field `name` (lower-case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.span(name).map(|s| self.value_of(s))
    }

    /// The first value of `name` when it is text (visible ASCII).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.span(name).is_some()
    }

    /// The first value of `name` as a `HeaderValue` sharing the head's
    /// bytes (no copy), to pass on.
    pub fn value(&self, name: &str) -> Option<http::HeaderValue> {
        self.span(name).map(|s| self.header_value(s))
    }

    fn header_value(&self, s: &Span) -> http::HeaderValue {
        let (start, len) = (s.value as usize, s.value_len as usize);
        // httparse accepted the value: visible ASCII, obs-text, spaces and
        // tabs only, which are the bytes a `HeaderValue` allows.
        pingora::http::header_value_from_raw(self.bytes.slice(start..start + len))
    }

    /// Every field as a name and a `HeaderValue`, in order; names that are
    /// not valid `HeaderName`s are left out.
    pub fn iter(&self) -> impl Iterator<Item = (http::HeaderName, http::HeaderValue)> + '_ {
        self.spans.iter().filter_map(|s| {
            let name = http::HeaderName::from_bytes(self.name(s)).ok()?;
            Some((name, self.header_value(s)))
        })
    }

    /// The fields as an `http` map, for the rare reader that wants one (a
    /// 429's reset, read by `health::park`).
    pub fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::with_capacity(self.spans.len());
        for (name, value) in self.iter() {
            map.append(name, value);
        }
        map
    }
}
