//! Leased global tokens: each replica takes a batch of the global bucket's tokens at a time
//! and spends them locally, so the global key is touched once per lease, not once per
//! decision, and no decision waits on the global bucket's shard unless its lease ran out.
//!
//! A lease is sized from the replica's own recent rate (enough for a quarter of the lease's
//! time to live), at most [`max_lease`](super::RedisStoreBuilder::max_lease) tokens and at
//! most half of the tokens the bucket has now. Redis counts leased tokens as taken until the
//! lease is settled (the next lease settles the last, giving unused tokens back) or expires
//! (its tokens then count as used). A token a decision held while the lease was settled or
//! expired (its namespace then refused it, or the call failed) goes back with the next lease
//! call, so a busy replica whose decisions meet namespace refusals wastes no global tokens. A replica never spends a token after its lease's time to
//! live, counted from before it asked, so Redis always forgets a lease after its replica
//! stopped spending it. The bound this gives is in the [store docs](super#leased-global-tokens).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::connection::{Connection, timed};
use super::scripts::{LEASE, duration_micros, from_micros, micros};
use crate::rate_limit::quota::Quota;
use crate::rate_limit::store_error::StoreError;

/// One replica's lease of global tokens, and how to get the next.
pub(super) struct Leases {
    connection: Connection,
    key: String,
    /// This replica's name in the global hash: random per store.
    replica: String,
    ttl: Duration,
    max_lease: u32,
    timeout: Duration,
    script: Arc<Script>,
    pool: Mutex<Pool>,
    /// One lease call at a time: callers that find the pool empty wait for the call in flight
    /// and share what it brings.
    flight: tokio::sync::Mutex<()>,
    calls: AtomicU64,
}

/// The tokens of the lease in hand.
struct Pool {
    /// Unused tokens of the current lease.
    tokens: u32,
    /// How many the current lease granted.
    granted: u32,
    /// When its tokens may be spent (later than now for a token reserved ahead).
    available_at: Instant,
    /// When this replica stops spending them: the lease's time to live from before it was
    /// asked for, so never after Redis drops it.
    expires: Instant,
    /// The current lease's sequence number in Redis, to settle it by.
    seq: Option<u64>,
    /// When the current lease came, and how many of its tokens were spent since: the rate
    /// that sizes the next.
    started: Instant,
    spent: u32,
    /// Tokens per second this replica spent recently.
    rate: f64,
    /// The last lease call was refused: until when that answer is trusted without asking
    /// again (a tenth of the lease time to live: other replicas may give tokens back), and
    /// when the bucket said its next token comes.
    refused: Option<(Instant, Instant)>,
    /// The global interval (us) the lease was taken under: what an unused token is worth.
    interval: f64,
    /// Tokens that came back unspent after their lease was settled or expired (a decision
    /// held one while another renewed the lease): Redis counts them as spent until the next
    /// lease call gives them back.
    late: u32,
}

/// The global answer for one decision.
pub(super) enum GlobalSlot {
    /// A token of the lease, usable after its wait; given back when dropped uncommitted.
    Held(HeldToken),
    /// No token within the max wait; one comes in this long.
    Refused(Duration),
}

/// A global token taken from the lease. Dropped without [`commit`](Self::commit) (the
/// namespace refused, the call failed or was dropped), it goes back to the lease it came from.
pub(super) struct HeldToken {
    leases: Option<Arc<Leases>>,
    seq: Option<u64>,
    /// How long until the token may be spent.
    pub(super) wait: Duration,
}

impl HeldToken {
    /// The token is spent: it no longer goes back.
    pub(super) fn commit(mut self) -> Duration {
        self.leases = None;
        self.wait
    }
}

impl Drop for HeldToken {
    fn drop(&mut self) {
        if let Some(leases) = self.leases.take() {
            leases.give_back(self.seq);
        }
    }
}

impl Leases {
    pub(super) fn new(
        connection: Connection,
        key: String,
        replica: String,
        ttl: Duration,
        max_lease: u32,
        timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        Self {
            connection,
            key,
            replica,
            ttl,
            max_lease: max_lease.max(1),
            timeout,
            script: Arc::new(Script::new(LEASE)),
            pool: Mutex::new(Pool {
                tokens: 0,
                granted: 0,
                available_at: now,
                expires: now,
                seq: None,
                started: now,
                spent: 0,
                rate: 0.0,
                refused: None,
                interval: 0.0,
                late: 0,
            }),
            flight: tokio::sync::Mutex::new(()),
            calls: AtomicU64::new(0),
        }
    }

    /// How many lease calls this replica made.
    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        // The pool holds plain numbers, valid after any panic.
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A global token within `max_wait`, from the lease in hand or from a new one.
    pub(super) async fn take(
        self: &Arc<Self>,
        quota: Quota,
        max_wait: Duration,
    ) -> Result<GlobalSlot, StoreError> {
        if let Some(slot) = self.take_local(max_wait) {
            return Ok(slot);
        }
        let _flight = self.flight.lock().await;
        // Two rounds: callers that did not wait for the lock may take a new lease's tokens
        // first.
        for _ in 0..2 {
            if let Some(slot) = self.take_local(max_wait) {
                return Ok(slot);
            }
            self.renew(quota, max_wait).await?;
        }
        Ok(self
            .take_local(max_wait)
            .unwrap_or(GlobalSlot::Refused(quota.interval())))
    }

