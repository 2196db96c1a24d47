//! pacer's two-level rate limiter against governor doing the same work, in the same run.
//!
//! ```text
//! cargo bench -p benches --bench rate_limit            # everything (about 3 minutes)
//! cargo bench -p benches --bench rate_limit -- single  # decision path only
//! cargo bench -p benches --bench rate_limit -- memory  # bytes per namespace and stalls only
//! cargo bench -p benches --bench rate_limit -- --test  # smoke run (small sizes, seconds)
//! ```
//!
//! - `single/<namespaces>/<limiter>/<threads>`: one decision for a namespace that is already
//!   tracked, keys cycling in a pre-shuffled order. governor does what a user of it would write
//!   for two levels: `keyed.check_key(&key)` then `direct.check()` (not atomic: a global refusal
//!   still costs the namespace a token). Quotas never run dry, so this is the admit path; the
//!   per-namespace rate is low (1/s) with a huge burst so that no bucket refills between two
//!   visits and pacer keeps every key (it forgets refilled buckets by design).
//!   With 2 threads both hammer the same limiters; the figure is wall time / total operations.
//! - `refused/<namespaces>/<limiter>/<level>`: the bucket of that level is empty, every call is
//!   refused.
//! - `flood/<names>-names-cap-<cap>`: ten times more distinct names than pacer's
//!   `max_namespaces`; most of pacer's calls go to its shared overflow bucket.
//! - `memory` (printed, not measured by criterion): live heap bytes per namespace after one
//!   decision for each of N distinct namespaces, key strings (`Arc<str>`) included, counted by
//!   a global allocator wrapper. Requested sizes; malloc's own overhead is not included.
//! - `stall` (printed): with N idle namespaces whose buckets have refilled, the latency of each of
//!   ~2M following `try_acquire` calls while pacer's incremental eviction runs, against
//!   governor's `retain_recent()` (its stop-the-world sweep) over the same N keys, alone and as
//!   seen by a concurrent caller.
//!
//! - `flood-stall` (printed): the longest `try_acquire` calls and the count over 100 µs and
//!   1 ms, under 10 M made-up names each seen once (default cap 100 000), and over 1 000 names
//!   that stay in the table (the control), on both clocks.
//! - `new-key/1000/<limiter>/1t`: as `single/1000`, but each call first makes its key from
//!   the name's `Arc<str>` (pacer: `Namespace::new`, which computes the namespace's SipHash
//!   key; governor: a clone of the key), as a server keying on a header does per request.
//! - `pacer-tsc` rows: pacer on `LimiterClock::Tsc` (quanta's TSC, the clock governor reads)
//!   instead of tokio's clock.
//! - `pacer-leases` and `pacer-tsc-leases` rows (`single` only): the same limiters built with
//!   `.thread_leases(ThreadLeases::default())`, each thread spending slots it leased.
//!
//! With `--test` (CI's smoke run) the sizes shrink to at most 10 000 namespaces.
//!
//! On a shared or virtual machine the longest calls are preemptions, not work: the `control` row
//! (same calls, nothing to evict) is the noise floor to read the eviction row against, and the
//! `evict_refilled()` row gives the cost of sweeping per entry and per ~1024-entry shard (a call
//! sweeps at most its own shard and one other).

use std::cell::OnceCell;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota as GovQuota};
use pacer::Namespace;
use pacer::rate_limit::{LimiterClock, Quota, RateLimiter, ThreadLeases};

mod counting_alloc {
    //! Live heap bytes, for the bytes-per-namespace figure.
    // Implementing `GlobalAlloc` takes `unsafe` (an unsafe trait whose methods are unsafe fns),
    // which the workspace lints deny. This module only forwards to `System` and counts; no
    // other code in the bench uses `unsafe`.
    #![allow(unsafe_code)]

    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting;

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    fn grew(bytes: usize) {
        let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() {
                grew(layout.size());
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                grew(layout.size());
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let new = unsafe { System.realloc(ptr, layout, new_size) };
            if !new.is_null() {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                grew(new_size);
            }
            new
        }
    }

    /// Bytes currently allocated.
    pub(crate) fn live() -> usize {
        LIVE.load(Ordering::Relaxed)
    }

    /// Starts a new peak measurement from the current live bytes.
    pub(crate) fn reset_peak() {
        PEAK.store(live(), Ordering::Relaxed);
    }

    /// The most bytes live at once since [`reset_peak`].
    pub(crate) fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }
}

type Keyed = DefaultKeyedRateLimiter<Arc<str>>;

