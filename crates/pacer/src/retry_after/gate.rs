//! The shared pause gate.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::events::event::Event;
use crate::events::observer::Events;

/// Default number of upstreams a [`PauseGate`] tracks at once.
pub const DEFAULT_MAX_UPSTREAMS: usize = 1024;
/// Default width of the window over which held requests are released.
pub const DEFAULT_RELEASE_WINDOW: Duration = Duration::from_secs(1);
/// A running pause pushed back by less than this is not reported again: concurrent `429`s for
/// the same pause each move its end by a few microseconds, and `Retry-After` counts in
/// seconds anyway.
const EXTENSION_REPORT_MIN: Duration = Duration::from_secs(1);

/// Identifies what a pause applies to: an upstream (URI authority), optionally narrowed to a
/// namespace.
///
/// A key is a 64-bit hash (seeded randomly once per process), so computing one never
/// allocates and the gate stores 8 bytes per upstream. The authority is compared
/// case-insensitively, as hosts are. Two different upstreams colliding would only make them
/// share pauses; with a random seed that cannot be arranged from outside.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PauseKey(u64);

impl fmt::Debug for PauseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PauseKey({:016x})", self.0)
    }
}

/// Per-process random seed of the key hash.
fn key_seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher as _;
        std::collections::hash_map::RandomState::new().hash_one(0x9e37_79b9_7f4a_7c15_u64)
    })
}

/// Folded 64x64->128 multiply, the mixing step of wyhash/foldhash.
#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

const K1: u64 = 0xa076_1d64_78bd_642f;
const K2: u64 = 0xe703_7ed1_a0b4_28db;

/// ASCII-lowercases 8 bytes at once (SWAR); non-ASCII bytes are left alone.
#[inline(always)]
fn lower8(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    let ge_a = low7 + 0x3f3f_3f3f_3f3f_3f3f; // high bit set where byte >= b'A'
    let gt_z = low7 + 0x2525_2525_2525_2525; // high bit set where byte > b'Z'
    let upper = ge_a & !gt_z & !w & HIGH;
    w | (upper >> 2)
}

/// Hashes `bytes` (ASCII-lowercased) into `h`, 8 bytes at a time.
#[inline]
fn absorb(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        h = mix(h ^ lower8(u64::from_le_bytes(w)), K1);
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    mix(h ^ lower8(u64::from_le_bytes(w)), K2 ^ bytes.len() as u64)
}

impl PauseKey {
    /// The key of an upstream, e.g. `"api.example.com:443"` (an [`http::uri::Authority`]
    /// string). Case-insensitive.
    pub fn authority(authority: &str) -> Self {
        Self::new(authority, None)
    }

    /// The key of an upstream narrowed to a namespace (tenant): pauses of one namespace do
    /// not hold requests of another. Namespaces are compared case-insensitively (ASCII).
    pub fn new(authority: &str, namespace: Option<&str>) -> Self {
        let mut h = absorb(key_seed(), authority.as_bytes());
        if let Some(ns) = namespace {
            h = absorb(mix(h, K2), ns.as_bytes());
        }
        PauseKey(mix(h, K1))
    }
}

/// Shared pause state: "upstream X must not be sent anything before instant T".
///
/// A `PauseGate` is cheap to clone (an `Arc` inside); clones share the same pauses, so one
/// gate can be given to several [`RetryAfterLayer`](super::RetryAfterLayer)s or consulted by
/// other layers directly ([`PauseGate::release_at`], [`PauseGate::wait`]).
///
/// Times are [`tokio::time::Instant`], so tests under `tokio::time::pause` are exact.
///
/// # Events
///
/// A pause set by a [`RetryAfterLayer`](super::RetryAfterLayer) with an observer
/// ([`RetryAfterLayer::observer`](super::RetryAfterLayer::observer)) reports
/// [`Event::PauseStarted`] when it opens (or is pushed back by a second or more) and
/// [`Event::PauseEnded`] exactly once: whoever removes the pause from the gate reports its end,
/// and a timer task (spawned on the current tokio runtime when the pause opens) removes it at
/// its end even if no request comes by. Without a runtime the end is reported by the first
/// look-up after it. Pauses set through [`PauseGate::pause`] directly report nothing.
///
/// # Cost when nothing is paused
///
/// Every check starts with one atomic load of the latest pause end; when no pause was ever
/// set, or all have ended, no lock is taken, no clock read beyond that, nothing allocated.
///
/// # Bounded memory
///
/// At most `max_upstreams` pauses are tracked (default [`DEFAULT_MAX_UPSTREAMS`]). Ended
/// pauses are removed when next looked up, and all at once when the gate sees that every
/// pause has ended or when it is full. Overflow policy: when the gate is full of pauses that
/// are all still running, a new upstream's pause evicts the pause that ends soonest (the one
/// that protects least); the requests it held keep waiting for their own release time, only
/// new requests to that upstream go through. Pauses are only ever set from responses of the
/// caller's own upstreams, and an entry is a few dozen bytes, so the default cap is generous.
///
/// # Release spreading
///
/// A request held by a pause is released at a uniformly random instant in
/// `[end, end + release_window)` rather than at `end` itself, so held requests do not hit the
/// upstream all at once when the pause ends. The random source can be seeded for tests.
#[derive(Clone)]
pub struct PauseGate {
    inner: Arc<Inner>,
}

