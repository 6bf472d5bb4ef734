//! The exporter thread's read-back of spooled frames, natively: `split_frames` (frame headers and
//! CRCs of one batch) and `sink_line` (a common payload spliced into the embedded sink's JSON line);
//! and on the recording thread `canonical_record` (the canonical form's attributes object) and
//! `chained_frame` (a sealed record's whole frame); and `EventIds`, the UUIDv7 event ids of
//! `otel_audit/ids.py` (one Python call instead of a lock, a clock read, a random draw and three
//! formatted numbers: ~14k instructions an id in Python).
//!
//! Each gives exactly what its Python version in `spool.py`, `frames.py` or `canonical.py`
//! gives; `sink_line` and `canonical_record` answer `None` off their common shape (a fork, parents,
//! an escape in the trailer; a float, a big int, a subclass), and the Python version handles
//! it, so the bytes never depend on whether this module is built.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use memchr::memchr;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyList, PyString, PyTuple};

/// A frame's header: payload length, then zlib's CRC-32 of the payload (both little-endian u32).
const HEADER: usize = 8;
/// Between a payload's canonical bytes and its trailer (`frames.SEPARATOR`).
const SEPARATOR: u8 = 0x1e;
const HEAD_PREFIX: &[u8] = b"[\"otel-audit/chain/1\",";

/// CRC-32 (IEEE, reflected, as `zlib.crc32`), eight table look-ups per eight bytes.
const CRC_TABLES: [[u32; 256]; 8] = crc_tables();

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        tables[0][n] = c;
        n += 1;
    }
    let mut t = 1;
    while t < 8 {
        let mut n = 0;
        while n < 256 {
            let prev = tables[t - 1][n];
            tables[t][n] = (prev >> 8) ^ tables[0][(prev & 0xFF) as usize];
            n += 1;
        }
        t += 1;
    }
    tables
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let low = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let t = &CRC_TABLES;
        crc = t[7][(low & 0xFF) as usize]
            ^ t[6][((low >> 8) & 0xFF) as usize]
            ^ t[5][((low >> 16) & 0xFF) as usize]
            ^ t[4][(low >> 24) as usize]
            ^ t[3][chunk[4] as usize]
            ^ t[2][chunk[5] as usize]
            ^ t[1][chunk[6] as usize]
            ^ t[0][chunk[7] as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ CRC_TABLES[0][((crc ^ byte as u32) & 0xFF) as usize];
    }
    !crc
}

fn le_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

/// `spool.split_frames`: up to `max_count` complete, intact payloads from the start of `data`, and
/// where they end (the first torn or corrupt frame stops the batch).
#[pyfunction]
fn split_frames<'py>(py: Python<'py>, data: &[u8], max_count: i64) -> PyResult<(Bound<'py, PyList>, usize)> {
    let payloads = PyList::empty(py);
    let (mut offset, size) = (0usize, data.len());
    let mut count = 0i64;
    while offset + HEADER <= size && count < max_count {
        let length = le_u32(data, offset) as usize;
        let crc = le_u32(data, offset + 4);
        let end = offset + HEADER + length;
        if end > size {
            break;
        }
        let payload = &data[offset + HEADER..end];
        if crc32(payload) != crc {
            break;
        }
        payloads.append(PyBytes::new(py, payload))?;
        count += 1;
        offset = end;
    }
    Ok((payloads, offset))
}

/// `zlib.crc32(data)`, for the tests that hold this implementation to zlib's.
#[pyfunction(name = "crc32")]
fn crc32_py(data: &[u8]) -> u32 {
    crc32(data)
}

/// A cursor over the canonical head, matching what `frames._HEAD` matches (and nothing else).
struct Head<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Head<'a> {
    fn literal(&mut self, text: &[u8]) -> Option<()> {
        if self.data[self.at..].starts_with(text) {
            self.at += text.len();
            Some(())
        } else {
            None
        }
    }

    /// `"[^"\\]*"`: a string without escapes, quotes included.
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.literal(b"\"")?;
        let rest = &self.data[self.at..];
        let close = memchr(b'"', rest)?;
        if memchr(b'\\', &rest[..close]).is_some() {
            return None;
        }
        self.at += close + 1;
        Some(&self.data[start..self.at])
    }

    /// `\d+` (ASCII digits; the regex is a bytes pattern).
    fn digits(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        while self.at < self.data.len() && self.data[self.at].is_ascii_digit() {
            self.at += 1;
        }
        if self.at == start {
            None
        } else {
            Some(&self.data[start..self.at])
        }
    }

    /// `null|-?\d+`
    fn severity(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        if self.literal(b"null").is_some() {
            return Some(&self.data[start..self.at]);
        }
        if self.data.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        self.digits()?;
        Some(&self.data[start..self.at])
    }

    /// `[0-9a-f]*`
    fn lower_hex(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.at < self.data.len() && matches!(self.data[self.at], b'0'..=b'9' | b'a'..=b'f') {
            self.at += 1;
        }
        &self.data[start..self.at]
    }
}