/// The same key strings for both limiters: realistic tenant names, 14 bytes.
fn name(i: usize) -> String {
    format!("tenant-{i:07}")
}

/// A fixed-seed shuffle (splitmix64 + Fisher-Yates), so runs are comparable.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero quota")
}

/// A global bucket that never runs dry (1e9/s, huge burst).
fn pacer_global_huge() -> Quota {
    Quota::per_second(1e9)
        .and_then(|q| q.with_burst(u32::MAX))
        .expect("valid quota")
}

/// A namespace bucket that never runs dry during a run and does not refill between two visits
/// (each request puts it 4 s further from full), so pacer keeps tracking every key: it forgets
/// a bucket as soon as it is full again, by design. The burst (4e9) is what one namespace's
/// rows spend at most: one limiter serves a group's 1- and 2-thread rows, and with leases one
/// namespace took about 9e8 decisions in those; 4 s x 4e9 is as much as governor's nanosecond
/// arithmetic takes (below 2^64 ns).
fn pacer_namespace_huge() -> Quota {
    Quota::every(Duration::from_secs(4))
        .and_then(|q| q.with_burst(NAMESPACE_HUGE_BURST))
        .expect("valid quota")
}

const NAMESPACE_HUGE_BURST: u32 = 4_000_000_000;

fn pacer_one_per_minute() -> Quota {
    Quota::per_minute(1)
        .and_then(|q| q.with_burst(1))
        .expect("valid quota")
}

fn gov_global_huge() -> GovQuota {
    GovQuota::with_period(Duration::from_nanos(1))
        .expect("valid quota")
        .allow_burst(nz(u32::MAX))
}

fn gov_namespace_huge() -> GovQuota {
    GovQuota::with_period(Duration::from_secs(4))
        .expect("valid quota")
        .allow_burst(nz(NAMESPACE_HUGE_BURST))
}

fn gov_one_per_minute() -> GovQuota {
    GovQuota::per_minute(nz(1))
}

/// `max_namespaces` for a run over `keys` distinct keys: the default (100 000) or the key count
/// plus 25 %. pacer splits the cap evenly over its shards, so a cap exactly at the key count
/// sends the keys of the fuller shards to the shared overflow bucket (`memory` reports how
/// many); the headroom keeps every key in a bucket of its own.
fn max_namespaces_for(keys: usize) -> usize {
    (keys + keys / 4).max(100_000)
}

struct Limiters {
    pacer: RateLimiter,
    /// The same limiter reading the TSC clock (`LimiterClock::Tsc`).
    pacer_tsc: RateLimiter,
    /// The same two limiters with per-thread leases (`ThreadLeases::default()`).
    pacer_leases: RateLimiter,
    pacer_tsc_leases: RateLimiter,
    global: DefaultDirectRateLimiter,
    keyed: Keyed,
    /// Pre-shuffled; `namespaces[i]` and `keys[i]` share one `Arc<str>`.
    namespaces: Vec<Namespace>,
    keys: Vec<Arc<str>>,
}

impl Limiters {
    fn new(
        size: usize,
        (pacer_global, pacer_ns): (Quota, Quota),
        (gov_global, gov_ns): (GovQuota, GovQuota),
        admit: bool,
        max_namespaces: usize,
    ) -> Self {
        let mut keys: Vec<Arc<str>> = (0..size).map(|i| Arc::from(name(i).as_str())).collect();
        shuffle(&mut keys, 0x5EED);
        let namespaces: Vec<Namespace> = keys.iter().cloned().map(Namespace::new).collect();
        let build = |clock: LimiterClock, leases: bool| {
            let builder = RateLimiter::builder()
                .global(pacer_global)
                .per_namespace(pacer_ns)
                .max_namespaces(max_namespaces)
                .max_wait(Duration::ZERO)
                .clock(clock);
            let builder = if leases {
                builder.thread_leases(ThreadLeases::default())
            } else {
                builder
            };
            builder.build().expect("valid limiter")
        };
        let pacer = build(LimiterClock::Tokio, false);
        let pacer_tsc = build(LimiterClock::Tsc, false);
        let pacer_leases = build(LimiterClock::Tokio, true);
        let pacer_tsc_leases = build(LimiterClock::Tsc, true);
        let global = DefaultDirectRateLimiter::direct(gov_global);
        let keyed = Keyed::keyed(gov_ns);
        // Pre-warm: every key once, in a different order than the measured one.
        for ns in namespaces.iter().rev() {
            let _ = pacer.try_acquire(ns);
            let _ = pacer_tsc.try_acquire(ns);
            let _ = pacer_leases.try_acquire(ns);
            let _ = pacer_tsc_leases.try_acquire(ns);
        }
        for key in keys.iter().rev() {
            let _ = keyed.check_key(key).and_then(|()| global.check());
        }
        if admit {
            let tracked = pacer.tracked_namespaces();
            if tracked != size {
                eprintln!(
                    "note: pacer tracks {tracked} of {size} namespaces, the rest share its overflow bucket"
                );
            }
        }
        Self {
            pacer,
            pacer_tsc,
            pacer_leases,
            pacer_tsc_leases,
            global,
            keyed,
            namespaces,
            keys,
        }
    }

