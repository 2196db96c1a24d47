//! [`BlockingRuntime`]: the tokio runtime a blocking client owns, with the guard against
//! being driven (or dropped) from inside another runtime.
//!
//! A blocking twin of an async client (pacer's [`blocking::Client`](super::blocking::Client),
//! pacer-admin's, pacer-inventory's) runs each call to completion on a runtime of its own.
//! Two things go wrong when such a twin is used from async code:
//!
//! - blocking a thread that is inside a runtime would stall that runtime (tokio panics
//!   rather than allow it): [`BlockingRuntime::block_on`] refuses instead, with the typed
//!   error [`InRuntime`];
//! - dropping a runtime inside an async context panics in tokio: the last clone of a
//!   [`BlockingRuntime`] dropped there shuts its runtime down in the background instead.
//!
//! Clones share one runtime (one worker thread, which keeps connection pools, timers and
//! spawned tasks going between calls); build the async client inside [`BlockingRuntime::enter`]
//! so that whatever it spawns at construction lands on that runtime.
//!
//! ```
//! use pacer::client::runtime::BlockingRuntime;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = BlockingRuntime::new("my-api-blocking")?;
//! let answer = runtime.block_on(async { 6 * 7 })?;
//! assert_eq!(answer, 42);
//!
//! // From inside a runtime it refuses rather than block one of its threads.
//! let outer = tokio::runtime::Builder::new_current_thread().build()?;
//! let refused = outer.block_on(async { runtime.block_on(async { 1 }) });
//! assert!(refused.is_err());
//! // ...and dropping the last clone there does not panic.
//! outer.block_on(async move { drop(runtime) });
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{EnterGuard, Handle, Runtime};

/// A tokio runtime owned by a blocking client; see the [module docs](self). `Clone + Send +
/// Sync`: clones share the runtime, which shuts down when the last one is dropped.
#[derive(Clone)]
pub struct BlockingRuntime {
    owned: Arc<OwnedRuntime>,
}

/// The runtime, shut down without blocking when dropped inside an async context (where a
/// blocking shutdown would panic).
struct OwnedRuntime {
    runtime: Option<Runtime>,
    thread_name: Arc<str>,
}

impl Drop for OwnedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            if Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
            // Outside a runtime the plain drop waits for the worker to finish its tasks.
        }
    }
}

impl BlockingRuntime {
    /// Starts a multi-thread runtime with one worker thread named `thread_name`, with the
    /// I/O and time drivers.
    pub fn new(thread_name: &str) -> std::io::Result<BlockingRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()?;
        Ok(BlockingRuntime {
            owned: Arc::new(OwnedRuntime {
                runtime: Some(runtime),
                thread_name: thread_name.into(),
            }),
        })
    }

    /// Enters the runtime's context until the guard is dropped: build the async client
    /// inside it, so that anything it spawns or registers at construction uses this runtime.
    pub fn enter(&self) -> EnterGuard<'_> {
        self.handle().enter()
    }

    /// A handle to the runtime (to spawn onto it).
    pub fn handle(&self) -> &Handle {
        self.runtime().handle()
    }

    /// Runs `future` to completion on the runtime, blocking the calling thread.
    ///
    /// Refuses with [`InRuntime`] (without polling `future`) when the calling thread is
    /// inside a tokio runtime, this one or any other: blocking there would stall it.
    ///
    /// `future` is created by the caller, outside the runtime's context: make it lazy (an
    /// `async` block or `async fn` call) if building it needs the runtime (a timer, a socket).
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output, InRuntime> {
        if Handle::try_current().is_ok() {
            return Err(InRuntime {
                thread_name: Arc::clone(&self.owned.thread_name),
            });
        }
        Ok(self.runtime().block_on(future))
    }

    fn runtime(&self) -> &Runtime {
        // `runtime` is `Some` until `OwnedRuntime::drop`, which runs after every clone is gone.
        match &self.owned.runtime {
            Some(runtime) => runtime,
            None => unreachable!("a BlockingRuntime outlived its runtime"),
        }
    }
}