struct Fields<'a> {
    event_name: &'a [u8],
    ts: &'a [u8],
    severity: &'a [u8],
    severity_text: &'a [u8],
    trace_hex: &'a [u8],
    span_hex: &'a [u8],
    end: usize,
}

fn parse_head(canonical: &[u8]) -> Option<Fields<'_>> {
    let mut head = Head { data: canonical, at: 0 };
    head.literal(HEAD_PREFIX)?;
    let event_name = head.plain_string()?;
    head.literal(b",")?;
    let ts = head.digits()?;
    head.literal(b",")?;
    let severity = head.severity()?;
    head.literal(b",")?;
    let severity_text = head.plain_string()?;
    head.literal(b",\"")?;
    let trace_hex = head.lower_hex();
    head.literal(b"\",\"")?;
    let span_hex = head.lower_hex();
    head.literal(b"\",")?;
    Some(Fields { event_name, ts, severity, severity_text, trace_hex, span_hex, end: head.at })
}

fn line(data: &[u8], scope_and_resource: &[u8]) -> Option<Vec<u8>> {
    let sep = memchr(SEPARATOR, data)?;
    let (canonical, tail) = (&data[..sep], &data[sep + 1..]);
    if tail.len() < 2 || memchr(b'\\', tail).is_some() {
        return None;
    }
    let parts: Vec<&[u8]> = tail[1..tail.len() - 1].split(|&b| b == b',').collect();
    if parts.len() != 8 || parts[5] != b"null" || parts[6] != b"null" || !parts[3].starts_with(b"\"") {
        return None;
    }
    let (observed, flags, seq, prev, mac, offset) = (parts[0], parts[1], parts[2], parts[3], parts[4], parts[7]);
    if offset.is_empty() || offset.len() > 18 || !offset.iter().all(u8::is_ascii_digit) {
        return None; // Python's int() takes more spellings: let it decide
    }
    let offset: usize = std::str::from_utf8(offset).ok()?.parse().ok()?;
    let head = parse_head(canonical)?;
    if offset == 0 || head.end > offset - 1 || offset > canonical.len().saturating_sub(1) {
        return None; // slices Python would clamp: the Python version decides
    }
    let attrs_json = &canonical[offset..canonical.len() - 1];
    let body = &canonical[head.end..offset - 1];
    let null_if_empty = |text: &'static [u8], value: &[u8]| -> bool { value == text };
    let mut out = Vec::with_capacity(data.len() + scope_and_resource.len() + 256);
    out.extend_from_slice(b"{\"time_unix_nano\":");
    out.extend_from_slice(head.ts);
    out.extend_from_slice(b",\"observed_time_unix_nano\":");
    out.extend_from_slice(observed);
    out.extend_from_slice(b",\"event_name\":");
    out.extend_from_slice(if null_if_empty(b"\"\"", head.event_name) { b"null" } else { head.event_name });
    out.extend_from_slice(b",\"severity_number\":");
    out.extend_from_slice(head.severity);
    out.extend_from_slice(b",\"severity_text\":");
    out.extend_from_slice(if null_if_empty(b"\"\"", head.severity_text) { b"null" } else { head.severity_text });
    out.extend_from_slice(b",\"body\":");
    out.extend_from_slice(body);
    out.extend_from_slice(b",\"attributes\":");
    if !attrs_json.is_empty() {
        out.extend_from_slice(&attrs_json[..attrs_json.len() - 1]);
    }
    if attrs_json != b"{}" {
        out.push(b',');
    }
    out.extend_from_slice(b"\"audit.chain.seq\":");
    out.extend_from_slice(seq);
    out.extend_from_slice(b",\"audit.chain.prev\":");
    out.extend_from_slice(prev);
    out.extend_from_slice(b",\"audit.chain.mac\":");
    out.extend_from_slice(mac);
    out.extend_from_slice(b"},\"trace_id\":\"");
    out.extend_from_slice(head.trace_hex);
    out.extend_from_slice(b"\",\"span_id\":\"");
    out.extend_from_slice(head.span_hex);
    out.extend_from_slice(b"\",\"trace_flags\":");
    out.extend_from_slice(flags);
    out.extend_from_slice(scope_and_resource);
    out.extend_from_slice(b"}\n");
    Some(out)
}

/// `frames.sink_line` for the common payload, or `None` where the Python version must decide.
#[pyfunction]
fn sink_line<'py>(py: Python<'py>, data: &[u8], scope_and_resource: &[u8]) -> Option<Bound<'py, PyBytes>> {
    line(data, scope_and_resource).map(|out| PyBytes::new(py, &out))
}

