//! Routing: [`Rule`] (path prefix, method, which matching requests) and the ordered,
//! shared rule list that picks a [`Behaviour`] for each request.

use std::sync::{Mutex, MutexGuard, PoisonError};

use http::Method;

use super::Behaviour;

/// Which request a [`Rule`] answers: a path prefix, optionally a method, optionally only
/// some of the matching requests (the n-th, or the n-th and later), and the [`Behaviour`].
///
/// Every rule counts the requests that match its prefix and method (1 for the first),
/// whether or not it is the rule that answers them, so that
/// `[Rule::new(p, Normal).nth(1), Rule::new(p, StallBody).from_nth(2)]` makes the first
/// request to `p` succeed and every later one stall. Counting starts when the rule is added.
///
/// ```
/// use http::Method;
/// use pacer_testbed::hostile::{Behaviour, Rule};
///
/// // The second GET under /admin/realms, and only that one, gets a truncated body.
/// let rule = Rule::new("/admin/realms", Behaviour::TruncatedBody)
///     .method(Method::GET)
///     .nth(2);
/// assert_eq!(rule.behaviour(), &Behaviour::TruncatedBody);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    prefix: String,
    method: Option<Method>,
    first: u64,
    last: Option<u64>,
    behaviour: Behaviour,
}

impl Rule {
    /// Answers every request whose path (without the query) starts with `prefix` with
    /// `behaviour`. `"/"` (or `""`) matches every request.
    pub fn new(prefix: impl Into<String>, behaviour: Behaviour) -> Self {
        Self {
            prefix: prefix.into(),
            method: None,
            first: 1,
            last: None,
            behaviour,
        }
    }

    /// Only requests with this method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Only the `n`-th matching request (1 is the first; 0 never matches).
    pub fn nth(mut self, n: u64) -> Self {
        self.first = n;
        self.last = Some(n);
        self
    }

    /// The `n`-th matching request and every later one (0 and 1 are the same: all).
    pub fn from_nth(mut self, n: u64) -> Self {
        self.first = n;
        self.last = None;
        self
    }

    /// The behaviour this rule answers with.
    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// The path prefix it matches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        path.starts_with(&self.prefix) && self.method.as_ref().is_none_or(|m| m.as_str() == method)
    }

    fn selects(&self, n: u64) -> bool {
        n >= self.first && self.last.is_none_or(|last| n <= last)
    }
}

/// A rule and its counters.
#[derive(Debug)]
struct Routed {
    rule: Rule,
    /// Requests that matched the prefix and method.
    matched: u64,
    /// Requests this rule answered.
    answered: u64,
}

impl Routed {
    fn new(rule: Rule) -> Self {
        Self {
            rule,
            matched: 0,
            answered: 0,
        }
    }
}

/// What the rule list decided for one request.
#[derive(Debug)]
pub(super) struct Decision {
    pub(super) behaviour: Behaviour,
    /// How many requests the deciding rule has answered, this one included (1 for the
    /// first); 0 when no rule matched. [`Behaviour::ThrottleGrowing`] grows with it.
    pub(super) answered: u64,
}

/// The ordered rule list, shared by every connection and changeable while the server runs.
#[derive(Debug, Default)]
pub(super) struct Rules {
    list: Mutex<Vec<Routed>>,
}

impl Rules {
    pub(super) fn new(rules: Vec<Rule>) -> Self {
        Self {
            list: Mutex::new(rules.into_iter().map(Routed::new).collect()),
        }
    }

    pub(super) fn push(&self, rule: Rule) {
        self.lock().push(Routed::new(rule));
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    /// The first rule (in order) that matches and selects this request; every matching
    /// rule counts it. No rule: [`Behaviour::Normal`].
    pub(super) fn decide(&self, method: &str, path: &str) -> Decision {
        let mut list = self.lock();
        let mut decision = None;
        for routed in list.iter_mut() {
            if !routed.rule.matches(method, path) {
                continue;
            }
            routed.matched = routed.matched.saturating_add(1);
            if decision.is_none() && routed.rule.selects(routed.matched) {
                routed.answered = routed.answered.saturating_add(1);
                decision = Some(Decision {
                    behaviour: routed.rule.behaviour.clone(),
                    answered: routed.answered,
                });
            }
        }
        decision.unwrap_or(Decision {
            behaviour: Behaviour::Normal,
            answered: 0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Routed>> {
        // A panic elsewhere cannot leave the list half-changed: every change is one call.
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
