//! The in-memory state of a [`RateLimiter`](super::RateLimiter): one global GCRA cell and a
//! sharded table of per-namespace cells, bounded in size and swept incrementally.

use std::cell::Cell;
use std::collections::HashMap;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use foldhash::fast::RandomState;
use hashbrown::HashTable;

use super::level::Level;
use super::quota::Gcra;
use super::thread_lease::{Leases, Local, NamespaceLease, ThreadLeases};
use crate::namespace::Namespace;

/// What one decision did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Both levels committed; the request may go at `global_slot` (now, or later when the
    /// global bucket is backed up and the caller accepted to wait).
    Admitted { global_slot: u64, ns: Held },
    /// The namespace slot at `slot` is reserved; the global bucket was not touched.
    Queued { slot: u64, ns: Held },
    /// Nothing was consumed; the level that refused and how long it would have taken.
    Refused { level: Level, wait: u64 },
}

/// A namespace-level reservation, enough to give it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    hash: u64,
    t: u64,
    overflow: bool,
}

/// A namespace's bucket, found by the namespace's key ([`Namespace::key`], a keyed 64-bit
/// hash) alone: no name is kept, so an entry is 16 bytes whatever the name's length, and a
/// decision compares one integer. Two live namespaces would share a bucket only if their
/// keys collided: a chance of about n²/2^65 among n live namespaces (3 in 100 million at a
/// million), and not one anybody can provoke without the process's random SipHash keys.
struct Entry {
    key: u64,
    tat: u64,
}

struct Table {
    entries: HashTable<Entry>,
    /// A lower bound of the entries' theoretical arrival times: no entry can be evicted before
    /// then, so a sweep that would free nothing costs O(1) instead of a scan of the shard.
    next_evictable: u64,
}

/// One cache line per shard, so that two shards' locks never share one. Not 128 bytes: with a
/// million namespaces the shard array itself must stay cache-resident, or every decision pays a
/// miss on it before reaching the bucket.
#[repr(align(64))]
struct Shard(Mutex<Table>);

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // Nothing panics while holding the lock; if something did, the table is still valid.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[repr(align(128))]
struct GlobalCell(AtomicU64);

pub(crate) struct MemoryState {
    global_gcra: Gcra,
    global_tat: GlobalCell,
    namespace_gcra: Gcra,
    overrides: HashMap<Namespace, Gcra, RandomState>,
    shards: Box<[Shard]>,
    shard_mask: usize,
    /// Every shard holds `per_shard_cap` entries, the first `cap_remainder` one more: the caps
    /// add up to `max_namespaces` exactly.
    per_shard_cap: usize,
    cap_remainder: usize,
    /// Namespaces that find their shard full share this bucket (default namespace quota).
    overflow_tat: Mutex<u64>,
    /// Incremental eviction: one shard is swept every `sweep_step` nanoseconds, in turn.
    sweep_step: u64,
    next_sweep: AtomicU64,
    sweep_cursor: AtomicUsize,
    /// Per-thread leases of slots, when the builder turned them on.
    leases: Option<Leases>,
}

/// Entries per shard the table aims at: small enough that sweeping one shard takes well under a
/// millisecond, large enough that the shard array stays small (2 048 lines at 1M namespaces).
const TARGET_PER_SHARD: usize = 1024;

impl MemoryState {
    pub(crate) fn new(
        global_gcra: Gcra,
        namespace_gcra: Gcra,
        overrides: HashMap<Namespace, Gcra, RandomState>,
        max_namespaces: usize,
        sweep_period: u64,
        leases: Option<ThreadLeases>,
    ) -> Self {
        let shard_count = max_namespaces
            .div_ceil(TARGET_PER_SHARD)
            .next_power_of_two()
            .clamp(16, 8192);
        let per_shard_cap = max_namespaces / shard_count;
        let cap_remainder = max_namespaces % shard_count;
        let shards = (0..shard_count)
            .map(|_| {
                Shard(Mutex::new(Table {
                    entries: HashTable::new(),
                    next_evictable: u64::MAX,
                }))
            })
            .collect();
        Self {
            global_tat: GlobalCell(AtomicU64::new(global_gcra.initial_tat)),
            global_gcra,
            overflow_tat: Mutex::new(namespace_gcra.initial_tat),
            namespace_gcra,
            overrides,
            shards,
            shard_mask: shard_count - 1,
            per_shard_cap,
            cap_remainder,
            sweep_step: (sweep_period / shard_count as u64).max(1),
            next_sweep: AtomicU64::new(0),
            sweep_cursor: AtomicUsize::new(0),
            leases: leases.map(Leases::new),
        }
    }

