//! The tokens a fake issued, each with what it was issued for, until it expires.
//!
//! Expiry reads tokio's clock, so a test in paused time can expire a token exactly.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::clock::deadline;
use super::jwt::jwt;

/// A table is pruned of its expired tokens once it holds this many, so a long run that
/// keeps logging in does not grow it without end.
const PRUNE_AT: usize = 4096;

/// What a table knows of a presented token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Presented<'a, T> {
    /// Issued and not expired: what it was issued for.
    Live(&'a T),
    /// Issued, but its lifetime is over.
    Expired,
    /// Never issued (or forgotten).
    Unknown,
}

/// Issued tokens, each with its grant (`T`) and expiry.
#[derive(Debug)]
pub(crate) struct Tokens<T> {
    issued: HashMap<String, (T, Instant)>,
}

impl<T> Default for Tokens<T> {
    fn default() -> Self {
        Self {
            issued: HashMap::new(),
        }
    }
}

impl<T> Tokens<T> {
    /// Mints a JWT-shaped token (see [`jwt`]) for `grant`, live for `lifetime`, and keeps it.
    pub(crate) fn mint(
        &mut self,
        typ: &str,
        subject: &str,
        issuer: &str,
        lifetime: Duration,
        grant: T,
    ) -> String {
        if self.issued.len() >= PRUNE_AT {
            let now = Instant::now();
            self.issued.retain(|_, (_, expires)| *expires > now);
        }
        let token = jwt(typ, subject, issuer, lifetime.as_secs());
        self.issued
            .insert(token.clone(), (grant, deadline(lifetime)));
        token
    }

    /// What `token` is.
    pub(crate) fn check(&self, token: &str) -> Presented<'_, T> {
        match self.issued.get(token) {
            Some((grant, expires)) if Instant::now() < *expires => Presented::Live(grant),
            Some(_) => Presented::Expired,
            None => Presented::Unknown,
        }
    }

    /// Forgets the tokens whose grant `keep` refuses (a realm's sessions ending, ...).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.issued.retain(|_, (grant, _)| keep(grant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokens_live_for_their_lifetime_then_expire() {
        let mut tokens = Tokens::default();
        let token = tokens.mint("Bearer", "alice", "test", Duration::from_secs(2), "realm-a");
        assert_eq!(tokens.check(&token), Presented::Live(&"realm-a"));
        assert_eq!(tokens.check("made-up"), Presented::Unknown);
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert_eq!(tokens.check(&token), Presented::Live(&"realm-a"));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(tokens.check(&token), Presented::Expired);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_tokens_are_pruned_when_the_table_is_full_and_retain_forgets() {
        let mut tokens = Tokens::default();
        for _ in 0..PRUNE_AT {
            tokens.mint("Bearer", "s", "test", Duration::from_secs(1), 1);
        }
        let live = tokens.mint("Bearer", "s", "test", Duration::from_secs(60), 2);
        tokio::time::advance(Duration::from_secs(2)).await;
        // The next mint finds the table full: the expired ones go, the live one stays.
        let other = tokens.mint("Bearer", "s", "test", Duration::from_secs(60), 3);
        assert_eq!(tokens.issued.len(), 2);
        assert_eq!(tokens.check(&live), Presented::Live(&2));
        tokens.retain(|grant| *grant != 2);
        assert_eq!(tokens.check(&live), Presented::Unknown);
        assert_eq!(tokens.check(&other), Presented::Live(&3));
    }

    #[test]
    fn a_forever_lifetime_does_not_overflow_the_clock() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut tokens = Tokens::default();
            let token = tokens.mint("Bearer", "s", "test", Duration::MAX, ());
            assert_eq!(tokens.check(&token), Presented::Live(&()));
        });
    }
}