// -- the canonical attributes object (main thread, `canonical.canonical_parts`) --------------------

/// Deeper nesting than this is left to Python (its encoder, not a Rust stack, decides).
const MAX_DEPTH: u32 = 32;
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes `json.encoder.encode_basestring_ascii` writes unchanged: printable ASCII but `"` and `\`.
const fn plain_bytes() -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        table[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    table
}
const PLAIN: [bool; 256] = plain_bytes();

/// True when every byte is in `PLAIN`, tested eight bytes at a time.
fn all_plain(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        if !plain_word(u64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]])) {
            return false;
        }
    }
    let rest = chunks.remainder();
    let mut padded = [b' '; 8]; // a space is plain: the short tail is tested as one word too
    padded[..rest.len()].copy_from_slice(rest);
    plain_word(u64::from_le_bytes(padded))
}

/// No byte of `x` below 0x20, at or above 0x7F, `"` or `\\` (each test sets a top bit where it
/// holds; carries can only add false alarms next to a true one, so the word's answer is exact).
fn plain_word(x: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(ONES * 0x20) & !x;
    let from_del = x.wrapping_add(ONES * (0x80 - 0x7F)) | x;
    let quote = x ^ (ONES * b'"' as u64);
    let backslash = x ^ (ONES * b'\\' as u64);
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | from_del | is_quote | is_backslash) & TOPS == 0
}

fn push_u_escape(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((unit >> shift) & 0xF) as usize]);
    }
}

/// `encode_basestring_ascii(text)`: quoted, `\uXXXX` (lower-case hex, surrogate pairs above the
/// BMP) for everything outside printable ASCII, the short escapes where JSON has them.
fn push_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    if all_plain(bytes) {
        out.extend_from_slice(bytes);
    } else {
        for ch in text.chars() {
            let c = ch as u32;
            if c < 0x80 && PLAIN[c as usize] {
                out.push(c as u8);
                continue;
            }
            match ch {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                _ if c >= 0x10000 => {
                    let v = c - 0x10000;
                    push_u_escape(out, 0xD800 | (v >> 10));
                    push_u_escape(out, 0xDC00 | (v & 0x3FF));
                }
                _ => push_u_escape(out, c),
            }
        }
    }
    out.push(b'"');
}

fn push_int(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// One value as the canonical encoder writes it, or `None` for anything this does not cover
/// exactly: floats, ints beyond 64 bits, subclasses, text with lone surrogates, non-string keys.
fn push_value(out: &mut Vec<u8>, value: &Bound<'_, PyAny>, depth: u32) -> Option<()> {
    if value.is_exact_instance_of::<PyString>() {
        push_string(out, value.downcast::<PyString>().ok()?.to_str().ok()?);
    } else if value.is_none() {
        out.extend_from_slice(b"null");
    } else if value.is_exact_instance_of::<PyBool>() {
        out.extend_from_slice(if value.is_truthy().ok()? { b"true" } else { b"false" });
    } else if value.is_exact_instance_of::<PyInt>() {
        push_int(out, value.extract::<i64>().ok()?);
    } else if depth >= MAX_DEPTH {
        return None;
    } else if value.is_exact_instance_of::<PyDict>() {
        push_object(out, value.downcast::<PyDict>().ok()?, depth + 1)?;
    } else if value.is_exact_instance_of::<PyList>() || value.is_exact_instance_of::<PyTuple>() {
        out.push(b'[');
        for (index, item) in value.try_iter().ok()?.enumerate() {
            if index > 0 {
                out.push(b',');
            }
            push_value(out, &item.ok()?, depth + 1)?;
        }
        out.push(b']');
    } else {
        return None;
    }
    Some(())
}

/// The first eight bytes as a big-endian number (zero-padded): ordered as the bytes are.
fn prefix(bytes: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = bytes.len().min(8);
    head[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(head)
}

/// A dict with string keys, sorted as Python sorts them (code points, which is UTF-8 byte order).
fn push_object(out: &mut Vec<u8>, dict: &Bound<'_, PyDict>, depth: u32) -> Option<()> {
    let mut owned = Vec::with_capacity(dict.len());
    for (key, value) in dict.iter() {
        if !key.is_exact_instance_of::<PyString>() {
            return None;
        }
        owned.push((key.downcast_into::<PyString>().ok()?, value));
    }
    let mut items = Vec::with_capacity(owned.len());
    for (key, value) in &owned {
        let text = key.to_str().ok()?;
        items.push((prefix(text.as_bytes()), text, value));
    }
    // Most keys differ in their first eight bytes: compare those as one number, then the rest.
    items.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    out.push(b'{');
    for (index, (_, text, value)) in items.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        push_string(out, text);
        out.push(b':');
        push_value(out, value, depth)?;
    }
    out.push(b'}');
    Some(())
}

/// `head + JSON(attributes) + "]"` as `canonical.canonical_parts` builds it, or `None` where the
/// Python encoders must write the attributes (the same bytes, by the property tests).
#[pyfunction]
fn canonical_record<'py>(py: Python<'py>, head: &str, attributes: &Bound<'py, PyDict>) -> Option<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(head.len() + 64 * attributes.len() + 2);
    out.extend_from_slice(head.as_bytes());
    push_object(&mut out, attributes, 0)?;
    out.push(b']');
    Some(PyBytes::new(py, &out))
}

