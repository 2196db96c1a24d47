//! Namespaces chosen by whoever sends requests must not grow memory without bound: ten million
//! distinct names stay within `max_namespaces` buckets, measured in live heap bytes.
#![allow(clippy::unwrap_used)]

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::fmt::Write;

use counting_alloc::CountingAlloc;
use pacer::Namespace;
use pacer::rate_limit::{Quota, RateLimiter};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

#[test]
fn ten_million_distinct_namespaces_stay_within_the_cap() {
    // Paused time: no bucket refills during the flood, so the count of admitted requests is
    // exact (with time passing, refilled buckets are forgotten and room frees up again).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let _guard = runtime.enter();
    const CAP: usize = 10_000;
    let limiter = RateLimiter::builder()
        .global(
            Quota::per_second(1e9)
                .unwrap()
                .with_burst(u32::MAX)
                .unwrap(),
        )
        .per_namespace(Quota::per_second(5).unwrap().with_burst(10).unwrap())
        .max_namespaces(CAP)
        .build()
        .unwrap();
    let before = ALLOC.live_bytes();

    let mut name = String::new();
    let mut high_water = 0;
    let mut admitted = 0u64;
    for i in 0..10_000_000u64 {
        name.clear();
        write!(name, "attacker-{i:016x}").unwrap();
        if limiter.try_acquire(&Namespace::new(name.as_str())).is_ok() {
            admitted += 1;
        }
        if i % 100_000 == 0 {
            high_water = high_water.max(ALLOC.live_bytes().saturating_sub(before));
        }
    }
    let tracked = limiter.tracked_namespaces();
    let grown = ALLOC.live_bytes().saturating_sub(before).max(high_water);
    println!(
        "10M distinct namespaces: {tracked} tracked, {admitted} admitted, {grown} bytes grown ({} per tracked namespace)",
        grown / tracked.max(1)
    );
    // The table holds at most the cap...
    assert!(tracked <= CAP, "tracked {tracked}");
    // ...and so does memory: 24-byte entries, ~40-byte names, table slack; far from 10M names.
    assert!(grown < CAP * 256, "grew {grown} bytes");
    // The flood got its own buckets up to the cap, then shared one overflow bucket (burst 10).
    assert_eq!(admitted, tracked as u64 + 10);
}