    #[inline]
    fn shard_index(&self, hash: u64) -> usize {
        // hashbrown indexes with the low bits and tags with the top seven: shard by others.
        (hash >> 32) as usize & self.shard_mask
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[self.shard_index(hash)]
    }

    fn shard_cap(&self, index: usize) -> usize {
        self.per_shard_cap + usize::from(index < self.cap_remainder)
    }

    #[inline]
    pub(crate) fn gcra_for(&self, namespace: &Namespace) -> Gcra {
        if self.overrides.is_empty() {
            self.namespace_gcra
        } else {
            self.overrides
                .get(namespace)
                .copied()
                .unwrap_or(self.namespace_gcra)
        }
    }

    /// Decides for one request of `namespace` at `now`, accepting to wait at most `max_wait`
    /// (all in nanoseconds since the limiter's epoch).
    pub(crate) fn decide(&self, namespace: &Namespace, now: u64, max_wait: u64) -> Decision {
        self.sweep_if_due(now);
        let hash = namespace.key();
        let gcra = self.gcra_for(namespace);
        let mut local = None;
        let mut lease_slot = None;
        if let Some(leases) = &self.leases {
            let thread = leases.local();
            match self.decide_leased(leases, thread, hash, gcra, now) {
                Ok(decision) => return decision,
                Err(slot) => lease_slot = slot,
            }
            local = Some((leases, thread));
        }
        let bucket = Bucket {
            gcra,
            hash,
            overflow: false,
            local,
            lease_slot,
        };
        let index = self.shard_index(hash);
        let mut table = self.shards[index].lock();
        if let Some(entry) = table.entries.find_mut(hash, |e| e.key == hash) {
            // Admitting only moves `tat` later, so `next_evictable` stays a lower bound.
            return self.decide_bucket(&mut entry.tat, bucket, now, max_wait);
        }
        // A new bucket starts full: nothing to lease from it before its first admission.
        let bucket = Bucket {
            lease_slot: None,
            ..bucket
        };
        self.decide_untracked(table, index, bucket, now, max_wait)
    }