/// `spool.encode_frame(frames.chained_payload(...))` in one buffer: the header (length, CRC-32),
/// the canonical bytes, the separator and the trailer of the sealer's common record (no parents,
/// no fork link; `prev` and `mac` are the chain's own hex digests).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn chained_frame<'py>(py: Python<'py>, canonical: &[u8], attrs_offset: i64, observed: i64, flags: i64, seq: i64,
                      prev: &str, mac: &str) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(HEADER + canonical.len() + 64 + prev.len() + mac.len() + 40);
    out.extend_from_slice(&[0u8; HEADER]);
    out.extend_from_slice(canonical);
    out.push(SEPARATOR);
    out.push(b'[');
    push_int(&mut out, observed);
    out.push(b',');
    push_int(&mut out, flags);
    out.push(b',');
    push_int(&mut out, seq);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(prev.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(mac.as_bytes());
    out.extend_from_slice(b"\",null,null,");
    push_int(&mut out, attrs_offset);
    out.push(b']');
    let length = (out.len() - HEADER) as u32;
    let crc = crc32(&out[HEADER..]);
    out[..4].copy_from_slice(&length.to_le_bytes());
    out[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    PyBytes::new(py, &out)
}

/// The state behind one process's event ids: the last millisecond used, the counter within it,
/// and a SplitMix64 stream for the 62 random bits (uniqueness, not secrecy; reseeded in forked
/// children from `os.urandom`, as Python's `random` module reseeds itself).
struct IdState {
    last_ms: u64,
    seq: u64,
    random: u64,
}

#[pyclass(frozen)]
struct EventIds {
    state: Mutex<IdState>,
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn push_hex(out: &mut [u8], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut value = value;
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 0xF) as usize];
        value >>= 4;
    }
}

#[pymethods]
impl EventIds {
    #[new]
    fn new(seed: u64) -> Self {
        EventIds { state: Mutex::new(IdState { last_ms: 0, seq: 0, random: seed }) }
    }

    /// A forked child's fresh random stream (its clock state stays: ids stay monotonic).
    fn reseed(&self, seed: u64) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).random = seed;
    }

    /// The next id now (`ids.new_event_id`).
    fn next<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        self.at(py, now_ms)
    }

    /// The next id as if the clock read `now_ms`: the millisecond, or the last one used when the
    /// clock has not moved past it (or went back), with the 12-bit counter breaking ties and the
    /// next millisecond borrowed when the counter runs out.
    fn at<'py>(&self, py: Python<'py>, now_ms: u64) -> Bound<'py, PyString> {
        let (ms, seq, random) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut ms = now_ms;
            if ms <= state.last_ms {
                ms = state.last_ms;
                state.seq += 1;
                if state.seq > 0xFFF {
                    ms += 1;
                    state.seq = 0;
                }
            } else {
                state.seq = 0;
            }
            state.last_ms = ms;
            (ms, state.seq, splitmix64(&mut state.random))
        };
        let low = (0b10u64 << 62) | (random >> 2); // the RFC 9562 variant, then 62 random bits
        let mut text = *b"00000000-0000-7000-0000-000000000000";
        push_hex(&mut text[0..8], (ms >> 16) & 0xFFFF_FFFF);
        push_hex(&mut text[9..13], ms & 0xFFFF);
        push_hex(&mut text[15..18], seq);
        push_hex(&mut text[19..23], low >> 48);
        push_hex(&mut text[24..36], low & 0xFFFF_FFFF_FFFF);
        PyString::new(py, std::str::from_utf8(&text).unwrap_or_default())
    }
}

#[pymodule]
fn _codec(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(split_frames, module)?)?;
    module.add_function(wrap_pyfunction!(sink_line, module)?)?;
    module.add_function(wrap_pyfunction!(crc32_py, module)?)?;
    module.add_function(wrap_pyfunction!(canonical_record, module)?)?;
    module.add_function(wrap_pyfunction!(chained_frame, module)?)?;
    module.add_class::<EventIds>()?;
    Ok(())
}