    /// `n` calls of `refused` on key indexes from `start` in the shuffled order, wrapping
    /// round; returns how many answered refused.
    #[inline(always)]
    fn cycle(&self, start: usize, n: u64, mut refused: impl FnMut(usize) -> bool) -> u64 {
        let len = self.keys.len();
        let mut i = start % len;
        let mut count = 0;
        for _ in 0..n {
            count += u64::from(refused(i));
            i += 1;
            if i == len {
                i = 0;
            }
        }
        count
    }

    /// `n` decisions of `limiter` starting at `start` in the shuffled order; returns the
    /// refusals.
    #[inline(always)]
    fn run_on(&self, limiter: &RateLimiter, start: usize, n: u64) -> u64 {
        self.cycle(start, n, |i| {
            black_box(limiter.try_acquire(&self.namespaces[i])).is_err()
        })
    }

    /// [`run_on`](Self::run_on) the default pacer limiter (tokio's clock).
    fn run_pacer(&self, start: usize, n: u64) -> u64 {
        self.run_on(&self.pacer, start, n)
    }

    /// [`run_pacer`](Self::run_pacer) on the TSC clock.
    fn run_pacer_tsc(&self, start: usize, n: u64) -> u64 {
        self.run_on(&self.pacer_tsc, start, n)
    }

    /// [`run_pacer`](Self::run_pacer) with per-thread leases.
    fn run_pacer_leases(&self, start: usize, n: u64) -> u64 {
        self.run_on(&self.pacer_leases, start, n)
    }

    /// [`run_pacer_tsc`](Self::run_pacer_tsc) with per-thread leases.
    fn run_pacer_tsc_leases(&self, start: usize, n: u64) -> u64 {
        self.run_on(&self.pacer_tsc_leases, start, n)
    }

    /// [`run_pacer_tsc`](Self::run_pacer_tsc), making each call's `Namespace` from the key
    /// string first (what a server keying on a header does per request): pacer hashes a
    /// name when the `Namespace` is made, not in the decision.
    fn run_pacer_tsc_new_key(&self, start: usize, n: u64) -> u64 {
        self.cycle(start, n, |i| {
            let namespace = Namespace::new(Arc::clone(&self.keys[i]));
            black_box(self.pacer_tsc.try_acquire(&namespace)).is_err()
        })
    }

    /// `n` governor two-level decisions (namespace, then global), as a user would write them.
    fn run_governor(&self, start: usize, n: u64) -> u64 {
        self.cycle(start, n, |i| self.governor_refused(&self.keys[i]))
    }

    /// [`run_governor`](Self::run_governor), cloning each call's key first, as the pacer row
    /// beside it does.
    fn run_governor_new_key(&self, start: usize, n: u64) -> u64 {
        self.cycle(start, n, |i| {
            let key = Arc::clone(&self.keys[i]);
            self.governor_refused(&key)
        })
    }

    #[inline(always)]
    fn governor_refused(&self, key: &Arc<str>) -> bool {
        let decision = self.keyed.check_key(key).and_then(|()| self.global.check());
        black_box(decision).is_err()
    }
}

/// Runs `iters` operations split over two threads released together by a barrier; returns the
/// wall time from the first start to the last finish, so time / iters is per operation.
fn two_threads(iters: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(2);
    let shares = [iters.div_ceil(2), iters / 2];
    let timed = |thread: usize| {
        barrier.wait();
        let start = Instant::now();
        op(thread, shares[thread]);
        (start, Instant::now())
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| timed(1));
        let (start0, end0) = timed(0);
        let (start1, end1) = other.join().expect("bench thread panicked");
        end0.max(end1) - start0.min(start1)
    })
}

#[derive(Clone, Copy)]
enum Expect {
    Admitted,
    Refused,
}

