//! One connection: hyper's HTTP/1.1 over the socket, with the header and idle timeouts kept by
//! a [`ConnectionClock`] that the connection's task enforces, and unread responses bounded by
//! the socket wrapper ([`ClockedIo`]).
//!
//! Why not hyper's own `header_read_timeout`: in hyper 1.12 its timer starts whenever the
//! connection begins to read a request head (`proto/h1/conn.rs`, `poll_read_head`), and an idle
//! keep-alive connection begins that read as soon as its previous response is written (hyper
//! asks for that read only when the header timeout is set, for this very timer). So the header
//! timeout would also be the idle timeout, and a 10 s one would close idle connections long
//! before the load balancer's 60 s: exactly the early close that makes an ALB answer 502. Here
//! the two are separate: the header timeout runs from the connection's opening, and on a
//! kept-alive connection from the first byte of the next request; between requests the idle
//! timeout runs. The task, not a read, watches the clock, because hyper does not read an idle
//! connection without its own timer.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::request::RequestHandler;

/// Serves one accepted connection until it closes, times out, or the server stops: on
/// `shutdown` it finishes the request in progress and closes; on `hard_stop` it is dropped.
/// `_slot` is the connection's place under the connection cap, given back when this returns.
pub(crate) async fn serve_connection(
    stream: TcpStream,
    handler: Arc<RequestHandler>,
    shutdown: CancellationToken,
    hard_stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    // Responses are written whole; Nagle's algorithm would only hold back their last segment
    // waiting for an acknowledgement the client delays.
    let _ = stream.set_nodelay(true);
    let limits = handler.limits().clone();
    let clock = Arc::new(ConnectionClock::new(
        limits.header_timeout,
        limits.idle_timeout,
    ));
    let mut deadlines = clock.subscribe();
    let io = TokioIo::new(ClockedIo::new(stream, clock.clone(), limits.idle_timeout));
    let service = service_fn(move |request| {
        let handler = handler.clone();
        // From here until the response is written, the request's own deadlines apply.
        let in_progress = RequestInProgress::start(clock.clone());
        async move {
            let response = handler.handle(request).await;
            Ok::<_, Infallible>(response.map(|body| TrackedBody {
                inner: body,
                _in_progress: in_progress,
            }))
        }
    });
    let mut builder = http1::Builder::new();
    // Off: the connection clock keeps the header timeout (see the module documentation).
    builder.header_read_timeout(None);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    log_connection_error(&error);
                }
                break;
            }
            waiting = expiry(&mut deadlines) => {
                // Nothing is in progress: closing loses no answer.
                tracing::debug!(reason = %waiting.reason(&limits), "closed a connection");
                break;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                // An idle connection closes now; a busy one after its response.
                connection.as_mut().graceful_shutdown();
            }
            () = hard_stop.cancelled() => break,
        }
    }
}

fn log_connection_error(error: &hyper::Error) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io_error) = cause.downcast_ref::<io::Error>()
            && io_error.kind() == io::ErrorKind::TimedOut
        {
            tracing::debug!(reason = %io_error, "closed a connection");
            return;
        }
        source = cause.source();
    }
    // Clients resetting connections and sending malformed requests: worth a look when
    // debugging, not an alarm.
    tracing::debug!(%error, "a connection ended with an error");
}

/// Resolves when the clock's deadline passes while it still stands; changes of the deadline
/// (a request starting or ending, a new request's first byte) restart the wait.
async fn expiry(deadlines: &mut watch::Receiver<ClockState>) -> Waiting {
    loop {
        let deadline = deadlines.borrow_and_update().deadline;
        let changed = match deadline {
            None => deadlines.changed().await,
            Some((at, waiting)) => tokio::select! {
                () = tokio::time::sleep_until(at) => return waiting,
                changed = deadlines.changed() => changed,
            },
        };
        if changed.is_err() {
            // The clock is gone with the connection; the connection's own future ends first.
            std::future::pending::<()>().await;
        }
    }
}

/// What a connection is waiting for, and until when. Shared by the connection's task (which
/// closes it at the deadline), its service (requests start and finish) and its socket (bytes
/// arrive).
#[derive(Debug)]
struct ConnectionClock {
    state: watch::Sender<ClockState>,
    header_timeout: Duration,
    idle_timeout: Duration,
}

#[derive(Debug, Clone, Copy)]
struct ClockState {
    /// Requests handed to the router whose responses are not written yet.
    in_progress: u32,
    /// When the connection is closed unless something happens first; `None` while a request
    /// is in progress.
    deadline: Option<(Instant, Waiting)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// For (the rest of) a request head.
    Head,
    /// For the next request.
    NextRequest,
}

impl Waiting {
    fn reason(self, limits: &crate::HttpLimits) -> String {
        match self {
            Self::Head => format!(
                "the request head did not arrive within the header timeout ({:?})",
                limits.header_timeout
            ),
            Self::NextRequest => {
                format!(
                    "no request for the idle timeout ({:?})",
                    limits.idle_timeout
                )
            }
        }
    }
}

