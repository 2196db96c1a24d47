//! The namespace step of every decision: the decisions queued by all clones of a store go
//! together in one [`DECIDE`] call on one Redis instance; on a cluster, where one call's keys
//! must share a slot, in one call per namespace (hash tag) to that namespace's shard.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::connection::Connection;
use super::scripts::DECIDE;
use crate::rate_limit::store_error::StoreError;

/// The most decisions one [`DECIDE`] call carries.
const MAX_BATCH: usize = 128;

/// How many batch calls may be on the wire at once; while all are, decisions queue up and go
/// together in the next one.
const MAX_BATCHES_IN_FLIGHT: usize = 2;

/// One decision's namespace step: its bucket's key and [`DECIDE`]'s four arguments.
pub(super) struct NamespaceStep {
    pub(super) key: String,
    pub(super) args: [f64; 4],
}

/// Sends namespace steps to Redis through the batcher task of [`batch_decisions`] and hands
/// back `(kind, wait)` as [`DECIDE`] replies it.
pub(super) struct Decider {
    decisions: mpsc::UnboundedSender<PendingDecision>,
    /// The rounds on the wire: a caller that finds one free sends its decision itself,
    /// sparing the hops through the batcher task (what a lone decision would otherwise pay).
    in_flight: Arc<Semaphore>,
    connection: Connection,
    script: Arc<Script>,
    timeout: Duration,
}

/// One decision waiting for its batch.
pub(super) struct PendingDecision {
    step: NamespaceStep,
    reply: oneshot::Sender<Result<(i64, i64), StoreError>>,
}

impl Decider {
    /// A decider for `connection`: spawns the batcher task, which ends when the decider is
    /// dropped.
    pub(super) fn new(connection: Connection, timeout: Duration) -> Self {
        let script = Arc::new(Script::new(DECIDE));
        let in_flight = Arc::new(Semaphore::new(MAX_BATCHES_IN_FLIGHT));
        let (decisions, queue) = mpsc::unbounded_channel();
        tokio::spawn(batch_decisions(
            queue,
            connection.clone(),
            Arc::clone(&script),
            Arc::clone(&in_flight),
            timeout,
        ));
        Self {
            decisions,
            in_flight,
            connection,
            script,
            timeout,
        }
    }

    /// The namespace step's `(kind, wait)`. The caller bounds the wait (queue and call).
    pub(super) async fn decide(&self, step: NamespaceStep) -> Result<(i64, i64), StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = PendingDecision { step, reply };
        if let Ok(permit) = Arc::clone(&self.in_flight).try_acquire_owned() {
            let (connection, script) = (self.connection.clone(), Arc::clone(&self.script));
            send_batch(
                vec![pending],
                connection,
                script,
                self.timeout,
                Arc::new(permit),
            )
            .await;
        } else if self.decisions.send(pending).is_err() {
            return Err(StoreError::Protocol(
                "the store's batcher task is gone (its runtime was shut down)".to_owned(),
            ));
        }
        match answer.await {
            Ok(answer) => answer,
            Err(_dropped) => Err(StoreError::Protocol(
                "the store's batcher task dropped a decision".to_owned(),
            )),
        }
    }
}

/// The part of `key` Redis Cluster hashes: its first `{...}` hash tag, or all of it.
fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let tag = &key[open + 1..];
            tag.find('}')
                .filter(|&close| close > 0)
                .map(|close| &tag[..close])
        })
        .unwrap_or(key)
}

/// The batcher task: takes the decisions queued by every clone of one store and sends them
/// to Redis together, up to [`MAX_BATCH`] per round and [`MAX_BATCHES_IN_FLIGHT`] rounds at
/// once; a round is one [`DECIDE`] call, or on a cluster one per namespace in it. Alone, a decision goes at once, in a batch of one; under load, decisions
/// that arrive while the calls in flight are out go together in the next, which saves Redis a
/// script call and a clock read per decision. Ends when every clone of the store is dropped.
async fn batch_decisions(
    mut queue: mpsc::UnboundedReceiver<PendingDecision>,
    connection: Connection,
    script: Arc<Script>,
    in_flight: Arc<Semaphore>,
    timeout: Duration,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for a free call slot first: decisions pile up in the queue meanwhile.
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return; // every store clone is gone
        }
        // A caller that gave up (timed out, dropped) needs no decision: none is taken for it.
        batch.retain(|pending: &PendingDecision| !pending.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let decisions = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        // The permit goes when every call of this round has answered.
        let permit = Arc::new(permit);
        if connection.batches() {
            tokio::spawn(send_batch(
                decisions,
                connection.clone(),
                Arc::clone(&script),
                timeout,
                permit,
            ));
        } else {
            let mut by_tag: Vec<(String, Vec<PendingDecision>)> = Vec::new();
            for pending in decisions {
                let tag = hash_tag(&pending.step.key);
                match by_tag.iter_mut().find(|(known, _)| known == tag) {
                    Some((_, group)) => group.push(pending),
                    None => by_tag.push((tag.to_owned(), vec![pending])),
                }
            }
            for (_, group) in by_tag {
                let call = send_batch(
                    group,
                    connection.clone(),
                    Arc::clone(&script),
                    timeout,
                    Arc::clone(&permit),
                );
                tokio::spawn(call);
            }
        }
    }
}

/// The decisions of one bucket in a [`DECIDE`] call, as indices into the call's decisions.
struct Group<'a> {
    key: &'a str,
    quota: [f64; 2],
    /// No wait allowed and a global token held: answered by count, in order.
    plain: Vec<usize>,
    others: Vec<usize>,
}

impl NamespaceStep {
    fn is_plain(&self) -> bool {
        self.args[2] == 0.0 && self.args[3] == -1.0
    }
}