    /// The decision from the calling thread's leases, when they have a slot of both levels
    /// for now; otherwise the thread's cache entry for the namespace if it had one already
    /// (then its bucket is worth a lease). An entry pushed out of the cache gives back what it
    /// held. Decisions that would wait take the ordinary path, so that nothing a waiter holds
    /// (and gives back if dropped) is leased.
    #[inline]
    fn decide_leased<'a>(
        &self,
        leases: &Leases,
        local: &'a Local,
        hash: u64,
        gcra: Gcra,
        now: u64,
    ) -> Result<Decision, Option<&'a Cell<NamespaceLease>>> {
        let Some(slot) = local.find(hash) else {
            if let Some(evicted) = local.insert(hash) {
                self.give_back(evicted);
            }
            return Err(None);
        };
        let mut namespace = slot.get();
        if !namespace.lease.take(now, gcra.t) {
            return Err(Some(slot));
        }
        // Without a global slot now, the namespace's lease stays as it was.
        let global_slot = self
            .take_global(leases, local, now, 0)
            .map_err(|_| Some(slot))?;
        slot.set(namespace);
        Ok(Decision::Admitted {
            global_slot,
            ns: Held {
                hash,
                t: gcra.t,
                overflow: false,
            },
        })
    }

    /// Gives a namespace's leased slots back to its bucket if nobody took slots after them:
    /// the bucket is then as if they had never been leased. Otherwise they lapse.
    #[cold]
    #[inline(never)]
    fn give_back(&self, namespace: NamespaceLease) {
        let mut table = self.shard(namespace.key).lock();
        let table = &mut *table;
        let key = namespace.key;
        if let Some(entry) = table.entries.find_mut(key, |e| e.key == key) {
            if entry.tat == namespace.lease.end {
                entry.tat = namespace.lease.next;
                table.next_evictable = table.next_evictable.min(entry.tat);
            }
        }
    }

    /// [`decide`](Self::decide) for a namespace without a bucket: give it one, or use the
    /// overflow bucket when its shard is full. Out of line, so that the look-up above (the
    /// common case) stays small.
    #[inline(never)]
    fn decide_untracked(
        &self,
        mut table: MutexGuard<'_, Table>,
        index: usize,
        bucket: Bucket<'_>,
        now: u64,
        max_wait: u64,
    ) -> Decision {
        let (gcra, hash) = (bucket.gcra, bucket.hash);
        let cap = self.shard_cap(index);
        if table.entries.len() >= cap {
            sweep(&mut table, now);
        }
        if table.entries.len() >= cap {
            drop(table);
            let mut tat = self
                .overflow_tat
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let overflow = Bucket {
                gcra: self.namespace_gcra,
                overflow: true,
                ..bucket
            };
            return self.decide_bucket(&mut tat, overflow, now, max_wait);
        }
        let mut tat = gcra.initial_tat;
        let decision = self.decide_bucket(&mut tat, bucket, now, max_wait);
        if !matches!(decision, Decision::Refused { .. }) {
            if table.entries.len() == table.entries.capacity() {
                // Reclaim refilled buckets before the table grows for good.
                sweep(&mut table, now);
            }
            table.next_evictable = table.next_evictable.min(tat);
            table
                .entries
                .insert_unique(hash, Entry { key: hash, tat }, |e| e.key);
        }
        decision
    }

    fn decide_bucket(
        &self,
        tat: &mut u64,
        bucket: Bucket<'_>,
        now: u64,
        max_wait: u64,
    ) -> Decision {
        let gcra = bucket.gcra;
        let held = Held {
            hash: bucket.hash,
            t: gcra.t,
            overflow: bucket.overflow,
        };
        let slot = gcra.earliest(*tat).max(now);
        let wait = slot - now;
        if wait > max_wait {
            return Decision::Refused {
                level: Level::Namespace,
                wait,
            };
        }
        if wait > 0 {
            // The namespace must wait: reserve its slot but leave the global bucket alone, so
            // that a backed-up tenant holds no global capacity that others could use meanwhile.
            *tat = gcra.admit(*tat, now);
            return Decision::Queued { slot, ns: held };
        }
        let global = match bucket.local {
            Some((leases, local)) => self.take_global(leases, local, now, max_wait),
            None => self.reserve_global(now, max_wait),
        };
        match global {
            Ok(global_slot) => {
                *tat = match (bucket.local, bucket.lease_slot) {
                    // A slot taken now: a waiter's (given back if dropped) is never leased.
                    (Some((leases, _)), Some(slot)) if global_slot <= now => {
                        lease_namespace(leases, slot, gcra, *tat, now, bucket.hash)
                    }
                    _ => gcra.admit(*tat, now),
                };
                Decision::Admitted {
                    global_slot,
                    ns: held,
                }
            }
            Err(wait) => Decision::Refused {
                level: Level::Global,
                wait,
            },
        }
    }

    /// A global slot for a decision at `now`: from the thread's lease when it has one (or can
    /// lease), else reserved in the bucket as [`reserve_global`](Self::reserve_global) does.
    #[inline]
    fn take_global(
        &self,
        leases: &Leases,
        local: &Local,
        now: u64,
        max_wait: u64,
    ) -> Result<u64, u64> {
        let mut lease = local.global.get();
        if lease.take(now, self.global_gcra.t) {
            local.global.set(lease);
            return Ok(now);
        }
        if self.lease_global(leases, local, now) {
            return Ok(now);
        }
        self.reserve_global(now, max_wait)
    }

    /// Leases global slots for the calling thread, spending the first one; false when the
    /// bucket has too little room to share.
    #[cold]
    #[inline(never)]
    fn lease_global(&self, leases: &Leases, local: &Local, now: u64) -> bool {
        let gcra = self.global_gcra;
        let cell = &self.global_tat.0;
        let mut tat = cell.load(Ordering::Acquire);
        loop {
            let Some((end, lease)) = leases.size(gcra, tat, now) else {
                return false;
            };
            match cell.compare_exchange_weak(tat, end, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    local.global.set(lease);
                    return true;
                }
                Err(current) => tat = current,
            }
        }
    }

    /// Reserves a global slot no later than `now + max_wait`; on refusal, the wait it needs.
    pub(crate) fn reserve_global(&self, now: u64, max_wait: u64) -> Result<u64, u64> {
        let gcra = self.global_gcra;
        let cell = &self.global_tat.0;
        let mut tat = cell.load(Ordering::Acquire);
        loop {
            let slot = gcra.earliest(tat).max(now);
            if slot - now > max_wait {
                return Err(slot - now);
            }
            match cell.compare_exchange_weak(
                tat,
                gcra.admit(tat, now),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(slot),
                Err(current) => tat = current,
            }
        }
    }

    /// Requests the global bucket admits at once at `now`.
    pub(crate) fn global_available(&self, now: u64) -> u32 {
        let gcra = self.global_gcra;
        let tat = self.global_tat.0.load(Ordering::Acquire);
        // Slots free = how far the bucket is from its limit `now + tau + t`, in intervals.
        let headroom = now.saturating_add(gcra.tau).saturating_add(gcra.t);
        u32::try_from(headroom.saturating_sub(tat.max(now)) / gcra.t).unwrap_or(u32::MAX)
    }

    /// Gives back one global slot.
    pub(crate) fn refund_global(&self) {
        let t = self.global_gcra.t;
        let _ = self
            .global_tat
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.saturating_sub(t))
            });
    }

    /// Gives back one namespace slot. A bucket that was evicted meanwhile is full anyway.
    pub(crate) fn refund_namespace(&self, held: Held) {
        if held.overflow {
            let mut tat = self
                .overflow_tat
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            *tat = tat.saturating_sub(held.t);
            return;
        }
        let mut table = self.shard(held.hash).lock();
        let table = &mut *table;
        if let Some(entry) = table.entries.find_mut(held.hash, |e| e.key == held.hash) {
            entry.tat = entry.tat.saturating_sub(held.t);
            table.next_evictable = table.next_evictable.min(entry.tat);
        }
    }

    /// Sweeps the next shard in turn when its time has come: a full pass over all shards takes
    /// one sweep period, and no single call ever sweeps more than one shard.
    #[inline]
    fn sweep_if_due(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now >= due {
            self.sweep_turn(due, now);
        }
    }

    /// Takes this turn of the incremental sweep, unless another caller did.
    #[cold]
    #[inline(never)]
    fn sweep_turn(&self, due: u64, now: u64) {
        let next = now.saturating_add(self.sweep_step);
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another caller took this turn
        }
        let index = self.sweep_cursor.fetch_add(1, Ordering::Relaxed) & self.shard_mask;
        // Never queue behind a busy shard for housekeeping; its turn comes again.
        if let Ok(mut table) = self.shards[index].0.try_lock() {
            sweep(&mut table, now);
        }
    }

    /// The number of namespaces with a bucket of their own right now.
    pub(crate) fn tracked_namespaces(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().entries.len())
            .sum()
    }

    /// Sweeps every shard once; for callers that want memory back now (tests, shutdown).
    pub(crate) fn evict_all_refilled(&self, now: u64) -> usize {
        self.shards
            .iter()
            .map(|shard| sweep(&mut shard.lock(), now))
            .sum()
    }
}