impl ConnectionClock {
    fn new(header_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            state: watch::Sender::new(ClockState {
                in_progress: 0,
                deadline: Some((Instant::now() + header_timeout, Waiting::Head)),
            }),
            header_timeout,
            idle_timeout,
        }
    }

    fn subscribe(&self) -> watch::Receiver<ClockState> {
        self.state.subscribe()
    }

    /// Bytes arrived: on an idle connection, a new request has begun and must send its head in
    /// time. (Bytes of a pipelined request that arrive during a response are not noticed; that
    /// request then has the idle timeout for its head, which still bounds it.)
    fn bytes_arrived(&self) {
        let header_timeout = self.header_timeout;
        self.state.send_if_modified(|state| {
            if matches!(state.deadline, Some((_, Waiting::NextRequest))) {
                state.deadline = Some((Instant::now() + header_timeout, Waiting::Head));
                true
            } else {
                false
            }
        });
    }

    fn request_started(&self) {
        self.state.send_modify(|state| {
            state.in_progress += 1;
            state.deadline = None;
        });
    }

    fn request_finished(&self) {
        let idle_timeout = self.idle_timeout;
        self.state.send_modify(|state| {
            state.in_progress = state.in_progress.saturating_sub(1);
            if state.in_progress == 0 {
                state.deadline = Some((Instant::now() + idle_timeout, Waiting::NextRequest));
            }
        });
    }
}

/// Marks a request as in progress on its connection until dropped: after its response body is
/// written (hyper drops it then), or when the connection ends first.
struct RequestInProgress(Arc<ConnectionClock>);

impl RequestInProgress {
    fn start(clock: Arc<ConnectionClock>) -> Self {
        clock.request_started();
        Self(clock)
    }
}

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request in progress until hyper has written it.
struct TrackedBody {
    inner: Body,
    _in_progress: RequestInProgress,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's clock when bytes arrive, and failing writes that a
/// client leaves unread for the idle timeout (a failed write makes hyper close the
/// connection).
struct ClockedIo<S> {
    stream: S,
    clock: Arc<ConnectionClock>,
    /// Runs while writes are blocked on a client that does not read.
    write_timer: Option<Pin<Box<Sleep>>>,
    write_stall_limit: Duration,
}

impl<S> ClockedIo<S> {
    fn new(stream: S, clock: Arc<ConnectionClock>, write_stall_limit: Duration) -> Self {
        Self {
            stream,
            clock,
            write_timer: None,
            write_stall_limit,
        }
    }

    /// A write is pending: fails it when writes have been blocked for the stall limit.
    fn poll_write_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.write_stall_limit;
        let timer = self
            .write_timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of its response for the idle timeout ({limit:?})"),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn written<T>(
        &mut self,
        result: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(result) => {
                self.write_timer = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_write_stall(cx).map(Err),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ClockedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.bytes_arrived();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ClockedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.written(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.written(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_flush(cx);
        this.written(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(75);

    type Duplex = tokio::io::DuplexStream;

    fn clocked(buffer: usize) -> (ClockedIo<Duplex>, Duplex, Arc<ConnectionClock>) {
        let (server, client) = tokio::io::duplex(buffer);
        let clock = Arc::new(ConnectionClock::new(HEADER, IDLE));
        (ClockedIo::new(server, clock.clone(), IDLE), client, clock)
    }

    /// On the paused clock a timer fires at its deadline, rounded up to the timer's millisecond.
    fn assert_took(since: Instant, expected: Duration) {
        let took = since.elapsed();
        assert!(
            took >= expected && took <= expected + Duration::from_millis(1),
            "took {took:?}, expected {expected:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_has_the_header_timeout_from_the_start() {
        let started = Instant::now();
        let (mut io, mut client, clock) = clocked(1024);
        let mut deadlines = clock.subscribe();
        client.write_all(b"GET / HT").await.expect("write");
        let mut buffer = [0u8; 64];
        assert_eq!(io.read(&mut buffer).await.expect("read"), 8);
        // Bytes of the head do not extend it.
        assert_eq!(expiry(&mut deadlines).await, Waiting::Head);
        assert_took(started, HEADER);
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_the_idle_timeout_runs_then_the_header_one_from_the_first_byte() {
        let (mut io, mut client, clock) = clocked(1024);
        let mut deadlines = clock.subscribe();
        let request = RequestInProgress::start(clock.clone());
        // While a request is in progress nothing expires.
        let busy = tokio::time::timeout(IDLE * 2, expiry(&mut deadlines)).await;
        assert!(busy.is_err(), "no deadline while busy: {busy:?}");

        drop(request);
        let idle_since = Instant::now();
        assert_eq!(expiry(&mut deadlines).await, Waiting::NextRequest);
        assert_took(idle_since, IDLE);

        // Idle again, then a byte of the next request: the header timeout from that byte.
        drop(RequestInProgress::start(clock.clone()));
        tokio::time::advance(IDLE - Duration::from_secs(1)).await;
        client.write_all(b"G").await.expect("write");
        let mut buffer = [0u8; 8];
        assert_eq!(io.read(&mut buffer).await.expect("read"), 1);
        let first_byte = Instant::now();
        assert_eq!(expiry(&mut deadlines).await, Waiting::Head);
        assert_took(first_byte, HEADER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_does_not_read_fails_after_the_idle_timeout() {
        let (mut io, client, _clock) = clocked(64);
        let chunk = [b'x'; 64];
        io.write_all(&chunk)
            .await
            .expect("the buffer takes one chunk");
        let stalled_since = Instant::now();
        let error = io.write_all(&chunk).await.expect_err("nobody reads");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_took(stalled_since, IDLE);
        drop(client);

        // A client that reads keeps the writes going, however long in all.
        let (mut io, mut client, _clock) = clocked(64);
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buffer = [0u8; 64];
            for _ in 0..10 {
                tokio::time::sleep(IDLE / 2).await;
                total += client.read(&mut buffer).await.expect("read");
            }
            total
        });
        for _ in 0..10 {
            io.write_all(&chunk)
                .await
                .expect("written while the client reads");
        }
        assert_eq!(reader.await.expect("reader"), 640);
    }
}
