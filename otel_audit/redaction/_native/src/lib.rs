//! The redaction engine's scan loop, natively: the same plan entries, the same regexes (PCRE2,
//! which reads Python's `re` syntax for these patterns the same way), the same candidate loop as
//! `text_scan.find_validated`, with validators and the built-in key rules still decided by Python callbacks.
//!
//! Only texts where PCRE2 and Python `re` provably agree are scanned here: ASCII without the
//! separators U+001C..U+001F (Python's `\s` matches them, PCRE2's does not). For any other text,
//! and if PCRE2 reports an error (match or JIT-stack limit), `scan` returns `None` and the engine
//! scans the text in Python, so the result never depends on whether this module is built.

use memchr::memmem::Finder;
use pcre2::bytes::{CaptureLocations, Regex, RegexBuilder};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::collections::HashMap;
use std::sync::Mutex;

/// How many key-name verdicts are remembered (names repeat: `password`, `token`, `created`).
const NAME_CACHE_LIMIT: usize = 4096;

struct Member {
    detector: PyObject,
    accept: Option<PyObject>,
    keyed: bool,
    extend_left: Option<[bool; 128]>,
}

struct Entry {
    regex: Regex,
    min_width: usize,
    /// Per member: feature bits of which each must meet the text's (one member suffices).
    requires: Vec<Vec<u32>>,
    /// Searchers built once: building one per look-up cost more than the look-up itself.
    literals: Option<Vec<Finder<'static>>>,
    lower_literals: Vec<Finder<'static>>,
    gate: Option<PyObject>,
    members: Vec<Member>,
    /// Capture index of `value` (single-member entries only, as in `text_scan.find_validated`).
    value_group: Option<usize>,
    /// Capture indices of `_d0`, `_d1`, ... (entries that scan several detectors in one regex).
    member_groups: Vec<usize>,
}

/// Why a scan stopped before it finished.
enum Stop {
    /// PCRE2 could not answer (a limit): the caller scans the text in Python.
    Engine,
    /// A Python callback raised: the error is passed on unchanged.
    Python(PyErr),
}

impl From<PyErr> for Stop {
    fn from(error: PyErr) -> Self {
        Stop::Python(error)
    }
}

#[pyclass(module = "otel_audit.redaction._scanner", frozen)]
struct Scanner {
    entries: Vec<Entry>,
    need_chars: Vec<u8>,
    max_rejections: usize,
    judge: PyObject,
    names: Mutex<HashMap<Vec<u8>, bool>>,
}

type MemberSpec = (PyObject, Option<PyObject>, bool, String);
type EntrySpec = (String, usize, Vec<Vec<u32>>, Option<Vec<String>>, Vec<String>, Option<PyObject>, Vec<MemberSpec>);

#[pymethods]
impl Scanner {
    /// `entries`: the engine's plan, one tuple per entry: (pattern with inline flags, shortest
    /// match, per-member feature requirements, literals, lower-case literals, gate, members);
    /// a member is (detector, validator, keyed, characters extended over to the left).
    /// `judge(name) -> bool`: is this key name a secret name (the built-in key rules).
    #[new]
    fn new(entries: Vec<EntrySpec>, judge: PyObject, need_chars: String, max_rejections: usize) -> PyResult<Self> {
        let mut built = Vec::with_capacity(entries.len());
        for (index, (pattern, min_width, requires, literals, lower_literals, gate, members)) in entries.into_iter().enumerate() {
            let regex = RegexBuilder::new()
                .jit_if_available(true)
                .build(&pattern)
                .map_err(|error| PyValueError::new_err(format!("scan plan entry {index}: PCRE2 cannot compile its pattern: {error}")))?;
            let names = regex.capture_names().to_vec();
            let group = |name: &str| names.iter().position(|n| n.as_deref() == Some(name));
            let value_group = if members.len() == 1 { group("value") } else { None };
            let mut member_groups = Vec::new();
            if members.len() > 1 {
                for member in 0..members.len() {
                    member_groups.push(group(&format!("_d{member}")).ok_or_else(|| {
                        PyValueError::new_err(format!("scan plan entry {index}: no group _d{member} for member {member}"))
                    })?);
                }
            }
            let members = members
                .into_iter()
                .map(|(detector, accept, keyed, extend_left)| {
                    let extend_left = if extend_left.is_empty() {
                        None
                    } else {
                        let mut table = [false; 128];
                        for byte in extend_left.bytes().filter(|b| *b < 128) {
                            table[byte as usize] = true;
                        }
                        Some(table)
                    };
                    Member { detector, accept, keyed, extend_left }
                })
                .collect();
            built.push(Entry {
                regex,
                min_width,
                requires,
                literals: literals.map(|list| list.iter().map(|literal| Finder::new(literal.as_bytes()).into_owned()).collect()),
                lower_literals: lower_literals.iter().map(|literal| Finder::new(literal.as_bytes()).into_owned()).collect(),
                gate,
                members,
                value_group,
                member_groups,
            });
        }
        Ok(Scanner { entries: built, need_chars: need_chars.into_bytes(), max_rejections, judge, names: Mutex::new(HashMap::new()) })
    }

