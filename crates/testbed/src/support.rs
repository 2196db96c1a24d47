//! Helpers shared by the workspace's tests and benches, written once here.

use pacer::events::Events;
use pacer::rate_limit::{BuildError, Quota, RateLimiter};

/// A rate limiter whose quotas never bind in a test or a bench (10^9 requests per second,
/// a burst of a million, globally and per namespace), reporting to `events`: it measures
/// the limiter's own cost on its happy path, never a wait.
///
/// ```
/// use pacer::Namespace;
/// use pacer::events::Events;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = pacer_testbed::support::open_limiter(Events::none())?;
/// for _ in 0..10_000 {
///     limiter.try_acquire(&Namespace::new("team-a"))?;
/// }
/// # Ok(()) }
/// ```
pub fn open_limiter(events: impl Into<Events>) -> Result<RateLimiter, BuildError> {
    let quota = Quota::per_second(1e9)
        .and_then(|quota| quota.with_burst(1_000_000))
        .map_err(BuildError::GlobalQuota)?;
    RateLimiter::builder()
        .global(quota)
        .per_namespace(quota)
        .observer(events)
        .build()
}

/// Everything a `tracing` fmt subscriber writes, kept in memory, for tests that assert what
/// was (or was not) logged.
///
/// ```
/// use pacer_testbed::support::LogCapture;
/// use tracing_subscriber::filter::LevelFilter;
///
/// let logs = LogCapture::default();
/// tracing::subscriber::with_default(logs.subscriber(LevelFilter::INFO), || {
///     tracing::info!(tenant = "team-a", "hello");
///     tracing::debug!("below the level");
/// });
/// assert_eq!(logs.lines().len(), 1);
/// assert!(logs.text().contains("hello tenant=\"team-a\""));
/// ```
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// A fmt subscriber (no colours, no timestamps) writing every event at `level` or above
    /// into this capture; for `tracing::subscriber::set_default` or `with_default`.
    pub fn subscriber(
        &self,
        level: tracing_subscriber::filter::LevelFilter,
    ) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_max_level(level)
            .finish()
    }

    /// A capture installed as the process's global default subscriber at `level`.
    ///
    /// Use it rather than a thread-local default when the code under test logs from other
    /// threads (a multi-threaded runtime, a blocking client): a scoped subscriber can miss
    /// events whose callsites another thread registered first (tracing's interest cache). The
    /// other tests of the binary then log into it too, which only widens what is checked.
    ///
    /// # Panics
    /// When the binary already has a global default subscriber.
    pub fn install_global(level: tracing_subscriber::filter::LevelFilter) -> Self {
        let capture = Self::default();
        tracing::subscriber::set_global_default(capture.subscriber(level))
            .unwrap_or_else(|_| panic!("a global tracing subscriber was already set"));
        capture
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// [`text`](Self::text), line by line.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

impl std::fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.0.lock().map_or(0, |bytes| bytes.len());
        f.debug_struct("LogCapture").field("bytes", &len).finish()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Arbitrary JSON for the decoders' property tests (feature `proptest`): any shape, nested a
/// few levels, numbers at their extremes, and, so that near-valid shapes come up often,
/// string values drawn from `strings` and object keys from `keys` (the names the decoder
/// under test looks for).
#[cfg(feature = "proptest")]
pub fn arbitrary_json(
    strings: &'static [&'static str],
    keys: &'static [&'static str],
) -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;

    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(strings).prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(keys), inner, 0..6).prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}
