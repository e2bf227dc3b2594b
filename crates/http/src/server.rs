//! The accept loop: the connection cap, accept errors, and the graceful stop.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::connection::serve_connection;
use crate::request::RequestHandler;
use crate::throttle::Throttle;
use crate::{HttpLimits, HttpLimitsError};

/// Serves `router` on `listener` with `limits` until `shutdown` is cancelled, then stops
/// accepting (the listener is closed), closes idle connections, lets requests in progress
/// finish for up to `grace`, and drops what is left.
///
/// Fails only when `limits` do not pass [`HttpLimits::validate`], before anything is accepted.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), HttpLimitsError> {
    limits.validate()?;
    let max_connections = limits.max_connections;
    // One permit per open connection: the cap, and (all permits back) the sign that every
    // connection has closed.
    let connections = Arc::new(Semaphore::new(max_connections));
    let handler = Arc::new(RequestHandler::new(router, limits));
    let hard_stop = CancellationToken::new();
    let full_log = Throttle::new(Duration::from_secs(10));
    let accept_error_log = Throttle::new(Duration::from_secs(10));
    let mut backoff = AcceptBackoff::default();

    loop {
        let Some(slot) = connection_slot(&connections, &shutdown, &full_log, max_connections).await
        else {
            break;
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    backoff.reset();
                    stream
                }
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors (EMFILE/ENFILE) or memory: accepting again at
                    // once would fail again at once. Wait, so connections can close.
                    let pause = backoff.next();
                    if accept_error_log.ready() {
                        tracing::error!(
                            %error,
                            retry_in = ?pause,
                            "cannot accept connections (out of file descriptors? raise `ulimit -n` \
                             or lower max_connections)"
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = shutdown.cancelled() => break,
                    }
                }
            },
            () = shutdown.cancelled() => break,
        };
        tokio::spawn(serve_connection(
            stream,
            handler.clone(),
            shutdown.clone(),
            hard_stop.clone(),
            slot,
        ));
    }

    // New clients are refused from here on (the balancer's health check sees it too).
    drop(listener);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, connections.acquire_many(all))
        .await
        .is_err()
    {
        let open = max_connections - connections.available_permits();
        tracing::warn!(
            open,
            grace = ?grace,
            "connections still busy after the shutdown grace period; closing them"
        );
        hard_stop.cancel();
        // Dropping a connection is immediate; this waits for the tasks to notice.
        let _ = connections.acquire_many(all).await;
    }
    Ok(())
}

/// A place under the connection cap, waiting (without accepting) while the cap is reached;
/// `None` when `shutdown` comes first.
async fn connection_slot(
    connections: &Arc<Semaphore>,
    shutdown: &CancellationToken,
    full_log: &Throttle,
    max_connections: usize,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(slot) = connections.clone().try_acquire_owned() {
        return Some(slot);
    }
    if full_log.ready() {
        tracing::warn!(
            max_connections,
            "at the cap of open connections: not accepting new ones until one closes"
        );
    }
    tokio::select! {
        // The semaphore is never closed, so this only ever yields a permit.
        slot = connections.clone().acquire_owned() => slot.ok(),
        () = shutdown.cancelled() => None,
    }
}

/// Errors that concern one connection (which the client already gave up on), not the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Pauses after failed accepts: 10 ms doubling to 1 s, back to the start after a success.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    fn next(&mut self) -> Duration {
        let pause = Duration::from_millis(10 * 2u64.pow(self.failures.min(7)));
        self.failures = self.failures.saturating_add(1);
        pause.min(Duration::from_secs(1))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_to_a_second() {
        let mut backoff = AcceptBackoff::default();
        let pauses: Vec<u64> = (0..9).map(|_| backoff.next().as_millis() as u64).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next(), Duration::from_millis(10));
    }

    #[test]
    fn only_per_connection_errors_are_retried_at_once() {
        assert!(is_connection_error(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
        // EMFILE: "Too many open files".
        assert!(!is_connection_error(&io::Error::from_raw_os_error(24)));
    }
}