/// `decisions` grouped by bucket (and quota: clones of one store may serve limiters of other
/// quotas), in the order the buckets first appear.
fn groups(decisions: &[PendingDecision]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (index, pending) in decisions.iter().enumerate() {
        let step = &pending.step;
        let quota = [step.args[0], step.args[1]];
        let at = match groups
            .iter()
            .position(|group| group.key == step.key && group.quota == quota)
        {
            Some(at) => at,
            None => {
                groups.push(Group {
                    key: &step.key,
                    quota,
                    plain: Vec::new(),
                    others: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[at];
        if step.is_plain() {
            group.plain.push(index);
        } else {
            group.others.push(index);
        }
    }
    groups
}

/// Each decision's `(kind, wait)` from [`DECIDE`]'s flat reply to `groups`, by decision index;
/// `None` when the reply does not have the shape the groups ask for.
fn answers(groups: &[Group<'_>], decisions: usize, flat: &[i64]) -> Option<Vec<(i64, i64)>> {
    let mut answers = vec![(0, 0); decisions];
    let mut reply = flat.iter().copied();
    for group in groups {
        let admitted = usize::try_from(reply.next()?).ok()?;
        let wait = reply.next()?;
        if admitted > group.plain.len() {
            return None;
        }
        for (n, &index) in group.plain.iter().enumerate() {
            answers[index] = if n < admitted { (0, 0) } else { (2, wait) };
        }
        for &index in &group.others {
            answers[index] = (reply.next()?, reply.next()?);
        }
    }
    reply.next().is_none().then_some(answers)
}

/// One [`DECIDE`] call for `decisions` (keys of one slot on a cluster); each gets its answer.
async fn send_batch(
    decisions: Vec<PendingDecision>,
    mut connection: Connection,
    script: Arc<Script>,
    timeout: Duration,
    permit: Arc<OwnedSemaphorePermit>,
) {
    let groups = groups(&decisions);
    let mut invocation = script.prepare_invoke();
    for group in &groups {
        invocation.key(group.key);
    }
    for group in &groups {
        invocation
            .arg(group.quota[0])
            .arg(group.quota[1])
            .arg(group.plain.len())
            .arg(group.others.len());
        for &index in &group.others {
            let args = decisions[index].step.args;
            invocation.arg(args[2]).arg(args[3]);
        }
    }
    let call = invocation.invoke_async::<Vec<i64>>(&mut connection);
    let reply = tokio::time::timeout(timeout, call).await;
    drop(permit);
    let flat = match reply {
        Ok(Ok(flat)) => flat,
        Ok(Err(error)) => {
            let error = Arc::new(error);
            for pending in decisions {
                let _ = pending
                    .reply
                    .send(Err(StoreError::Backend(Box::new(SharedRedisError(
                        Arc::clone(&error),
                    )))));
            }
            return;
        }
        Err(_elapsed) => {
            for pending in decisions {
                let _ = pending.reply.send(Err(StoreError::Timeout(timeout)));
            }
            return;
        }
    };
    let Some(answers) = answers(&groups, decisions.len(), &flat) else {
        let message = format!(
            "decide script replied {} numbers for {} decisions in {} buckets",
            flat.len(),
            decisions.len(),
            groups.len()
        );
        drop(groups);
        for pending in decisions {
            let _ = pending
                .reply
                .send(Err(StoreError::Protocol(message.clone())));
        }
        return;
    };
    drop(groups);
    for (pending, answer) in decisions.into_iter().zip(answers) {
        let _ = pending.reply.send(Ok(answer));
    }
}

/// One Redis error handed to every decision of the batch it failed.
#[derive(Debug, Clone)]
struct SharedRedisError(Arc<redis::RedisError>);

impl fmt::Display for SharedRedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SharedRedisError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(key: &str, max_wait: f64, global: f64) -> PendingDecision {
        let (reply, _answer) = oneshot::channel();
        PendingDecision {
            step: NamespaceStep {
                key: key.to_owned(),
                args: [1000.0, 4000.0, max_wait, global],
            },
            reply,
        }
    }

    #[test]
    fn decisions_group_by_bucket_plain_ones_apart() {
        let decisions = [
            pending("a", 0.0, -1.0),
            pending("b", 0.0, -1.0),
            pending("a", 5e5, -1.0),
            pending("a", 0.0, -1.0),
            pending("a", 0.0, 300.0),
        ];
        let groups = groups(&decisions);
        let shape: Vec<(&str, &[usize], &[usize])> = groups
            .iter()
            .map(|g| (g.key, g.plain.as_slice(), g.others.as_slice()))
            .collect();
        assert_eq!(
            shape,
            [("a", &[0, 3][..], &[2, 4][..]), ("b", &[1][..], &[][..])]
        );
        // a: one plain admitted, one refused (wait 7); its others queued and refused by the
        // global; b: its plain one admitted.
        let flat = [1, 7, 1, 250, 3, 300, 1, 0];
        assert_eq!(
            answers(&groups, decisions.len(), &flat),
            Some(vec![(0, 0), (0, 0), (1, 250), (2, 7), (3, 300)])
        );
    }

    #[test]
    fn a_reply_of_the_wrong_shape_is_refused() {
        let decisions = [pending("a", 0.0, -1.0), pending("a", 1.0, -1.0)];
        let groups = groups(&decisions);
        for flat in [
            &[1, 0, 0][..],       // short
            &[1, 0, 0, 0, 9][..], // long
            &[2, 0, 0, 0][..],    // more admitted than asked
            &[-1, 0, 0, 0][..],   // negative count
            &[][..],
        ] {
            assert_eq!(answers(&groups, decisions.len(), flat), None, "{flat:?}");
        }
    }
}