impl fmt::Debug for BlockingRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingRuntime")
            .field("thread_name", &self.owned.thread_name)
            .finish_non_exhaustive()
    }
}

/// [`BlockingRuntime::block_on`] was called from a thread inside a tokio runtime: use the
/// async client there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InRuntime {
    thread_name: Arc<str>,
}

impl InRuntime {
    /// The thread name of the blocking runtime that refused (names the client).
    pub fn thread_name(&self) -> &str {
        &self.thread_name
    }
}

impl fmt::Display for InRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a blocking call (runtime {:?}) was made from within an async runtime, where it \
             would stall that runtime; use the async client there",
            self.thread_name
        )
    }
}

impl std::error::Error for InRuntime {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn runs_futures_and_clones_share_the_runtime() {
        let runtime = BlockingRuntime::new("pacer-test-rt").unwrap();
        let clone = runtime.clone();
        let name = runtime
            .block_on(async {
                tokio::spawn(async { std::thread::current().name().map(str::to_owned) })
                    .await
                    .unwrap()
            })
            .unwrap();
        assert_eq!(name.as_deref(), Some("pacer-test-rt"));
        // A task spawned through one clone keeps running and is awaited through the other.
        let (tx, rx) = tokio::sync::oneshot::channel();
        runtime.handle().spawn(async move { tx.send(7).unwrap() });
        assert_eq!(clone.block_on(rx).unwrap().unwrap(), 7);
        // Time works (the time driver is on).
        clone
            .block_on(async { tokio::time::sleep(std::time::Duration::from_millis(1)).await })
            .unwrap();
    }

    #[test]
    fn enter_lets_clients_be_built_on_it() {
        let runtime = BlockingRuntime::new("pacer-test-rt").unwrap();
        let _guard = runtime.enter();
        let handle = Handle::current();
        let task = handle.spawn(async { 5 });
        drop(_guard);
        assert_eq!(runtime.block_on(task).unwrap().unwrap(), 5);
    }

    #[test]
    fn refuses_inside_a_runtime_instead_of_panicking() {
        let runtime = BlockingRuntime::new("pacer-test-rt").unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let polled = std::sync::atomic::AtomicBool::new(false);
        let result = outer.block_on(async {
            runtime.block_on(async { polled.store(true, std::sync::atomic::Ordering::SeqCst) })
        });
        let error = result.unwrap_err();
        assert_eq!(error.thread_name(), "pacer-test-rt");
        assert!(error.to_string().contains("async runtime"), "{error}");
        assert!(!polled.load(std::sync::atomic::Ordering::SeqCst));
        // Also from a thread of its own runtime.
        let inner = runtime.clone();
        let from_own_worker = runtime
            .block_on(async move {
                tokio::spawn(async move { inner.block_on(async {}).is_err() })
                    .await
                    .unwrap()
            })
            .unwrap();
        assert!(from_own_worker);
        // And it still works from a plain thread afterwards.
        assert_eq!(runtime.block_on(async { 1 }).unwrap(), 1);
    }

    #[test]
    fn dropping_the_last_clone_inside_a_runtime_does_not_panic() {
        let runtime = BlockingRuntime::new("pacer-test-rt").unwrap();
        let clone = runtime.clone();
        runtime
            .handle()
            .spawn(async { tokio::time::sleep(std::time::Duration::from_secs(3600)).await });
        let outer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        outer.block_on(async move { drop(runtime) });
        // The clone kept it alive; now the last one goes, inside an async context.
        outer.block_on(async move {
            drop(clone);
        });
    }

    #[test]
    fn dropping_outside_a_runtime_shuts_it_down() {
        struct Dropped(Option<std::sync::mpsc::Sender<()>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let runtime = BlockingRuntime::new("pacer-test-rt").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let guard = Dropped(Some(tx));
        runtime.handle().spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        drop(runtime);
        // The pending task was dropped with the runtime.
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    }
}
