//! [`Observer`], the trait the layers report to, and [`Events`], the handle a layer holds.

use std::fmt;
use std::sync::Arc;

use super::event::Event;

/// Receives the events the layers report. Called inline on the request's task: keep it cheap
/// and never block.
pub trait Observer: Send + Sync + 'static {
    /// One event happened.
    fn observe(&self, event: &Event<'_>);
}

impl<O: Observer + ?Sized> Observer for Arc<O> {
    fn observe(&self, event: &Event<'_>) {
        (**self).observe(event);
    }
}

impl<A: Observer, B: Observer> Observer for (A, B) {
    fn observe(&self, event: &Event<'_>) {
        self.0.observe(event);
        self.1.observe(event);
    }
}

/// Where a layer sends its events: no observer (the default, one branch per event) or a shared
/// one. Cheap to clone.
#[derive(Clone, Default)]
pub struct Events(Option<Arc<dyn Observer>>);

impl Events {
    /// Reports nothing.
    pub fn none() -> Self {
        Self(None)
    }

    /// Reports to `observer`.
    pub fn new(observer: impl Observer) -> Self {
        Self(Some(Arc::new(observer)))
    }

    /// Whether an observer is attached.
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Reports the event `make` builds, building it only when someone listens.
    #[inline]
    pub fn emit<'a>(&self, make: impl FnOnce() -> Event<'a>) {
        if let Some(observer) = &self.0 {
            observer.observe(&make());
        }
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Events(observer)"
        } else {
            "Events(none)"
        })
    }
}

impl<O: Observer> From<O> for Events {
    fn from(observer: O) -> Self {
        Self::new(observer)
    }
}
