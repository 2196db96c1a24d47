//! The request journal: what arrived, when, on which connection, and what it was answered
//! with. Credentials are never stored.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

/// How many requests the journal keeps (the first ones); later requests are still counted.
pub const JOURNAL_CAP: usize = 10_000;

/// Headers whose values the journal never stores (only that they were sent).
const SECRET_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-infrahub-key",
    "x-api-key",
];

/// One request the hostile server read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The method, as sent (`GET`).
    pub method: String,
    /// The path, without the query (which may hold credentials and is not stored).
    pub path: String,
    /// Every header in the order sent: the name (lower case) and its value, except that
    /// the value is `None` for `authorization`, `proxy-authorization`, `cookie`,
    /// `set-cookie`, `x-infrahub-key`, `x-api-key`, and for values that are not UTF-8.
    pub headers: Vec<(String, Option<String>)>,
    /// How many body bytes the request carried.
    pub body_len: usize,
    /// When its head had arrived (tokio time).
    pub arrived: Instant,
    /// Which accepted connection carried it (1 for the first one).
    pub connection: u64,
    /// The [`Behaviour::name`](super::Behaviour::name) it was answered with.
    pub behaviour: &'static str,
}

impl JournalEntry {
    /// Whether a header of this name was sent (case-insensitive); true for secret ones too.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The first value of this header, unless it is secret or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_deref())
    }

    /// The names of the headers sent, lower case, in order.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Stores header values except the secret ones.
pub(super) fn recorded_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Vec<(String, Option<String>)> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            let value = if SECRET_HEADERS.contains(&name.as_str()) {
                None
            } else {
                std::str::from_utf8(value).ok().map(str::to_owned)
            };
            (name, value)
        })
        .collect()
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<JournalEntry>,
    per_path: HashMap<String, u64>,
    total: u64,
}

/// The shared journal.
#[derive(Debug, Default)]
pub(super) struct Journal {
    state: Mutex<State>,
}

impl Journal {
    pub(super) fn record(&self, entry: JournalEntry) {
        let mut state = self.lock();
        state.total = state.total.saturating_add(1);
        // Bounded like the entries: a client looping over invented paths cannot grow it.
        if state.per_path.len() < JOURNAL_CAP || state.per_path.contains_key(&entry.path) {
            let count = state.per_path.entry(entry.path.clone()).or_default();
            *count = count.saturating_add(1);
        }
        if state.entries.len() < JOURNAL_CAP {
            state.entries.push(entry);
        }
    }

    pub(super) fn entries(&self) -> Vec<JournalEntry> {
        self.lock().entries.clone()
    }

    pub(super) fn count(&self, path: &str) -> u64 {
        self.lock().per_path.get(path).copied().unwrap_or(0)
    }

    pub(super) fn total(&self) -> u64 {
        self.lock().total
    }

    pub(super) fn clear(&self) {
        *self.lock() = State::default();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is one call under the lock: a poisoned journal is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