struct Inner {
    /// Origin of the nanosecond offsets stored in `deadline`.
    base: Instant,
    /// Latest pause end over all keys, in nanoseconds since `base`, plus one; 0 = no pause.
    deadline: AtomicU64,
    state: Mutex<State>,
    max_upstreams: usize,
    release_window: Duration,
}

struct State {
    pauses: hashbrown::HashMap<PauseKey, Pause, foldhash::fast::FixedState>,
    rng: SmallRng,
    /// Identifies reporters, so that a timer task never ends a later pause of its key.
    next_reporter: u64,
}

struct Pause {
    end: Instant,
    /// Who is told when this pause ends: `None` when whoever set it has no observer.
    reporter: Option<Reporter>,
}

/// The observer a pause reports its end to, and the upstream it names.
struct Reporter {
    id: u64,
    events: Events,
    upstream: Arc<str>,
}

impl Reporter {
    fn new(last_id: &mut u64, events: &Events, upstream: &str) -> Self {
        *last_id += 1;
        Self {
            id: *last_id,
            events: events.clone(),
            upstream: Arc::from(upstream),
        }
    }

    fn report_end(&self) {
        self.events.emit(|| Event::PauseEnded {
            upstream: &self.upstream,
        });
    }
}

/// The last handle of a gate is gone: the pauses it still tracks end now, and whoever heard
/// of their start hears of their end (so a `pacer_paused_upstreams` gauge returns to 0 when a
/// gate is dropped mid-pause; its end timers hold it weakly and report nothing after this).
impl Drop for Inner {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        report_ends(state.pauses.drain().map(|(_, pause)| pause));
    }
}

/// Reports the ends of removed pauses (outside the gate's lock, so observers never run
/// under it).
fn report_ends(ended: impl IntoIterator<Item = Pause>) {
    for pause in ended {
        if let Some(reporter) = pause.reporter {
            reporter.report_end();
        }
    }
}

impl fmt::Debug for PauseGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PauseGate")
            .field("tracked", &self.len())
            .field("max_upstreams", &self.inner.max_upstreams)
            .field("release_window", &self.inner.release_window)
            .finish()
    }
}

impl Default for PauseGate {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`PauseGate`]; see [`PauseGate::builder`].
#[derive(Debug, Clone)]
pub struct PauseGateBuilder {
    max_upstreams: usize,
    release_window: Duration,
    seed: Option<u64>,
}

impl PauseGateBuilder {
    /// Caps the number of upstreams tracked at once (default [`DEFAULT_MAX_UPSTREAMS`],
    /// at least 1). See the overflow policy on [`PauseGate`].
    pub fn max_upstreams(mut self, max: usize) -> Self {
        self.max_upstreams = max.max(1);
        self
    }

    /// Width of the window over which held requests are released after a pause ends
    /// (default [`DEFAULT_RELEASE_WINDOW`]). `Duration::ZERO` releases them all at the end.
    pub fn release_window(mut self, window: Duration) -> Self {
        self.release_window = window;
        self
    }

    /// Seeds the random release offsets, for reproducible tests. By default the generator
    /// is seeded from the operating system.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the gate.
    pub fn build(self) -> PauseGate {
        let rng = match self.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        PauseGate {
            inner: Arc::new(Inner {
                base: Instant::now(),
                deadline: AtomicU64::new(0),
                state: Mutex::new(State {
                    pauses: hashbrown::HashMap::with_hasher(foldhash::fast::FixedState::default()),
                    rng,
                    next_reporter: 0,
                }),
                max_upstreams: self.max_upstreams,
                release_window: self.release_window,
            }),
        }
    }
}

impl PauseGate {
    /// A gate with the defaults: [`DEFAULT_MAX_UPSTREAMS`], [`DEFAULT_RELEASE_WINDOW`],
    /// OS-seeded release jitter.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to change the defaults.
    pub fn builder() -> PauseGateBuilder {
        PauseGateBuilder {
            max_upstreams: DEFAULT_MAX_UPSTREAMS,
            release_window: DEFAULT_RELEASE_WINDOW,
            seed: None,
        }
    }

    /// The release window this gate spreads held requests over.
    pub fn release_window(&self) -> Duration {
        self.inner.release_window
    }

