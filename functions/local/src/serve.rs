//! The local server's connections, kept from starving each other: request headers must come
//! within a time (which also closes idle keep-alive connections), a request body must keep
//! moving, and past a number of connections a new one is told 503 at once rather than left to
//! wait. The defaults are nginx's (`client_header_timeout`, `client_body_timeout`: 60 s).
//! On Lambda, API Gateway does all of this.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyTimeout;

/// How connections are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this, counted from when the connection begins
    /// to wait for them: a connection that sends nothing, drips its headers, or idles between
    /// keep-alive requests is closed after it.
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long is broken off.
    pub body_timeout: Duration,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

/// How long requests in flight may take to finish once the server is told to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a refused connection is given to take its 503.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// A pause after a failed accept (out of file descriptors, say), so as not to spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 52\r\nRetry-After: 1\r\nConnection: close\r\n\r\n\
the server is at its connection limit; try it again\n";

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// (for up to 30 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let service = RequestBodyTimeout::new(app, limits.body_timeout);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        // Small answers go out at once rather than wait for more to send.
        drop(stream.set_nodelay(true));
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(service.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests were still running when the server stopped");
    }
}

/// Tells a connection over the limit to come back later, and closes it.
async fn refuse(mut stream: TcpStream) {
    let answered = tokio::time::timeout(REFUSAL_TIME, async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(answered, Ok(Ok(()))) {
        tracing::debug!("a refused connection did not take its answer");
    }
}

/// Raises this process's open-file limit to the most it may have, and returns it: every
/// connection holds a file descriptor.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::REFUSAL;

    #[test]
    fn the_refusal_is_well_formed() {
        let text = std::str::from_utf8(REFUSAL).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .and_then(|value| value.parse().ok())
            .expect("length");
        assert_eq!(body.len(), length);
    }
}