    /// A token of the lease in hand; `None` when a lease call is needed.
    fn take_local(self: &Arc<Self>, max_wait: Duration) -> Option<GlobalSlot> {
        let now = Instant::now();
        let mut pool = self.pool();
        if pool.tokens > 0 && now < pool.expires {
            let wait = pool.available_at.saturating_duration_since(now);
            if wait > max_wait {
                return Some(GlobalSlot::Refused(wait));
            }
            pool.tokens -= 1;
            pool.spent += 1;
            return Some(GlobalSlot::Held(HeldToken {
                leases: Some(Arc::clone(self)),
                seq: pool.seq,
                wait,
            }));
        }
        // The bucket said when it has a token again: for a while, only a caller that waits
        // that long needs to ask.
        let (trusted_until, comes) = pool.refused?;
        let left = comes.saturating_duration_since(now);
        (now < trusted_until && left > max_wait).then_some(GlobalSlot::Refused(left))
    }

    /// A token that was not spent goes back to its lease if that lease is still in hand, else
    /// to Redis with the next lease call.
    fn give_back(&self, seq: Option<u64>) {
        let mut pool = self.pool();
        if pool.seq == seq && Instant::now() < pool.expires && pool.tokens < pool.granted {
            pool.tokens += 1;
            pool.spent = pool.spent.saturating_sub(1);
        } else {
            pool.late = pool.late.saturating_add(1);
        }
    }

    /// Settles the lease in hand and takes the next, in one call to the global key.
    async fn renew(&self, quota: Quota, max_wait: Duration) -> Result<(), StoreError> {
        let asked = Instant::now();
        let (settles, unused, want, late) = {
            let mut pool = self.pool();
            let unused = if asked < pool.expires { pool.tokens } else { 0 };
            let lasted = asked.saturating_duration_since(pool.started).as_secs_f64();
            if pool.seq.is_some() && lasted > 0.0 {
                let rate = f64::from(pool.spent) / lasted;
                pool.rate = if pool.rate == 0.0 {
                    rate
                } else {
                    (pool.rate + rate) / 2.0
                };
            }
            let want = (pool.rate * self.ttl.as_secs_f64() / 4.0).ceil();
            let want = want.clamp(1.0, f64::from(self.max_lease));
            // From here on the old lease's tokens are Redis's again. A call that fails may or
            // may not have given them back: never twice.
            pool.tokens = 0;
            (
                pool.seq.take(),
                unused,
                want,
                std::mem::take(&mut pool.late),
            )
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (interval, tolerance) = micros(quota);
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&self.key)
            .arg(self.replica.as_str())
            .arg(settles.map(|seq| seq.to_string()).unwrap_or_default())
            .arg(unused)
            .arg(want)
            .arg(interval)
            .arg(tolerance)
            .arg(duration_micros(max_wait))
            .arg(duration_micros(self.ttl))
            .arg(late);
        let mut connection = self.connection.clone();
        let (granted, wait, seq): (u32, i64, u64) =
            timed(self.timeout, invocation.invoke_async(&mut connection)).await?;
        let came = Instant::now();
        let wait = from_micros(wait);
        let mut pool = self.pool();
        pool.interval = interval;
        if granted == 0 {
            let comes = came.checked_add(wait).unwrap_or(came);
            pool.refused = Some((came + (self.ttl / 10).min(wait), comes));
            return Ok(());
        }
        pool.tokens = granted;
        pool.granted = granted;
        pool.available_at = came.checked_add(wait).unwrap_or(came);
        pool.expires = asked
            .checked_add(wait)
            .and_then(|at| at.checked_add(self.ttl))
            .unwrap_or(asked);
        pool.seq = Some(seq);
        pool.started = came;
        pool.spent = 0;
        pool.refused = None;
        Ok(())
    }

    /// Gives the unused tokens of the lease in hand back to Redis, from a task of its own
    /// (the store is being dropped); outside a runtime they come back when the lease expires.
    pub(super) fn release(&self) {
        let (seq, unused, interval, late) = {
            let mut pool = self.pool();
            let unused = if Instant::now() < pool.expires {
                pool.tokens
            } else {
                0
            };
            pool.tokens = 0;
            (
                pool.seq.take(),
                unused,
                pool.interval,
                std::mem::take(&mut pool.late),
            )
        };
        if unused == 0 && late == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (script, key, replica) = (
            Arc::clone(&self.script),
            self.key.clone(),
            self.replica.clone(),
        );
        let (mut connection, timeout, ttl) = (self.connection.clone(), self.timeout, self.ttl);
        drop(runtime.spawn(async move {
            let mut invocation = script.prepare_invoke();
            // Want nothing: only settle, pricing the unused tokens at the lease's interval.
            invocation
                .key(key)
                .arg(replica)
                .arg(seq.map(|seq| seq.to_string()).unwrap_or_default())
                .arg(unused)
                .arg(0)
                .arg(interval)
                .arg(0)
                .arg(0)
                .arg(duration_micros(ttl))
                .arg(late);
            let _: Result<(u32, i64, u64), StoreError> =
                timed(timeout, invocation.invoke_async(&mut connection)).await;
        }));
    }
}
