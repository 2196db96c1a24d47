//! [`SharedPause`]: a `Retry-After` pause shared by several replicas through a
//! [`RateLimitStore`] (e.g. Redis).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Extensions, Uri};
use tokio::time::Instant;

use super::gate::{PauseGate, PauseKey};
use crate::events::event::Event;
use crate::events::observer::Events;
use crate::namespace::Namespace;
use crate::rate_limit::{RateLimitStore, StoreError, StoreFuture};

/// How long an answer of the store ("no pause", or a pause's end) is trusted before the
/// store is asked again for the same upstream.
pub const DEFAULT_SHARED_REFRESH: Duration = Duration::from_millis(250);

/// Most upstreams whose last look-up is remembered; past it the memory is cleared.
const MAX_CACHED: usize = 1024;

/// A pause shared through a store: a pause this replica sets is written to the store
/// ([`RateLimitStore::pause_upstream`], on the store's clock), and before a request goes the
/// store's pause ([`RateLimitStore::paused_until`]) is consulted and copied into the local
/// gate, so the request waits or fails exactly as for a local pause.
///
/// The store is asked at most once per [refresh period](Self::refresh) per upstream (default
/// [`DEFAULT_SHARED_REFRESH`]): the other requests in that period use the local gate alone,
/// so a pause set by another replica holds this one's requests at most a refresh period
/// late. A failed store call is reported as [`Event::StoreError`] and never blocks a request
/// (the local gate decides). Cheap to clone (shared).
#[derive(Clone)]
pub struct SharedPause {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn RateLimitStore>,
    refresh: Duration,
    by_namespace: bool,
    /// When each upstream was last looked up.
    checked: Mutex<hashbrown::HashMap<PauseKey, Instant, foldhash::fast::FixedState>>,
}

impl fmt::Debug for SharedPause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPause")
            .field("store", &self.inner.store)
            .field("refresh", &self.inner.refresh)
            .field("by_namespace", &self.inner.by_namespace)
            .finish()
    }
}

impl SharedPause {
    /// Shares pauses through `store`, keyed by the request URI's authority (lowercased).
    pub fn new(store: Arc<dyn RateLimitStore>) -> Self {
        Self::with(store, DEFAULT_SHARED_REFRESH, false)
    }

    fn with(store: Arc<dyn RateLimitStore>, refresh: Duration, by_namespace: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                refresh,
                by_namespace,
                checked: Mutex::new(hashbrown::HashMap::with_hasher(
                    foldhash::fast::FixedState::default(),
                )),
            }),
        }
    }

    /// How long one answer of the store is trusted (default [`DEFAULT_SHARED_REFRESH`]).
    pub fn refresh(self, refresh: Duration) -> Self {
        Self::with(
            Arc::clone(&self.inner.store),
            refresh,
            self.inner.by_namespace,
        )
    }

    /// Keys the shared pauses by authority and the request's [`Namespace`] (as pause scope
    /// `namespace` does locally), instead of by authority alone.
    pub fn by_namespace(self, by_namespace: bool) -> Self {
        Self::with(
            Arc::clone(&self.inner.store),
            self.inner.refresh,
            by_namespace,
        )
    }

    /// The store key of a request's upstream: `authority` or `authority/namespace`.
    pub(super) fn store_key(&self, uri: &Uri, extensions: &Extensions) -> String {
        let mut key = uri
            .authority()
            .map_or("", |a| a.as_str())
            .to_ascii_lowercase();
        if self.inner.by_namespace {
            let namespace = extensions.get::<Namespace>().map(Namespace::as_str);
            key.push('/');
            key.push_str(namespace.unwrap_or(Namespace::DEFAULT_NAME));
        }
        key
    }

    /// The look-up to make before a request to `key` goes, unless the store was asked within
    /// the refresh period.
    pub(super) fn lookup(&self, key: PauseKey, store_key: &str) -> Option<Lookup> {
        let now = Instant::now();
        {
            let mut checked = self
                .inner
                .checked
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = checked.get(&key) {
                if now.saturating_duration_since(*at) < self.inner.refresh {
                    return None;
                }
            }
            if checked.len() >= MAX_CACHED {
                checked.clear();
            }
            checked.insert(key, now);
        }
        Some(Lookup {
            future: self.inner.store.paused_until(store_key),
        })
    }

    /// Writes a pause this replica set (until `until`) to the store, on a task of its own
    /// (nothing outside a tokio runtime).
    pub(super) fn record(&self, store_key: &str, until: Instant, events: &Events) {
        let write = self.inner.store.pause_upstream(store_key, until);
        let events = events.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            drop(handle.spawn(async move {
                if let Err(error) = write.await {
                    report(&events, "pause_upstream", &error);
                }
            }));
        }
    }
}

/// A pending [`RateLimitStore::paused_until`] call.
pub(super) struct Lookup {
    pub(super) future: StoreFuture<Option<Instant>>,
}

impl Lookup {
    /// Copies the store's answer into `gate`; a failure is reported and changes nothing.
    pub(super) fn apply(
        answer: Result<Option<Instant>, StoreError>,
        gate: &PauseGate,
        key: PauseKey,
        events: &Events,
    ) {
        match answer {
            Ok(Some(until)) => gate.pause_until(key, until),
            Ok(None) => {}
            Err(error) => report(events, "paused_until", &error),
        }
    }
}

fn report(events: &Events, operation: &'static str, error: &StoreError) {
    events.emit(|| Event::StoreError {
        operation,
        kind: error.kind(),
        error,
    });
}