fn check(refused: u64, iters: u64, expect: Expect) {
    match expect {
        Expect::Admitted => assert_eq!(refused, 0, "a bucket ran dry during the measurement"),
        Expect::Refused => assert_eq!(refused, iters, "a call was admitted"),
    }
}

/// Benches pacer and governor over the same keys, on 1 and 2 threads (or 1 only).
/// pacer on both clocks and governor: the rows of most groups.
const RUNNERS: [(&str, Runner); 3] = [
    ("pacer", Limiters::run_pacer),
    ("pacer-tsc", Limiters::run_pacer_tsc),
    ("governor", Limiters::run_governor),
];

/// [`RUNNERS`] and pacer with per-thread leases on both clocks: the rows of `single`.
const SINGLE_RUNNERS: [(&str, Runner); 5] = [
    ("pacer", Limiters::run_pacer),
    ("pacer-leases", Limiters::run_pacer_leases),
    ("pacer-tsc", Limiters::run_pacer_tsc),
    ("pacer-tsc-leases", Limiters::run_pacer_tsc_leases),
    ("governor", Limiters::run_governor),
];

fn bench_pair(
    group: &mut BenchmarkGroup<'_, WallTime>,
    limiters: &OnceCell<Limiters>,
    make: &dyn Fn() -> Limiters,
    suffixes: &[&str],
    threads: &[usize],
    expect: Expect,
) {
    bench_runners(group, limiters, make, &RUNNERS, suffixes, threads, expect);
}

/// Benches each of `runners` over the same keys, on each thread count of `threads`.
fn bench_runners(
    group: &mut BenchmarkGroup<'_, WallTime>,
    limiters: &OnceCell<Limiters>,
    make: &dyn Fn() -> Limiters,
    runners: &[(&str, Runner)],
    suffixes: &[&str],
    threads: &[usize],
    expect: Expect,
) {
    for (&thread_count, suffix) in threads.iter().zip(suffixes) {
        // The same measurement for every limiter, so they differ only in the call under test.
        for &(name, run) in runners {
            group.bench_function(format!("{name}/{suffix}"), |b| {
                let l = limiters.get_or_init(make);
                let mut cursor = 0usize;
                b.iter_custom(|iters| {
                    cursor = cursor.wrapping_add(7919);
                    if thread_count == 1 {
                        let start = Instant::now();
                        let refused = run(l, cursor, iters);
                        let elapsed = start.elapsed();
                        check(refused, iters, expect);
                        elapsed
                    } else {
                        let half = l.keys.len() / 2;
                        let refused = std::sync::atomic::AtomicU64::new(0);
                        let elapsed = two_threads(iters, |t, n| {
                            let r = run(l, cursor + t * half, n);
                            refused.fetch_add(r, Ordering::Relaxed);
                        });
                        check(refused.into_inner(), iters, expect);
                        elapsed
                    }
                });
            });
        }
    }
}

/// Runs `n` decisions from key index `start` on one limiter, returning how many were refused.
type Runner = fn(&Limiters, usize, u64) -> u64;

fn single(c: &mut Criterion, quick: bool) {
    let sizes: &[usize] = if quick {
        &[1, 1_000, 10_000]
    } else {
        &[1, 1_000, 100_000, 1_000_000]
    };
    for &size in sizes {
        let mut group = c.benchmark_group(format!("single/{size}"));
        group
            .throughput(Throughput::Elements(1))
            .sample_size(20)
            .warm_up_time(Duration::from_millis(1500))
            .measurement_time(Duration::from_secs(3));
        let limiters = OnceCell::new();
        let make = || {
            Limiters::new(
                size,
                (pacer_global_huge(), pacer_namespace_huge()),
                (gov_global_huge(), gov_namespace_huge()),
                true,
                max_namespaces_for(size),
            )
        };
        bench_runners(
            &mut group,
            &limiters,
            &make,
            &SINGLE_RUNNERS,
            &["1t", "2t"],
            &[1, 2],
            Expect::Admitted,
        );
        group.finish();
    }
}

/// One decision with the namespace made from its name in the same call (a header's value per
/// request), so that pacer's hashing at `Namespace::new` is measured too.
fn new_key(c: &mut Criterion) {
    let size = 1_000;
    let mut group = c.benchmark_group(format!("new-key/{size}"));
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(1000))
        .measurement_time(Duration::from_secs(2));
    let limiters = OnceCell::new();
    let make = || {
        Limiters::new(
            size,
            (pacer_global_huge(), pacer_namespace_huge()),
            (gov_global_huge(), gov_namespace_huge()),
            true,
            max_namespaces_for(size),
        )
    };
    let runners: [(&str, Runner); 2] = [
        ("pacer-tsc", Limiters::run_pacer_tsc_new_key),
        ("governor", Limiters::run_governor_new_key),
    ];
    bench_runners(
        &mut group,
        &limiters,
        &make,
        &runners,
        &["1t"],
        &[1],
        Expect::Admitted,
    );
    group.finish();
}

