//! [`Blackhole`]: a loopback address whose TCP connect never completes.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

/// How long a probe connect may take before the blackhole counts as working: a dropped SYN
/// is first retransmitted after 1 s, a loopback connect that completes takes microseconds.
const PROBE: Duration = Duration::from_millis(100);
/// The most connections the fill may take before giving up (the backlog is 0: one fits).
const MAX_FILL: usize = 16;

/// A loopback address where `connect` hangs: a listener with a backlog of 0 that is never
/// `accept`ed, whose accept queue is pre-filled, so that the kernel drops every further SYN
/// (the client retransmits it for about two minutes, `net.ipv4.tcp_syn_retries`).
///
/// A correct client must end a call to [`Blackhole::url`] with a connect-timeout error
/// within its configured time, not hang for minutes; a connection that never existed
/// may be retried for every method.
///
/// This relies on Linux's listen-queue handling: a SYN that arrives while the accept queue
/// is full is dropped (never refused), and with `net.ipv4.tcp_abort_on_overflow = 0` (the
/// default) a handshake that completes into a full queue is not answered with a reset
/// either. [`Blackhole::start`] checks that a probe connect really does not complete and
/// fails with an error otherwise (another kernel, another setting), so a test never
/// silently passes against a blackhole that answers. Dropping it closes everything.
///
/// ```
/// use std::time::Duration;
/// use pacer_testbed::hostile::Blackhole;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let blackhole = Blackhole::start().await?;
/// let connect = tokio::net::TcpStream::connect(blackhole.addr());
/// assert!(tokio::time::timeout(Duration::from_millis(300), connect).await.is_err());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Blackhole {
    addr: SocketAddr,
    url: String,
    // Kept open so the queue stays full; never accepted.
    _listener: TcpListener,
    _fill: Vec<TcpStream>,
}

impl Blackhole {
    /// Binds `127.0.0.1` on a free port, fills its accept queue and checks that a further
    /// connect hangs (this takes about 100 ms).
    pub async fn start() -> io::Result<Blackhole> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        let mut fill = Vec::new();
        // Connect until one connect does not complete: the queue is full from then on.
        while fill.len() < MAX_FILL {
            match timeout(PROBE, TcpStream::connect(addr)).await {
                Ok(connected) => fill.push(connected?),
                Err(_elapsed) => {
                    return Ok(Blackhole {
                        addr,
                        url: format!("http://{addr}"),
                        _listener: listener,
                        _fill: fill,
                    });
                }
            }
        }
        Err(io::Error::other(format!(
            "the kernel completed {MAX_FILL} connects to a listener with backlog 0 that never \
             accepts: it does not drop SYNs on a full accept queue, so there is no blackhole"
        )))
    }

    /// The address whose connect hangs.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for a client's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}