/// A namespace bucket a decision is about.
struct Bucket<'a> {
    gcra: Gcra,
    hash: u64,
    overflow: bool,
    /// The calling thread's leases, when the limiter has them.
    local: Option<(&'a Leases, &'a Local)>,
    /// The thread's cache entry to lease this bucket into: a namespace the thread decided for
    /// lately, with a bucket of its own.
    lease_slot: Option<&'a Cell<NamespaceLease>>,
}

/// The bucket's `tat` after admitting one request at `now` from a lease, which the thread keeps;
/// one slot, as without leases, when the bucket has too little room to share.
fn lease_namespace(
    leases: &Leases,
    slot: &Cell<NamespaceLease>,
    gcra: Gcra,
    tat: u64,
    now: u64,
    key: u64,
) -> u64 {
    match leases.size(gcra, tat, now) {
        Some((end, lease)) => {
            slot.set(NamespaceLease { key, lease });
            end
        }
        None => gcra.admit(tat, now),
    }
}

/// Removes the buckets that have refilled: a full bucket is indistinguishable from one that
/// was never used, so forgetting it changes no decision. Skips the scan when no bucket can
/// have refilled yet.
fn sweep(table: &mut Table, now: u64) -> usize {
    if now < table.next_evictable {
        return 0;
    }
    let before = table.entries.len();
    let mut next = u64::MAX;
    table.entries.retain(|entry| {
        let keep = entry.tat > now;
        if keep {
            next = next.min(entry.tat);
        }
        keep
    });
    table.next_evictable = next;
    before - table.entries.len()
}