fn refused(c: &mut Criterion) {
    let size = 1_000;
    let mut group = c.benchmark_group(format!("refused/{size}"));
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(1000))
        .measurement_time(Duration::from_secs(2));
    // Namespace buckets empty (one request a minute, taken by the pre-warm).
    let ns_empty = OnceCell::new();
    let make_ns = || {
        Limiters::new(
            size,
            (pacer_global_huge(), pacer_one_per_minute()),
            (gov_global_huge(), gov_one_per_minute()),
            false,
            max_namespaces_for(size),
        )
    };
    bench_pair(
        &mut group,
        &ns_empty,
        &make_ns,
        &["namespace"],
        &[1],
        Expect::Refused,
    );
    // Global bucket empty. governor's emulation takes the namespace token before the global
    // refusal (it cannot decide both at once); pacer leaves the namespace bucket untouched.
    let global_empty = OnceCell::new();
    let make_global = || {
        Limiters::new(
            size,
            (pacer_one_per_minute(), pacer_namespace_huge()),
            (gov_one_per_minute(), gov_namespace_huge()),
            false,
            max_namespaces_for(size),
        )
    };
    bench_pair(
        &mut group,
        &global_empty,
        &make_global,
        &["global"],
        &[1],
        Expect::Refused,
    );
    group.finish();
}

/// More distinct names than pacer's `max_namespaces` (a server keyed on a header, under a flood
/// of made-up names): 100 000 names cycling through a limiter capped at 10 000, so most calls
/// find their shard full and go to the overflow bucket. governor has no cap and simply grows.
fn flood(c: &mut Criterion, quick: bool) {
    let (size, cap) = if quick {
        (10_000, 1_000)
    } else {
        (100_000, 10_000)
    };
    let mut group = c.benchmark_group(format!("flood/{size}-names-cap-{cap}"));
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(1000))
        .measurement_time(Duration::from_secs(2));
    let limiters = OnceCell::new();
    let make = || {
        Limiters::new(
            size,
            (pacer_global_huge(), pacer_namespace_huge()),
            (gov_global_huge(), gov_namespace_huge()),
            false,
            cap,
        )
    };
    bench_pair(
        &mut group,
        &limiters,
        &make,
        &["1t"],
        &[1],
        Expect::Admitted,
    );
    group.finish();
}

/// Live heap bytes per namespace after one decision for each of `n` distinct namespaces.
fn memory(n: usize) {
    let names: Vec<String> = (0..n).map(name).collect();
    println!();
    println!("memory: live heap bytes per namespace after one decision for each of {n} names");
    println!(
        "  (requested sizes; governor keeps each Arc<str> key, {} bytes, pacer keeps none (a 64-bit key per bucket); limiter built before counting)",
        16 + names[0].len()
    );
    println!(
        "  {:<34} {:>12} {:>12} {:>14} {:>16}",
        "limiter", "tracked", "bytes/ns", "bytes/tracked", "peak bytes/ns"
    );
    let row = |label: &str, tracked: usize, before: usize, after: usize, peak: usize| {
        println!(
            "  {label:<34} {tracked:>12} {:>12.1} {:>14.1} {:>16.1}",
            (after - before) as f64 / n as f64,
            (after - before) as f64 / tracked.max(1) as f64,
            (peak - before) as f64 / n as f64,
        );
    };

    for max_namespaces in [n, max_namespaces_for(n)] {
        let limiter = RateLimiter::builder()
            .global(pacer_global_huge())
            .per_namespace(pacer_namespace_huge())
            .max_namespaces(max_namespaces)
            .build()
            .expect("valid limiter");
        let before = counting_alloc::live();
        counting_alloc::reset_peak();
        for name in &names {
            let ns = Namespace::new(Arc::<str>::from(name.as_str()));
            limiter.try_acquire(&ns).expect("never runs dry");
        }
        let after = counting_alloc::live();
        let peak = counting_alloc::peak();
        let tracked = limiter.tracked_namespaces();
        row(
            &format!("pacer (max_namespaces {max_namespaces})"),
            tracked,
            before,
            after,
            peak,
        );
    }

    let global = DefaultDirectRateLimiter::direct(gov_global_huge());
    let keyed = Keyed::keyed(gov_namespace_huge());
    let before = counting_alloc::live();
    counting_alloc::reset_peak();
    for name in &names {
        let key: Arc<str> = Arc::from(name.as_str());
        keyed
            .check_key(&key)
            .and_then(|()| global.check())
            .expect("never runs dry");
    }
    let after = counting_alloc::live();
    let peak = counting_alloc::peak();
    row(
        "governor (dashmap keyed + direct)",
        keyed.len(),
        before,
        after,
        peak,
    );
}