    /// Pauses `key` for `delay` from now. A pause never shortens one already running: the
    /// later end wins. A zero delay does nothing.
    pub fn pause(&self, key: PauseKey, delay: Duration) {
        self.pause_observed(key, delay, &Events::none(), "");
    }

    /// Pauses `key` until `until`. A pause never shortens one already running: the later
    /// end wins. An instant that has already passed does nothing.
    pub fn pause_until(&self, key: PauseKey, until: Instant) {
        self.set_pause(key, Instant::now(), until, None);
    }

    /// Pauses `key` for `delay` from now and reports it to `events` under the name
    /// `upstream` (see [Events](PauseGate#events)).
    pub(super) fn pause_observed(
        &self,
        key: PauseKey,
        delay: Duration,
        events: &Events,
        upstream: &str,
    ) {
        if delay.is_zero() {
            return;
        }
        let now = Instant::now();
        // An absurd delay (callers cap it) must not overflow the clock.
        let until = now
            .checked_add(delay)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        let observer = events.is_enabled().then_some((events, upstream));
        self.set_pause(key, now, until, observer);
    }

    fn set_pause(
        &self,
        key: PauseKey,
        now: Instant,
        until: Instant,
        observer: Option<(&Events, &str)>,
    ) {
        if until <= now {
            return;
        }
        let mut ended = Vec::new();
        // (observer, delay, extended) to report once the lock is released.
        let mut started = None;
        let mut timer = None;
        {
            let mut guard = self.lock();
            let state = &mut *guard;
            // A pause that is over but still tracked ends before a new one starts.
            if state.pauses.get(&key).is_some_and(|pause| pause.end <= now) {
                ended.extend(state.pauses.remove(&key));
            }
            if let Some(pause) = state.pauses.get_mut(&key) {
                let previous_end = pause.end;
                pause.end = previous_end.max(until);
                if let Some((events, upstream)) = observer {
                    if pause.reporter.is_none() {
                        // Opened silently (by `pause` or a layer without observer): for this
                        // observer the pause starts now, and it will hear of its end.
                        let reporter = Reporter::new(&mut state.next_reporter, events, upstream);
                        timer = Some((reporter.id, pause.end));
                        pause.reporter = Some(reporter);
                        started = Some((events, pause.end - now, false));
                    } else if until >= previous_end + EXTENSION_REPORT_MIN {
                        started = Some((events, until - now, true));
                    }
                }
            } else {
                if state.pauses.len() >= self.inner.max_upstreams {
                    ended.extend(
                        state
                            .pauses
                            .extract_if(|_, pause| pause.end <= now)
                            .map(|(_, pause)| pause),
                    );
                }
                if state.pauses.len() >= self.inner.max_upstreams {
                    // Full of running pauses: evict the one ending soonest.
                    let soonest = state
                        .pauses
                        .iter()
                        .min_by_key(|(_, pause)| pause.end)
                        .map(|(k, _)| *k);
                    if let Some(k) = soonest {
                        ended.extend(state.pauses.remove(&k));
                    }
                }
                let reporter = observer.map(|(events, upstream)| {
                    started = Some((events, until - now, false));
                    Reporter::new(&mut state.next_reporter, events, upstream)
                });
                if let Some(reporter) = &reporter {
                    timer = Some((reporter.id, until));
                }
                state.pauses.insert(
                    key,
                    Pause {
                        end: until,
                        reporter,
                    },
                );
            }
            self.inner
                .deadline
                .fetch_max(self.offset(until), Ordering::AcqRel);
        }
        report_ends(ended);
        if let (Some((events, delay, extended)), Some((_, upstream))) = (started, observer) {
            events.emit(|| Event::PauseStarted {
                upstream,
                delay,
                extended,
            });
        }
        if let Some((id, end)) = timer {
            self.spawn_end_timer(key, id, end);
        }
    }

