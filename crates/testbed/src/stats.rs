//! Counters of what the server saw, readable by tests while it runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Counters of the requests the testbed saw: per path and status, 429s sent (injected or
/// by the server-side rate limit), 503s injected, connections reset.
///
/// Cheap to clone; every clone reads the same counters. Paths are the raw request paths
/// (without the query string).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    inner: Arc<Mutex<Counters>>,
}

#[derive(Debug, Default)]
struct Counters {
    by_path_status: BTreeMap<(String, u16), u64>,
    paths: usize,
    requests: u64,
    injected: u64,
    injected_429: u64,
    resets: u64,
    log: Vec<LoggedRequest>,
}

/// One entry of [`Stats::log`]: a request as it arrived, and what it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The method.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The response status; `None` when the connection was reset instead.
    pub status: Option<u16>,
}

/// One row of a [`Stats::snapshot`]: how many responses with `status` went to `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathCount {
    /// The request path (or [`Stats::OTHER_PATH`]).
    pub path: String,
    /// The response status code.
    pub status: u16,
    /// How many such responses were sent.
    pub count: u64,
}

impl Stats {
    /// At most this many distinct paths are counted one by one; the rest are counted under
    /// [`Stats::OTHER_PATH`], so clients choosing paths cannot grow memory without bound.
    pub const MAX_PATHS: usize = 4096;

    /// At most this many requests are kept in [`Stats::log`]; later ones are only counted.
    pub const MAX_LOG: usize = 100_000;

    /// The path under which requests are counted once [`Stats::MAX_PATHS`] distinct paths
    /// were seen.
    pub const OTHER_PATH: &'static str = "(other)";

    fn lock(&self) -> MutexGuard<'_, Counters> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn record(&self, path: &str, status: u16, injected: bool) {
        let mut counters = self.lock();
        counters.requests += 1;
        if injected {
            counters.injected += 1;
            if status == 429 {
                counters.injected_429 += 1;
            }
        }
        let known = counters
            .by_path_status
            .range((path.to_owned(), 0)..=(path.to_owned(), u16::MAX))
            .next()
            .is_some();
        let key = if known || counters.paths < Self::MAX_PATHS {
            if !known {
                counters.paths += 1;
            }
            (path.to_owned(), status)
        } else {
            (Self::OTHER_PATH.to_owned(), status)
        };
        *counters.by_path_status.entry(key).or_default() += 1;
    }

    pub(crate) fn log_request(&self, method: &str, path: &str, status: Option<u16>) {
        let mut counters = self.lock();
        if counters.log.len() < Self::MAX_LOG {
            counters.log.push(LoggedRequest {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
            });
        }
    }

    /// The requests seen, in the order their answers were decided (the first
    /// [`Stats::MAX_LOG`]), so a test can compare what two clients sent.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    pub(crate) fn record_reset(&self) {
        let mut counters = self.lock();
        counters.requests += 1;
        counters.resets += 1;
    }

    /// Every request seen, including those answered by an injected fault or reset.
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Requests to `path` that got a response (any status).
    pub fn requests_to(&self, path: &str) -> u64 {
        self.lock()
            .by_path_status
            .iter()
            .filter(|((p, _), _)| p == path)
            .map(|(_, n)| n)
            .sum()
    }

    /// Responses with `status` (any path).
    pub fn responses(&self, status: u16) -> u64 {
        self.lock()
            .by_path_status
            .iter()
            .filter(|((_, s), _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }

    /// Responses with `status` to `path`.
    pub fn count(&self, path: &str, status: u16) -> u64 {
        self.lock()
            .by_path_status
            .get(&(path.to_owned(), status))
            .copied()
            .unwrap_or(0)
    }

    /// `429 Too Many Requests` responses sent, injected or from the server-side rate limit.
    pub fn too_many_requests(&self) -> u64 {
        self.responses(429)
    }

    /// `429` responses sent by the server-side rate limit (not injected).
    pub fn rate_limited(&self) -> u64 {
        let injected = self.lock().injected_429;
        self.responses(429).saturating_sub(injected)
    }

    /// Responses produced by fault injection (429 storms, 503s), not by the fakes.
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    /// Connections closed with a reset instead of a response.
    pub fn resets(&self) -> u64 {
        self.lock().resets
    }

    /// Every (path, status) counter, sorted by path then status.
    pub fn snapshot(&self) -> Vec<PathCount> {
        self.lock()
            .by_path_status
            .iter()
            .map(|((path, status), count)| PathCount {
                path: path.clone(),
                status: *status,
                count: *count,
            })
            .collect()
    }

    /// Sets every counter back to zero.
    pub fn clear(&self) {
        *self.lock() = Counters::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_past_the_cap_are_counted_as_other() {
        let stats = Stats::default();
        for i in 0..Stats::MAX_PATHS + 10 {
            stats.record(&format!("/p/{i}"), 200, false);
        }
        stats.record("/p/0", 404, false);
        stats.record("/p/0", 429, true);
        assert_eq!(stats.requests(), Stats::MAX_PATHS as u64 + 12);
        assert_eq!(stats.count(Stats::OTHER_PATH, 200), 10);
        assert_eq!(stats.requests_to("/p/0"), 3);
        assert_eq!(stats.too_many_requests(), 1);
        assert_eq!(stats.rate_limited(), 0);
        assert_eq!(stats.injected(), 1);
        assert_eq!(stats.snapshot().len(), Stats::MAX_PATHS + 3);
        stats.log_request("GET", "/a", Some(200));
        stats.log_request("POST", "/b", None);
        assert_eq!(
            stats.log(),
            vec![
                LoggedRequest {
                    method: "GET".into(),
                    path: "/a".into(),
                    status: Some(200)
                },
                LoggedRequest {
                    method: "POST".into(),
                    path: "/b".into(),
                    status: None
                },
            ]
        );
        stats.clear();
        assert_eq!(stats.requests(), 0);
        assert!(stats.log().is_empty());
    }
}
