//! Carrying a [`Behaviour`] out on the socket: the well-formed answers at once, the
//! socket-level misbehaviours byte by byte, and how the connection ends.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::sleep;

use super::Behaviour;
use super::answers::{self, Context};
use super::behaviour::{CUT_BODY_SENT, HUGE_BODY_LEN, STALLED_BODY_SENT};
use super::request::Request;

/// How long [`Behaviour::ResetInBody`] waits between the partial body and the reset, so
/// that the client has the head (and the start of the body) before the connection fails.
const RESET_PAUSE: Duration = Duration::from_millis(20);
/// The size of each write of the endless and huge bodies.
const PIECE: usize = 64 * 1024;
/// The size of each chunk of [`Behaviour::ChunkedForever`].
const CHUNK: usize = 16 * 1024;

/// How the connection goes on after a behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Read the next request (if the client keeps the connection alive).
    KeepAlive,
    /// Close it (FIN).
    Close,
    /// Reset it (RST).
    Reset,
    /// Keep it open and say nothing until the client closes or the server is dropped.
    Hold,
}

/// Writes what `behaviour` says to `io` and says how the connection ends. An error is the
/// client gone: the connection simply ends.
pub(super) async fn perform<W>(
    behaviour: &Behaviour,
    answered: u64,
    request: &Request,
    cx: &Context,
    io: &mut W,
) -> io::Result<End>
where
    W: AsyncWrite + Unpin,
{
    let keep_alive = request.keep_alive();
    if let Some(reply) = answers::reply(behaviour, answered, request, cx) {
        io.write_all(&reply.encode(keep_alive, request.is_head()))
            .await?;
        return Ok(End::KeepAlive);
    }
    use Behaviour as B;
    match behaviour {
        B::StallHead => Ok(End::Hold),
        B::PartialHeadStall => {
            io.write_all(b"HTTP/1.1 200 OK\r\nContent-Ty").await?;
            Ok(End::Hold)
        }
        B::DripHead { interval } => {
            let reply = answers::normal(request, cx);
            drip(io, &reply.head(keep_alive), *interval).await?;
            if !request.is_head() {
                io.write_all(&reply.body).await?;
            }
            Ok(End::KeepAlive)
        }
        B::CloseBeforeResponse => Ok(End::Close),
        B::ResetBeforeResponse => Ok(End::Reset),
        B::HugeHeader { bytes } => {
            io.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Hostile-Huge: ")
                .await?;
            repeat(io, b'a', u64::try_from(*bytes).unwrap_or(u64::MAX)).await?;
            io.write_all(b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .await?;
            Ok(End::Close)
        }
        B::ManyHeaders { count } => {
            io.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                .await?;
            let mut piece = Vec::with_capacity(PIECE + 64);
            for i in 0..*count {
                piece.extend_from_slice(format!("X-Hostile-{i}: {i}\r\n").as_bytes());
                if piece.len() >= PIECE {
                    io.write_all(&piece).await?;
                    piece.clear();
                }
            }
            piece.extend_from_slice(b"Content-Length: 2\r\nConnection: close\r\n\r\n{}");
            io.write_all(&piece).await?;
            Ok(End::Close)
        }
        B::MalformedStatusLine => {
            io.write_all(
                b"HTTP/1.1 abc Hostile\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            )
            .await?;
            Ok(End::Close)
        }
        B::ConflictingContentLength => {
            io.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\n{}",
            )
            .await?;
            Ok(End::Close)
        }
        B::DripBody { interval } => {
            let body = answers::announced_body();
            io.write_all(&announced_head(body.len())).await?;
            drip(io, &body, *interval).await?;
            Ok(End::KeepAlive)
        }
        B::StallBody => {
            let body = answers::announced_body();
            io.write_all(&announced_head(body.len())).await?;
            io.write_all(&body[..STALLED_BODY_SENT]).await?;
            Ok(End::Hold)
        }
        B::TruncatedBody => {
            let body = answers::announced_body();
            io.write_all(&announced_head(body.len())).await?;
            io.write_all(&body[..CUT_BODY_SENT]).await?;
            Ok(End::Close)
        }
        B::ResetInBody => {
            let body = answers::announced_body();
            io.write_all(&announced_head(body.len())).await?;
            io.write_all(&body[..CUT_BODY_SENT]).await?;
            sleep(RESET_PAUSE).await;
            Ok(End::Reset)
        }
        B::ChunkedForever => {
            io.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
                .await?;
            let mut chunk = format!("{CHUNK:x}\r\n").into_bytes();
            chunk.extend_from_slice("1,".repeat(CHUNK / 2).as_bytes());
            chunk.extend_from_slice(b"\r\n");
            loop {
                io.write_all(&chunk).await?;
            }
        }
        B::ChunkedDrip { interval } => {
            io.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
                .await?;
            loop {
                sleep(*interval).await;
                io.write_all(b"2\r\n1,\r\n").await?;
            }
        }
        B::HugeBody => {
            io.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE_BODY_LEN}\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
            // `["aaa...a"]`: valid JSON of exactly the announced length.
            io.write_all(b"[\"").await?;
            repeat(io, b'a', HUGE_BODY_LEN.saturating_sub(4)).await?;
            io.write_all(b"\"]").await?;
            Ok(End::KeepAlive)
        }
        B::CloseDelimitedForever => {
            io.write_all(
                b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[",
            )
            .await?;
            let piece = "1,".repeat(PIECE / 2);
            loop {
                io.write_all(piece.as_bytes()).await?;
            }
        }
        B::SlowSuccess { delay } => {
            sleep(*delay).await;
            let reply = answers::normal(request, cx);
            io.write_all(&reply.encode(keep_alive, request.is_head()))
                .await?;
            Ok(End::KeepAlive)
        }
        // Every other behaviour is a well-formed answer, written above.
        _ => Ok(End::Close),
    }
}

/// The head of the body misbehaviours: `200`, JSON, the announced length.
fn announced_head(len: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
        .into_bytes()
}

/// Writes `bytes` one at a time, each after `interval`.
async fn drip<W: AsyncWrite + Unpin>(
    io: &mut W,
    bytes: &[u8],
    interval: Duration,
) -> io::Result<()> {
    for byte in bytes {
        sleep(interval).await;
        io.write_all(std::slice::from_ref(byte)).await?;
    }
    Ok(())
}

/// Writes `byte` `count` times, as fast as the peer takes them.
async fn repeat<W: AsyncWrite + Unpin>(io: &mut W, byte: u8, count: u64) -> io::Result<()> {
    let piece = vec![byte; PIECE];
    let mut left = count;
    while left > 0 {
        let n = usize::try_from(left).map_or(PIECE, |left| left.min(PIECE));
        io.write_all(&piece[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}
