//! The accept loop and the per-connection loop: read a request, record it, let the rules
//! pick a behaviour, carry it out, and end the connection the way the behaviour says.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::answers::Context;
use super::journal::{Journal, JournalEntry, recorded_headers};
use super::perform::{End, perform};
use super::reply::Reply;
use super::request::{ReadError, read_request};
use super::rule::Rules;

/// How long the accept loop rests after a failed `accept` (out of descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// How long a refused connection is still read from before it is closed.
const LINGER: Duration = Duration::from_secs(1);

/// Everything every connection shares.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) rules: Rules,
    pub(super) journal: Journal,
    pub(super) context: Context,
    pub(super) connections: AtomicU64,
}

/// Accepts connections, each on its own task, until `stop` fires or its sender is dropped;
/// then aborts every connection task and waits for them. (If this future is dropped
/// instead, dropping the set aborts them too.)
pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let id = shared.connections.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                    connections.spawn(connection(stream, id, Arc::clone(&shared)));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Reap finished connections so that the set does not grow with them.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

async fn connection(mut stream: TcpStream, id: u64, shared: Arc<Shared>) {
    // Dripped bytes must leave one by one, not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        let request = match read_request(&mut stream, &mut buf).await {
            Ok(request) => request,
            Err(ReadError::Closed) => return,
            Err(ReadError::Malformed) => return refuse(stream, StatusCode::BAD_REQUEST).await,
            Err(ReadError::TooLarge(status)) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                return refuse(stream, status).await;
            }
        };
        let decision = shared.rules.decide(&request.method, &request.path);
        shared.journal.record(JournalEntry {
            method: request.method.clone(),
            path: request.path.clone(),
            headers: recorded_headers(
                request
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_slice())),
            ),
            body_len: request.body.len(),
            arrived: request.arrived,
            connection: id,
            behaviour: decision.behaviour.name(),
        });
        let end = perform(
            &decision.behaviour,
            decision.answered,
            &request,
            &shared.context,
            &mut stream,
        )
        .await;
        match end {
            Ok(End::KeepAlive) if request.keep_alive() => continue,
            Ok(End::KeepAlive | End::Close) => {
                let _ = stream.shutdown().await;
                return;
            }
            Ok(End::Reset) => {
                // SO_LINGER 0: the close sends RST instead of FIN.
                let _ = stream.set_zero_linger();
                return;
            }
            Ok(End::Hold) => return hold(stream).await,
            Err(_) => return,
        }
    }
}

/// A plain refusal of a request the server could not read, then a lingering close: what
/// the client still sends is read (for a while) so that the close does not turn into a
/// reset that destroys the refusal before the client reads it.
async fn refuse(mut stream: TcpStream, status: StatusCode) {
    let reply = Reply::json(
        status,
        r#"{"error":"the hostile server could not read this request"}"#,
    );
    let _ = stream.write_all(&reply.encode(false, false)).await;
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER, hold(stream)).await;
}

/// Says nothing more; reads (and drops) what the client sends until it closes.
async fn hold(mut stream: TcpStream) {
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            return;
        }
    }
}