/// Latency figures of a set of per-call timings, in nanoseconds.
struct Latency {
    calls: usize,
    max: u64,
    p999: u64,
    p99: u64,
    p50: u64,
    over_10us: usize,
    over_100us: usize,
    over_1ms: usize,
}

impl Latency {
    fn of(mut nanos: Vec<u64>) -> Self {
        nanos.sort_unstable();
        let at = |q: f64| nanos[((nanos.len() - 1) as f64 * q).round() as usize];
        let over = |limit: u64| nanos.len() - nanos.partition_point(|&t| t <= limit);
        Self {
            calls: nanos.len(),
            max: nanos.last().copied().unwrap_or_default(),
            p999: at(0.999),
            p99: at(0.99),
            p50: at(0.5),
            over_10us: over(10_000),
            over_100us: over(100_000),
            over_1ms: over(1_000_000),
        }
    }
}

fn print_latency_header() {
    println!(
        "  {:<46} {:>9} {:>9} {:>8} {:>7} {:>7} {:>7} {:>7} {:>6}",
        "case", "calls", "max us", "p99.9", "p99", "median", ">10us", ">100us", ">1ms"
    );
}

fn print_latency(label: &str, l: &Latency, note: &str) {
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "  {label:<46} {:>9} {:>9.1} {:>8.2} {:>7.2} {:>7.3} {:>7} {:>7} {:>6}   {note}",
        l.calls,
        us(l.max),
        us(l.p999),
        us(l.p99),
        us(l.p50),
        l.over_10us,
        l.over_100us,
        l.over_1ms
    );
}

/// Times calls of `op` one by one, for `duration` of wall time.
fn time_calls_for(duration: Duration, mut op: impl FnMut(usize) -> bool) -> Vec<u64> {
    let mut nanos = Vec::with_capacity(1 << 22);
    let begin = Instant::now();
    let mut i = 0;
    loop {
        // Check the deadline every 4096 calls, outside the timed region.
        if i % 4096 == 0 && begin.elapsed() >= duration {
            return nanos;
        }
        let start = Instant::now();
        let admitted = op(i);
        let elapsed = start.elapsed();
        black_box(admitted);
        nanos.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        i += 1;
    }
}

/// Namespace buckets that refill `refill` after their one request (burst 1).
fn pacer_refilling(max_namespaces: usize, refill: Duration) -> RateLimiter {
    RateLimiter::builder()
        .global(pacer_global_huge())
        .per_namespace(
            Quota::every(refill)
                .and_then(|q| q.with_burst(1))
                .expect("valid quota"),
        )
        .max_namespaces(max_namespaces)
        .max_wait(Duration::ZERO)
        .build()
        .expect("valid limiter")
}