    /// Spans `(start, end, detector)` ordered by start, the longest first (ties: in the order
    /// `text_scan.scan_text` collects them); the first member's detector of an entry that
    /// rejected too many candidates (the whole text is unsafe); or `None` when this text must be
    /// scanned in Python.
    fn scan(&self, py: Python<'_>, text: &Bound<'_, PyString>) -> PyResult<PyObject> {
        // A panic here would reach Python as a BaseException the engine does not contain: a bug
        // in this loop must cost speed (the text is scanned in Python), never the host's request.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.scan_text(py, text))).unwrap_or_else(|_| Ok(py.None()))
    }
}

impl Scanner {
    fn scan_text(&self, py: Python<'_>, text: &Bound<'_, PyString>) -> PyResult<PyObject> {
        let source = text.to_str()?;
        let bytes = source.as_bytes();
        if bytes.iter().any(|b| *b >= 0x80 || (0x1c..=0x1f).contains(b)) {
            return Ok(py.None());
        }
        let features = self.features(bytes);
        let mut lowered: Option<Vec<u8>> = None;
        let mut spans: Vec<(usize, usize, usize, usize)> = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.min_width > bytes.len() {
                continue;
            }
            if !entry.requires.iter().any(|member| member.iter().all(|bits| bits & features != 0)) {
                continue;
            }
            if let Some(literals) = &entry.literals {
                if !literals.iter().any(|literal| literal.find(bytes).is_some()) {
                    if entry.lower_literals.is_empty() {
                        continue;
                    }
                    let lower = lowered.get_or_insert_with(|| bytes.to_ascii_lowercase());
                    if !entry.lower_literals.iter().any(|literal| literal.find(lower).is_some()) {
                        continue;
                    }
                }
            }
            if let Some(gate) = &entry.gate {
                if !gate.call1(py, (text,))?.bind(py).is_truthy()? {
                    continue;
                }
            }
            match self.find(py, index, entry, source, &mut spans) {
                Ok(true) => {}
                Ok(false) => return Ok(entry.members[0].detector.clone_ref(py)),
                Err(Stop::Engine) => return Ok(py.None()),
                Err(Stop::Python(error)) => return Err(error),
            }
        }
        // In the order the engine merges them: by start, the longest first, else as found (a
        // stable sort, as Python's).
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let list = PyList::empty(py);
        for (start, end, entry, member) in spans {
            let detector = self.entries[entry].members[member].detector.bind(py);
            list.append(PyTuple::new(py, [start.into_pyobject(py)?.into_any(), end.into_pyobject(py)?.into_any(), detector.clone()])?)?;
        }
        Ok(list.into_any().unbind())
    }

    /// `scan_plan.text_features`: bit `i` for `need_chars[i]`, then "a digit", then "an ASCII capital".
    fn features(&self, bytes: &[u8]) -> u32 {
        let mut present = [false; 128];
        for byte in bytes {
            present[*byte as usize] = true;
        }
        let mut bits = 0u32;
        for (index, char) in self.need_chars.iter().enumerate() {
            if present[*char as usize & 127] {
                bits |= 1 << index;
            }
        }
        let count = self.need_chars.len();
        if present[b'0' as usize..=b'9' as usize].iter().any(|p| *p) {
            bits |= 1 << count;
        }
        if present[b'A' as usize..=b'Z' as usize].iter().any(|p| *p) {
            bits |= 2 << count;
        }
        bits
    }

    /// `text_scan.find_validated` for one entry: validated spans appended to `spans`; `Ok(false)` when more
    /// than `max_rejections` candidates were rejected.
    fn find(&self, py: Python<'_>, index: usize, entry: &Entry, text: &str, spans: &mut Vec<(usize, usize, usize, usize)>) -> Result<bool, Stop> {
        let bytes = text.as_bytes();
        let length = bytes.len();
        let mut locations: CaptureLocations = entry.regex.capture_locations();
        let mut position = 0usize;
        let mut rejections = 0usize;
        while position <= length {
            match entry.regex.captures_read_at(&mut locations, bytes, position) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return Err(Stop::Engine),
            }
            let (match_start, match_end) = locations.get(0).ok_or(Stop::Engine)?;
            let member_index = if entry.member_groups.is_empty() {
                0
            } else {
                entry.member_groups.iter().position(|group| locations.get(*group).is_some()).ok_or(Stop::Engine)?
            };
            let member = &entry.members[member_index];
            let (mut start, end) = match entry.value_group.and_then(|group| locations.get(group)) {
                Some(span) => span,
                None => (match_start, match_end),
            };
            if member.keyed && !self.secret_name_before(py, bytes, match_start)? {
                position = match_start + 1;
                continue;
            }
            if let Some(allowed) = &member.extend_left {
                let floor = start.saturating_sub(64);
                let mut left = start;
                while left > floor && allowed[bytes[left - 1] as usize] {
                    left -= 1;
                }
                if left == start {
                    position = match_start + 1;
                    continue;
                }
                start = left;
            }
            if end == start {
                position = match_end + 1;
                continue;
            }
            let Some(accept) = &member.accept else {
                spans.push((start, end, index, member_index));
                // An empty match (widened to the left) would be found again: step past it.
                position = if match_end > match_start { match_end } else { match_end + 1 };
                continue;
            };
            let taken = accept.call1(py, (PyString::new(py, &text[start..end]),))?;
            let taken = taken.bind(py);
            let taken = if taken.is_truthy()? { taken.extract::<usize>()? } else { 0 };
            if taken > 0 {
                spans.push((start, start.saturating_add(taken), index, member_index));
                position = start.saturating_add(taken).max(match_start + 1);
            } else {
                rejections += 1;
                if rejections > self.max_rejections {
                    return Ok(false);
                }
                position = match_start + 1;
            }
        }
        Ok(true)
    }

    /// `text_scan.secret_name_before`: is the name before the operator at `operator` (after at
    /// most 5 spaces or tabs and an optional quote, within 48 characters) a secret name?
    fn secret_name_before(&self, py: Python<'_>, bytes: &[u8], operator: usize) -> PyResult<bool> {
        let floor = operator.saturating_sub(48);
        let mut end = operator;
        while end > floor && (bytes[end - 1] == b' ' || bytes[end - 1] == b'\t') {
            end -= 1;
            if operator - end > 5 {
                return Ok(false);
            }
        }
        if end > floor && (bytes[end - 1] == b'"' || bytes[end - 1] == b'\'') {
            end -= 1;
        }
        if end <= floor {
            return Ok(false);
        }
        // Read backwards: the longest run of at most 41 name characters that ends in a letter.
        let available = end - floor;
        let mut run = 0;
        while run < available && run < 41 && is_name_char(bytes[end - 1 - run]) {
            run += 1;
        }
        let mut length = run;
        while length > 0 && !bytes[end - length].is_ascii_alphabetic() {
            length -= 1;
        }
        if length == 0 {
            return Ok(false);
        }
        let name = &bytes[end - length..end];
        if let Some(verdict) = self.names.lock().map_err(|_| PyValueError::new_err("name cache poisoned"))?.get(name) {
            return Ok(*verdict);
        }
        // ASCII, so the bytes are the text.
        let verdict = self.judge.call1(py, (PyString::new(py, std::str::from_utf8(name).unwrap_or("")),))?.bind(py).is_truthy()?;
        let mut names = self.names.lock().map_err(|_| PyValueError::new_err("name cache poisoned"))?;
        if names.len() >= NAME_CACHE_LIMIT {
            names.clear();
        }
        names.insert(name.to_vec(), verdict);
        Ok(verdict)
    }
}

fn is_name_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'.' || byte == b'-'
}

/// Whether this build is optimised (a debug build scans about five times slower).
#[pyfunction]
fn optimised() -> bool {
    !cfg!(debug_assertions)
}

#[pymodule]
fn _scanner(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Scanner>()?;
    module.add_function(wrap_pyfunction!(optimised, module)?)?;
    Ok(())
}
