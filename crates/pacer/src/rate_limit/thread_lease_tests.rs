//! Per-thread leases: what a lease takes and gives back, and the admitted-requests bound of
//! every bucket with several threads leasing at once.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::advance;

use super::tests::{drain, quota};
use super::thread_lease::{WAYS, set_index};
use super::*;
use crate::namespace::Namespace;

fn leased(global: Quota, namespace: Quota) -> RateLimiter {
    RateLimiter::builder()
        .global(global)
        .per_namespace(namespace)
        .thread_leases(ThreadLeases::default())
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_thread_gets_the_whole_burst_and_then_the_rate() {
    // Leases must not cost a lone thread anything: the burst, then one per interval.
    let limiter = leased(quota(1e6, 1_000_000), quota(10.0, 200));
    let a = Namespace::new("a");
    assert_eq!(drain(&limiter, &a), 200);
    advance(Duration::from_millis(100)).await;
    assert_eq!(drain(&limiter, &a), 1);
    advance(Duration::from_millis(1_000)).await;
    assert_eq!(drain(&limiter, &a), 10);
}

#[tokio::test(start_paused = true)]
async fn the_global_bucket_is_leased_and_its_burst_still_holds() {
    let limiter = leased(quota(100.0, 400), quota(1e6, 1_000_000));
    let before = limiter.global_available();
    limiter.try_acquire(&Namespace::new("a")).unwrap();
    let leased_out = before - limiter.global_available();
    assert!(
        leased_out > 2,
        "one decision took {leased_out} global slots: no lease"
    );
    // The rest of the lease comes from the thread, not the bucket.
    for _ in 1..leased_out {
        limiter.try_acquire(&Namespace::new("b")).unwrap();
    }
    assert_eq!(before - limiter.global_available(), leased_out);
    // Draining at one instant admits the burst exactly: the lease took none of it for good.
    let admitted = leased_out as usize + drain(&limiter, &Namespace::new("c"));
    assert_eq!(admitted, 400);
}

/// `n` namespaces that share `namespace`'s set of the per-thread cache.
fn same_cache_set(namespace: &Namespace, n: usize) -> Vec<Namespace> {
    let set = set_index(namespace.key());
    (0..)
        .map(|i| Namespace::new(format!("neighbour-{i}")))
        .filter(|other| set_index(other.key()) == set)
        .take(n)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_namespace_lease_goes_back_when_its_cache_entry_is_pushed_out() {
    // Rate 10/s: the interval (100 ms) is far longer than the hold, so a lease loses nothing
    // to it, and a burst at one instant shows every slot.
    let limiter = leased(quota(1e6, 1_000_000), quota(10.0, 50));
    let a = Namespace::new("a");
    limiter.try_acquire(&a).unwrap();
    limiter.try_acquire(&a).unwrap(); // the second in a row leases A's bucket
    for neighbour in same_cache_set(&a, WAYS) {
        limiter.try_acquire(&neighbour).unwrap(); // the last pushes A out: its lease goes back
    }
    assert_eq!(drain(&limiter, &a), 48, "A's burst of 50 is whole");
}

#[test]
fn a_lease_another_thread_built_on_lapses_without_breaking_the_bound() {
    let limiter = RateLimiter::builder()
        .global(quota(1e6, 1_000_000))
        .per_namespace(quota(10.0, 50))
        .thread_leases(ThreadLeases::default())
        .clock(LimiterClock::Custom(Arc::new(SteppedClock::default())))
        .build()
        .unwrap();
    let a = Namespace::new("a");
    // Time stands still at 0; slots are 100 ms apart, the burst reaches 4.9 s.
    limiter.try_acquire(&a).unwrap(); // slot 0
    limiter.try_acquire(&a).unwrap(); // slot 0.1 s, and a lease of 0.2..1.3 s (11 slots)
    // Another thread takes 1.3 s, then leases 1.4..2.3 s and spends four of those slots: the
    // first lease can no longer go back, and the other thread's last five lapse with it.
    let taken = std::thread::scope(|scope| {
        scope
            .spawn(|| (0..5).filter(|_| limiter.try_acquire(&a).is_ok()).count())
            .join()
            .unwrap()
    });
    assert_eq!(taken, 5);
    for neighbour in same_cache_set(&a, WAYS) {
        limiter.try_acquire(&neighbour).unwrap();
    }
    // What is left is 2.3..4.9 s: 27 slots. Had the lapsed lease gone back over the other
    // thread's slots, they would have been given twice.
    assert_eq!(drain(&limiter, &a), 27);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_waiter_gives_its_slot_back_once_with_leases() {
    // A waiter's slot is given back when it is dropped; a waiter never holds a leased one.
    let limiter = leased(quota(1e6, 1_000_000), quota(10.0, 40));
    let a = Namespace::new("a");
    assert_eq!(drain(&limiter, &a), 40);
    let mut waiter = tokio_test::task::spawn(limiter.acquire(&a));
    assert!(waiter.poll().is_pending());
    drop(waiter);
    advance(Duration::from_millis(100)).await;
    assert_eq!(
        drain(&limiter, &a),
        1,
        "the dropped waiter's slot came back once"
    );
}

/// A clock the test steps between phases, so every decision of a phase has the same time.
#[derive(Debug, Default)]
struct SteppedClock(AtomicU64);

impl Clock for SteppedClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `count in [t_i, t_j] <= burst + (t_j - t_i) / interval` for every pair of phases, from the
/// admissions counted per phase time: the exact bound of a GCRA cell, in whole intervals of
/// the quota's nanoseconds (a rate of 28 417/s is an interval of 35 190 ns, a hair faster).
fn assert_bound(counts: &[(u64, u64)], quota: Quota, what: &str) -> Result<(), TestCaseError> {
    let interval = u64::try_from(quota.interval().as_nanos()).unwrap();
    for i in 0..counts.len() {
        let mut count = 0;
        for j in i..counts.len() {
            count += counts[j].1;
            let window = counts[j].0 - counts[i].0;
            let bound = u64::from(quota.burst()) + window / interval;
            prop_assert!(
                count <= bound,
                "{what}: {count} admitted within {window} ns > {bound} ({quota})"
            );
        }
    }
    Ok(())
}

fn per_phase(times: &mut [u64]) -> Vec<(u64, u64)> {
    times.sort_unstable();
    let mut counts: Vec<(u64, u64)> = Vec::new();
    for &t in times.iter() {
        match counts.last_mut() {
            Some((last, n)) if *last == t => *n += 1,
            _ => counts.push((t, 1)),
        }
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Threads deciding at once, each leasing, never admit more than a bucket's
    /// `burst + rate * window`, globally or per namespace.
    #[test]
    fn threads_with_leases_never_exceed_burst_plus_rate_times_window(
        threads in 1usize..5,
        phases in prop::collection::vec(
            (prop_oneof![2 => Just(0u64), 2 => 1u64..2_000_000, 1 => 1u64..300_000_000], 1usize..60),
            1..25,
        ),
        global_rate in 100u32..100_000,
        global_burst in 8u32..400,
        ns_rate in 10u32..20_000,
        ns_burst in 8u32..200,
        max_tokens in 2u32..64,
        hold_micros in 0u64..50,
        repeat in 0usize..4,
    ) {
        let clock = Arc::new(SteppedClock::default());
        let global = quota(f64::from(global_rate), global_burst);
        let namespace = quota(f64::from(ns_rate), ns_burst);
        let limiter = RateLimiter::builder()
            .global(global)
            .per_namespace(namespace)
            .thread_leases(ThreadLeases::new(max_tokens, Duration::from_micros(hold_micros)).unwrap())
            .clock(LimiterClock::Custom(clock.clone()))
            .build()
            .unwrap();
        let names: Vec<Namespace> = (0..3).map(|i| Namespace::new(format!("ns-{i}"))).collect();
        let barrier = Barrier::new(threads + 1);
        // (namespace, time) of every admission.
        let admitted = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for thread in 0..threads {
                let (limiter, names, barrier, admitted, phases) =
                    (&limiter, &names, &barrier, &admitted, &phases);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    let mut call = thread;
                    for &(_, calls) in phases {
                        barrier.wait();
                        let now = limiter.now();
                        for _ in 0..calls {
                            // Runs of `repeat + 1` calls per namespace, so threads lease.
                            let which = (call / (repeat + 1)) % names.len();
                            call += 1;
                            if limiter.try_acquire(&names[which]).is_ok() {
                                mine.push((which, now));
                            }
                        }
                        barrier.wait();
                    }
                    admitted.lock().unwrap().extend(mine);
                });
            }
            for &(step, _) in &phases {
                barrier.wait(); // the threads decide
                barrier.wait();
                clock.0.fetch_add(step, Ordering::SeqCst);
            }
        });
        let admitted = admitted.into_inner().unwrap();
        let mut all: Vec<u64> = admitted.iter().map(|&(_, t)| t).collect();
        assert_bound(&per_phase(&mut all), global, "global")?;
        for which in 0..names.len() {
            let mut times: Vec<u64> =
                admitted.iter().filter(|&&(n, _)| n == which).map(|&(_, t)| t).collect();
            assert_bound(&per_phase(&mut times), namespace, "namespace")?;
        }
    }
}