/// The longest single call while pacer forgets `n` idle namespaces, against governor's sweep.
///
/// Each namespace bucket refills `refill` after its one request (`refill` is longer than it
/// takes to fill the table, so none is forgotten before the measurement starts), and pacer
/// sweeps one shard at a time so that a full pass takes one `refill` (its sweep period). The
/// calls are timed for 1.25 passes: 7 of 8 on a few live keys, 1 of 8 on a key never seen.
fn stall(n: usize, refill: Duration) {
    const LIVE_KEYS: usize = 8;
    let measure_for = refill + refill / 4;
    let live: Vec<Arc<str>> = (0..LIVE_KEYS)
        .map(|i| Arc::from(format!("live-{i}").as_str()))
        .collect();
    let fresh: Vec<Arc<str>> = (0..n.clamp(1_000, 500_000))
        .map(|i| Arc::from(format!("fresh-{i:07}").as_str()))
        .collect();
    let key = |i: usize| -> &Arc<str> {
        if i % 8 == 7 {
            &fresh[(i / 8) % fresh.len()]
        } else {
            &live[i % LIVE_KEYS]
        }
    };
    let live_ns: Vec<Namespace> = live.iter().cloned().map(Namespace::new).collect();
    let fresh_ns: Vec<Namespace> = fresh.iter().cloned().map(Namespace::new).collect();
    let ns = |i: usize| -> &Namespace {
        if i % 8 == 7 {
            &fresh_ns[(i / 8) % fresh_ns.len()]
        } else {
            &live_ns[i % LIVE_KEYS]
        }
    };
    let idle: Vec<Arc<str>> = (0..n).map(|i| Arc::from(name(i).as_str())).collect();
    let idle_ns: Vec<Namespace> = idle.iter().cloned().map(Namespace::new).collect();
    let max_namespaces = max_namespaces_for(n);

    println!();
    println!(
        "stall: every call timed for {:.2} s, 7 of 8 on {LIVE_KEYS} live keys and 1 of 8 on a new key,",
        measure_for.as_secs_f64()
    );
    println!(
        "  after {n} namespaces went idle (per-namespace quota: 1 request per {:?}, burst 1; all refilled)",
        refill
    );
    print_latency_header();

    // Control: the same calls on a limiter with nothing idle to evict: the noise floor of this
    // machine (preemption by other processes, page faults, the timer itself).
    let control = pacer_refilling(max_namespaces, refill);
    let lat = Latency::of(time_calls_for(measure_for, |i| {
        control.try_acquire(ns(i)).is_ok()
    }));
    print_latency("pacer, nothing idle (control)", &lat, "");
    drop(control);

    // Fill everything, then wait until every bucket has refilled.
    let timed_fill = |label: &str, fill: &dyn Fn()| {
        let start = Instant::now();
        fill();
        let took = start.elapsed();
        if took >= refill {
            println!(
                "  note: filling {label} took {took:?}, longer than the refill time: some namespaces were already forgotten"
            );
        }
    };
    let pacer_stall = pacer_refilling(max_namespaces, refill);
    let pacer_bulk = pacer_refilling(max_namespaces, refill);
    let fill_pacer = |limiter: &RateLimiter| {
        for ns in &idle_ns {
            let _ = limiter.try_acquire(ns);
        }
    };
    timed_fill("pacer", &|| fill_pacer(&pacer_stall));
    timed_fill("pacer", &|| fill_pacer(&pacer_bulk));
    let gov_quota = GovQuota::with_period(refill).expect("valid quota");
    let global = DefaultDirectRateLimiter::direct(gov_global_huge());
    let gov_alone = Keyed::keyed(gov_quota);
    let gov_shared = Keyed::keyed(gov_quota);
    let fill_gov = |keyed: &Keyed| {
        for key in &idle {
            let _ = keyed.check_key(key);
        }
    };
    timed_fill("governor", &|| fill_gov(&gov_alone));
    timed_fill("governor", &|| fill_gov(&gov_shared));
    std::thread::sleep(refill + Duration::from_millis(10));

    let tracked_before = pacer_stall.tracked_namespaces();
    let calls = time_calls_for(measure_for, |i| pacer_stall.try_acquire(ns(i)).is_ok());
    let new_keys = (calls.len() / 8).min(fresh_ns.len());
    let lat = Latency::of(calls);
    print_latency(
        "pacer try_acquire, incremental eviction",
        &lat,
        &format!(
            "tracked {tracked_before} -> {} (incl. up to {new_keys} new keys)",
            pacer_stall.tracked_namespaces()
        ),
    );
    drop(pacer_stall);

    let tracked_before = pacer_bulk.tracked_namespaces();
    let start = Instant::now();
    let evicted = pacer_bulk.evict_refilled();
    let took = start.elapsed();
    let per_entry = took.as_secs_f64() * 1e9 / evicted.max(1) as f64;
    println!(
        "  {:<46} {:>9} {:>9.1} {:>51}   evicted {evicted} of {tracked_before}: {per_entry:.0} ns each, ~{:.0} us per 1024-entry shard",
        "pacer evict_refilled() (all shards, one call)",
        1,
        took.as_secs_f64() * 1e6,
        "",
        per_entry * 1024.0 / 1e3
    );
    drop(pacer_bulk);

    let tracked_before = gov_alone.len();
    let start = Instant::now();
    gov_alone.retain_recent();
    let took = start.elapsed();
    println!(
        "  {:<46} {:>9} {:>9.1} {:>51}   tracked {tracked_before} -> {}",
        "governor retain_recent() (one call)",
        1,
        took.as_secs_f64() * 1e6,
        "",
        gov_alone.len()
    );
    drop(gov_alone);

    // What a caller sees while another thread runs governor's sweep.
    let sweeping = AtomicBool::new(true);
    let (nanos, sweep) = std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            let mut nanos = Vec::with_capacity(1 << 20);
            let mut i = 0;
            while sweeping.load(Ordering::Relaxed) {
                let start = Instant::now();
                let admitted = gov_shared
                    .check_key(key(i))
                    .and_then(|()| global.check())
                    .is_ok();
                let elapsed = start.elapsed();
                black_box(admitted);
                nanos.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
                i += 1;
            }
            nanos
        });
        // Let the caller get going, then sweep under it.
        std::thread::sleep(Duration::from_millis(2));
        let start = Instant::now();
        gov_shared.retain_recent();
        let sweep = start.elapsed();
        sweeping.store(false, Ordering::Relaxed);
        (caller.join().expect("caller panicked"), sweep)
    });
    let lat = Latency::of(nanos);
    print_latency(
        "governor check_key+check, retain_recent() beside",
        &lat,
        &format!("the sweep took {:.0} us", sweep.as_secs_f64() * 1e6),
    );
}