    /// Removes the pause of `key` at its end and reports it, so that its end is reported on
    /// time even when no request comes by. Holds the gate weakly: a dropped gate reports
    /// nothing more.
    fn spawn_end_timer(&self, key: PauseKey, id: u64, end: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime: the first look-up after the end reports it.
            return;
        };
        let gate = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            let mut wake = end;
            loop {
                tokio::time::sleep_until(wake).await;
                let Some(inner) = gate.upgrade() else {
                    return;
                };
                match (PauseGate { inner }).end_if_over(key, id) {
                    Some(extended_to) => wake = extended_to,
                    None => return,
                }
            }
        });
    }

    /// If the pause of `key` reported to `id` is over, removes it and reports its end.
    /// Returns its end while it still runs (it was extended).
    fn end_if_over(&self, key: PauseKey, id: u64) -> Option<Instant> {
        let now = Instant::now();
        let mut state = self.lock();
        let pause = state.pauses.get(&key)?;
        if pause.reporter.as_ref().map(|r| r.id) != Some(id) {
            // Already ended (and reported) by someone else; a later pause has its own timer.
            return None;
        }
        if pause.end > now {
            return Some(pause.end);
        }
        let pause = state.pauses.remove(&key);
        drop(state);
        report_ends(pause);
        None
    }

    /// When the pause of `key` ends, or `None` if `key` is not paused.
    pub fn paused_until(&self, key: PauseKey) -> Option<Instant> {
        let now = self.any_pause_running()?;
        let mut state = self.lock();
        match state.pauses.get(&key) {
            Some(pause) if pause.end > now => Some(pause.end),
            Some(_) => {
                let ended = state.pauses.remove(&key);
                drop(state);
                report_ends(ended);
                None
            }
            None => None,
        }
    }

    /// Whether `key` is paused right now.
    pub fn is_paused(&self, key: PauseKey) -> bool {
        self.paused_until(key).is_some()
    }

    /// When a request for `key` arriving now may go: `None` if `key` is not paused (go at
    /// once), otherwise `(end, release)` with `release` drawn uniformly from
    /// `[end, end + release_window)`.
    ///
    /// Callers that sleep until `release` should call this again when they wake: the pause
    /// may have been extended meanwhile (this is what [`PauseGate::wait`] does).
    pub fn release_at(&self, key: PauseKey) -> Option<(Instant, Instant)> {
        let now = self.any_pause_running()?;
        let mut state = self.lock();
        let end = match state.pauses.get(&key) {
            Some(pause) if pause.end > now => pause.end,
            Some(_) => {
                let ended = state.pauses.remove(&key);
                drop(state);
                report_ends(ended);
                return None;
            }
            None => return None,
        };
        let window = u64::try_from(self.inner.release_window.as_nanos()).unwrap_or(u64::MAX);
        let offset = if window == 0 {
            0
        } else {
            state.rng.random_range(0..window)
        };
        Some((end, end + Duration::from_nanos(offset)))
    }

    /// Waits until requests for `key` may go (at once if it is not paused). Dropping the
    /// future at any point leaves nothing behind.
    pub async fn wait(&self, key: PauseKey) {
        while let Some((_, release)) = self.release_at(key) {
            tokio::time::sleep_until(release).await;
        }
    }

    /// Number of upstreams currently tracked (including ended pauses not yet removed).
    pub fn len(&self) -> usize {
        self.lock().pauses.len()
    }

    /// Whether no upstream is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fast check. `None` when no pause can be running (the common case: one atomic
    /// load, plus a clock read only if some pause was set); otherwise `Some(now)`.
    #[inline]
    fn any_pause_running(&self) -> Option<Instant> {
        let deadline = self.inner.deadline.load(Ordering::Acquire);
        if deadline == 0 {
            return None;
        }
        let now = Instant::now();
        if self.offset(now) >= deadline {
            self.clear_ended(now);
            return None;
        }
        Some(now)
    }

    /// Every pause has ended: drop them all, unless another thread is busy with the map.
    #[cold]
    fn clear_ended(&self, now: Instant) {
        let Ok(mut state) = self.inner.state.try_lock() else {
            return;
        };
        let ended: Vec<Pause> = state
            .pauses
            .extract_if(|_, pause| pause.end <= now)
            .map(|(_, pause)| pause)
            .collect();
        let latest = state
            .pauses
            .values()
            .map(|pause| pause.end)
            .max()
            .map_or(0, |end| self.offset(end));
        self.inner.deadline.store(latest, Ordering::Release);
        drop(state);
        report_ends(ended);
    }

    fn offset(&self, t: Instant) -> u64 {
        let nanos = t.saturating_duration_since(self.inner.base).as_nanos();
        u64::try_from(nanos)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swar_lowercase_matches_std() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'A', b'z', b'Z', b'@', b'[', 0x80 | b'A', b]);
            let mut expect = w.to_le_bytes();
            expect.make_ascii_lowercase();
            assert_eq!(lower8(w).to_le_bytes(), expect, "byte {b:#x}");
        }
    }

    #[test]
    fn keys_are_case_insensitive_and_distinct() {
        assert_eq!(
            PauseKey::authority("API.Example.com:8443"),
            PauseKey::authority("api.example.com:8443")
        );
        assert_ne!(
            PauseKey::authority("api.example.com"),
            PauseKey::authority("api.example.co")
        );
        assert_ne!(PauseKey::authority("a"), PauseKey::authority("a\0"));
        assert_ne!(PauseKey::new("a", None), PauseKey::new("a", Some("")));
        assert_ne!(PauseKey::new("a", Some("x")), PauseKey::new("a", Some("y")));
        assert_ne!(
            PauseKey::new("ab", Some("c")),
            PauseKey::new("a", Some("bc"))
        );
    }
}