/// The longest calls under a flood: `names` made-up names, each seen once, through one
/// limiter with the default cap (100 000) and per-namespace quota, against the same number of calls cycling over
/// 1 000 names that stay in the table. Names are made outside the timed call, and dropped
/// after it.
fn flood_stall(names: usize) {
    println!();
    println!(
        "flood stall: {names} calls of try_acquire on one thread, default max_namespaces (100 000)"
    );
    print_latency_header();
    // The default per-namespace quota (5/s, burst 10): a name's bucket is full again 200 ms
    // after its one request, so the table churns: full shards are swept and their buckets
    // evicted while the flood goes on.
    let limiter = |clock: LimiterClock| {
        RateLimiter::builder()
            .global(pacer_global_huge())
            .max_wait(Duration::ZERO)
            .clock(clock)
            .build()
            .expect("valid limiter")
    };
    for (clock, label) in [(LimiterClock::Tokio, "tokio"), (LimiterClock::Tsc, "tsc")] {
        let flooded = limiter(clock.clone());
        let mut nanos = Vec::with_capacity(names);
        for i in 0..names {
            let namespace = Namespace::new(format!("flood-{i:09}"));
            let start = Instant::now();
            let admitted = flooded.try_acquire(&namespace).is_ok();
            let elapsed = start.elapsed();
            black_box(admitted);
            drop(namespace);
            nanos.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        }
        let tracked = flooded.tracked_namespaces();
        print_latency(
            &format!("pacer ({label} clock), {names} made-up names"),
            &Latency::of(nanos),
            &format!("tracked {tracked}"),
        );

        let steady = limiter(clock);
        let kept: Vec<Namespace> = (0..1_000).map(|i| Namespace::new(name(i))).collect();
        let mut nanos = Vec::with_capacity(names);
        for i in 0..names {
            let namespace = kept[i % kept.len()].clone();
            let start = Instant::now();
            let admitted = steady.try_acquire(&namespace).is_ok();
            let elapsed = start.elapsed();
            black_box(admitted);
            drop(namespace);
            nanos.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        }
        print_latency(
            &format!("pacer ({label} clock), 1 000 names kept (control)"),
            &Latency::of(nanos),
            "",
        );
    }
}

/// Whether a section that criterion does not run should run, given the command line filters.
fn wanted(section: &str) -> bool {
    // Options of criterion's CLI that take a value; their values are not filters.
    const WITH_VALUE: &[&str] = &[
        "--save-baseline",
        "-s",
        "--baseline",
        "-b",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--plotting-backend",
        "--output-format",
        "--color",
        "-c",
        "--format",
    ];
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    filters.is_empty() || filters.iter().any(|f| section.contains(f.as_str()))
}

fn main() {
    // CI's smoke run: `cargo bench ... -- --test` runs every benchmark once; keep it quick.
    let quick = std::env::args().any(|a| a == "--test");
    let mut criterion = Criterion::default().configure_from_args();
    single(&mut criterion, quick);
    new_key(&mut criterion);
    refused(&mut criterion);
    flood(&mut criterion, quick);
    criterion.final_summary();

    let (n, refill) = if quick {
        (10_000, Duration::from_millis(100))
    } else {
        (1_000_000, Duration::from_secs(2))
    };
    if wanted("memory") {
        memory(n);
    }
    if wanted("stall") {
        stall(n, refill);
    }
    if wanted("flood-stall") {
        flood_stall(if quick { 200_000 } else { 10_000_000 });
    }
}
