//! Upstream connections, kept per event-loop thread and reused across calls.
//!
//! hyper-util's pooled client (used before) keyed its pool with SipHash and wrapped every call
//! in checkout, connect-race and put-back machinery: ~5 k of the ~130 k instructions a proxied
//! call cost (`bench/callgrind`, docs/PERFORMANCE.md). A gateway talks to a handful of
//! upstreams from each thread, so a short list compared by scheme and authority finds the
//! host, and hyper's connection API does the rest:
//!
//! - HTTP/1.1: a connection is leased to one call at a time. It returns to its thread's list
//!   when the call has read the answer to its end, or dropped it so near the end that hyper
//!   could finish it ([`Leased`]); one dropped half-read is closed (also one whose closing
//!   chunk had not arrived yet when a stream reader stopped at `[DONE]`: a new connection for
//!   the next call, not an error; hyper-util did the same).
//! - HTTP/2 (negotiated by ALPN over TLS): one connection per upstream, shared by every call
//!   on the thread, replaced when it closes.
//! - A connection the upstream closed while it was idle is skipped (its task has seen the
//!   close); a request that a reused connection gave back unsent is sent on another, as
//!   hyper-util did. If the close arrives in the instant between the pool's check and the write,
//!   hyper writes the request and the call fails as `connection closed before message completed`
//!   (a retryable connection error, which the router's `num_retries` retries), again as with
//!   hyper-util: the request may have reached the upstream, so it is not sent twice here.
//! - Idle connections older than [`IDLE_TIMEOUT`] are closed when the list is next used,
//!   at most [`MAX_IDLE_PER_HOST`] are kept.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper::http::header::HOST;
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::http::{HeaderValue, Request, Response, Uri};
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower::ServiceExt;

use super::http::{Connector, FailureKind, PerThread, TransportError};

/// How long an unused connection is kept (hyper-util's and reqwest's default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Unused HTTP/1.1 connections kept per upstream and thread.
pub const MAX_IDLE_PER_HOST: usize = 256;
/// How long a returned connection may stay not ready (an upstream that stalled in the middle
/// of an answer nobody reads any more) before the list lets it go.
const STALLED: Duration = Duration::from_secs(10);

type Sender1 = http1::SendRequest<Full<Bytes>>;
type Sender2 = http2::SendRequest<Full<Bytes>>;

/// One thread's connections.
pub struct Pool {
    connector: Connector,
    hosts: RefCell<Vec<Host>>,
}

struct Host {
    scheme: Scheme,
    authority: Authority,
    /// HTTP/1.1 connections not leased, the most recently returned last.
    idle: Vec<(Sender1, Instant)>,
    /// The HTTP/2 connection every call shares.
    shared: Option<Sender2>,
}

enum Conn {
    H1(Sender1),
    H2(Sender2),
}

impl Pool {
    pub fn new(connector: Connector) -> Self {
        Pool {
            connector,
            hosts: RefCell::new(Vec::new()),
        }
    }

    /// A connection to this upstream from the list, if one is usable.
    fn checkout(&self, scheme: &Scheme, authority: &Authority) -> Option<Conn> {
        let mut hosts = self.hosts.borrow_mut();
        let host = hosts
            .iter_mut()
            .find(|h| h.authority == *authority && h.scheme == *scheme)?;
        if let Some(h2) = &host.shared {
            if !h2.is_closed() {
                return Some(Conn::H2(h2.clone()));
            }
            host.shared = None;
        }
        // The most recently returned first. One not ready yet (hyper still finishing the last
        // exchange) stays for a later call.
        let now = Instant::now();
        let mut i = host.idle.len();
        while i > 0 {
            i -= 1;
            let (tx, since) = &host.idle[i];
            let age = now.duration_since(*since);
            if tx.is_ready() && age < IDLE_TIMEOUT {
                return Some(Conn::H1(host.idle.remove(i).0));
            }
            if tx.is_closed() || age >= IDLE_TIMEOUT || (!tx.is_ready() && age >= STALLED) {
                host.idle.remove(i);
            }
        }
        None
    }

    fn host(hosts: &mut Vec<Host>, scheme: &Scheme, authority: &Authority) -> usize {
        match hosts
            .iter()
            .position(|h| h.authority == *authority && h.scheme == *scheme)
        {
            Some(i) => i,
            None => {
                hosts.push(Host {
                    scheme: scheme.clone(),
                    authority: authority.clone(),
                    idle: Vec::new(),
                    shared: None,
                });
                hosts.len() - 1
            }
        }
    }

    /// Returns an HTTP/1.1 connection whose answer was read to its end.
    fn put_back(&self, scheme: &Scheme, authority: &Authority, tx: Sender1) {
        if tx.is_closed() {
            return;
        }
        let mut hosts = self.hosts.borrow_mut();
        let i = Self::host(&mut hosts, scheme, authority);
        let idle = &mut hosts[i].idle;
        // The oldest are at the front: drop those past their time, and the oldest beyond the cap.
        let now = Instant::now();
        let expired = idle
            .iter()
            .take_while(|(_, since)| now.duration_since(*since) >= IDLE_TIMEOUT)
            .count();
        let over = (idle.len() - expired + 1).saturating_sub(MAX_IDLE_PER_HOST);
        idle.drain(..expired + over);
        idle.push((tx, now));
    }

    /// Keeps a new HTTP/2 connection for the calls that follow, unless one is already kept.
    fn share(&self, scheme: &Scheme, authority: &Authority, tx: &Sender2) {
        let mut hosts = self.hosts.borrow_mut();
        let i = Self::host(&mut hosts, scheme, authority);
        let shared = &mut hosts[i].shared;
        if shared.as_ref().is_none_or(|s| s.is_closed()) {
            *shared = Some(tx.clone());
        }
    }
}

/// Opens a connection (TCP, then TLS for `https`). Takes the connector rather than the pool: a
/// thread's pool is not borrowed across an await.
async fn connect(connector: Connector, uri: &Uri) -> Result<Conn, TransportError> {
    let connect_error =
        |e: &(dyn std::error::Error + 'static)| TransportError::from_error(FailureKind::Connect, e);
    let io = connector
        .oneshot(uri.clone())
        .await
        .map_err(|e| connect_error(&*e))?;
    if io.connected().is_negotiated_h2() {
        let (tx, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| connect_error(&e))?;
        tokio::spawn(conn);
        Ok(Conn::H2(tx))
    } else {
        let (tx, conn) = http1::handshake(io).await.map_err(|e| connect_error(&e))?;
        tokio::spawn(conn);
        Ok(Conn::H1(tx))
    }
}

/// Sends `req` (its URI absolute) on a connection of the calling thread's pool. For HTTP/1.1
/// the answer's body holds the connection until read to its end.
pub async fn send(
    pools: &Arc<PerThread<Pool>>,
    mut req: Request<Full<Bytes>>,
) -> Result<Response<Leased>, TransportError> {
    let uri = req.uri().clone();
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(TransportError {
            kind: FailureKind::Request,
            message: format!("upstream URL {uri} has no scheme or host"),
        });
    };
    let mut added_host = false;
    loop {
        let reused = pools.pool().checkout(scheme, authority);
        let was_reused = reused.is_some();
        let conn = match reused {
            Some(c) => c,
            // Boxed: the connect and handshake futures are large, and inline they would make
            // every call's future as large (it is moved into a box per call).
            None => Box::pin(connect(pools.pool().connector.clone(), &uri)).await?,
        };
        let sent = match conn {
            Conn::H1(mut tx) => {
                if let Err(e) = tx.ready().await {
                    if was_reused {
                        // Closed while idle.
                        continue;
                    }
                    return Err(TransportError::from_error(FailureKind::Other, &e));
                }
                // Origin form and a `Host` header, as HTTP/1.1 sends them.
                let mut origin = hyper::http::uri::Parts::default();
                origin.path_and_query = Some(
                    uri.path_and_query()
                        .cloned()
                        .unwrap_or_else(|| PathAndQuery::from_static("/")),
                );
                *req.uri_mut() = Uri::from_parts(origin).unwrap_or_else(|_| Uri::from_static("/"));
                if !req.headers().contains_key(HOST)
                    && let Some(host) = host_value(scheme, authority)
                {
                    req.headers_mut().insert(HOST, host);
                    added_host = true;
                }
                tx.try_send_request(req).await.map(|resp| {
                    resp.map(|body| Leased {
                        body,
                        lease: Some(Lease {
                            pools: pools.clone(),
                            scheme: scheme.clone(),
                            authority: authority.clone(),
                            tx,
                        }),
                    })
                })
            }
            Conn::H2(mut tx) => {
                *req.uri_mut() = uri.clone();
                if std::mem::take(&mut added_host) {
                    // HTTP/2 carries the host as `:authority`; servers refuse both.
                    req.headers_mut().remove(HOST);
                }
                if !was_reused {
                    pools.pool().share(scheme, authority, &tx);
                }
                tx.try_send_request(req)
                    .await
                    .map(|resp| resp.map(|body| Leased { body, lease: None }))
            }
        };
        match sent {
            Ok(resp) => return Ok(resp),
            Err(mut e) => match e.take_message() {
                // Never sent: safe to send again, on another connection.
                // (Each branch above sets the URI form it sends.)
                Some(back) if was_reused => req = back,
                _ => {
                    return Err(TransportError::from_error(FailureKind::Other, e.error()));
                }
            },
        }
    }
}

/// `Host` for an HTTP/1.1 request as hyper-util wrote it: the port only when not the scheme's
/// default, never user information.
pub(super) fn host_value(scheme: &Scheme, authority: &Authority) -> Option<HeaderValue> {
    let default = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    match authority.port_u16() {
        Some(port) if port != default => {
            HeaderValue::from_str(&format!("{}:{port}", authority.host())).ok()
        }
        _ => HeaderValue::from_str(authority.host()).ok(),
    }
}

/// An HTTP/1.1 connection lent to one call, returned to the pool of the thread that finishes
/// reading its answer.
struct Lease {
    pools: Arc<PerThread<Pool>>,
    scheme: Scheme,
    authority: Authority,
    tx: Sender1,
}

/// An upstream answer's body; at its end, gives its connection back.
pub struct Leased {
    body: Incoming,
    lease: Option<Lease>,
}

impl Body for Leased {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let frame = Pin::new(&mut self.body).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.release(),
            // Broken: dropping the lease closes the connection.
            Poll::Ready(Some(Err(_))) => self.lease = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Leased {
    fn release(&mut self) {
        if let Some(l) = self.lease.take() {
            l.pools.pool().put_back(&l.scheme, &l.authority, l.tx);
        }
    }
}

/// A body dropped before its end was seen: a stream reader stops at `data: [DONE]` or the
/// last Anthropic event, before the chunked body's closing `0\r\n\r\n` is polled. When its
/// task next runs, hyper reads what has arrived of the rest: if that ends the body the
/// connection becomes ready again, otherwise hyper closes it. Either way it can go back now:
/// [`Pool::checkout`] takes only a ready one and drops closed ones.
impl Drop for Leased {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;
    use crate::config::Env;
    use crate::providers::http::{Client, Request, read_body, send};

    /// How the test upstream treats a connection after each answer.
    #[derive(Clone, Copy)]
    enum After {
        KeepOpen,
        /// Closes it a moment later without having said so (`Connection: close`), as an
        /// upstream's idle timeout does: the gateway finds out when it next uses it.
        CloseSilently,
        /// Sends the first chunk of each answer, then the rest 300 ms later.
        StallMidBody,
    }

    type Seen = Arc<parking_lot::Mutex<Vec<String>>>;

    /// A loopback HTTP/1.1 upstream on threads of its own (so that it runs while a test blocks
    /// the runtime's thread), answering every request with `{"n":N}`, `N` counting requests.
    /// Returns its URL, the connections it accepted, and the `Host` headers it saw.
    fn upstream(after: After) -> (String, Arc<AtomicUsize>, Seen) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/x", listener.local_addr().unwrap());
        let conns = Arc::new(AtomicUsize::new(0));
        let hosts: Seen = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, h) = (conns.clone(), hosts.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(sock) = sock else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let (h, requests) = (h.clone(), requests.clone());
                std::thread::spawn(move || answer(sock, after, &h, &requests));
            }
        });
        (url, conns, hosts)
    }

    fn answer(mut sock: std::net::TcpStream, after: After, hosts: &Seen, requests: &AtomicUsize) {
        use std::io::{Read, Write};
        let mut buf = Vec::new();
        fn fill(sock: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> bool {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk) {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    true
                }
            }
        }
        loop {
            // Headers, then as many body bytes as they announce.
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if !fill(&mut sock, &mut buf) {
                    return;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            hosts.lock().push(header("host:").unwrap_or_default());
            let len: usize = header("content-length:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                if !fill(&mut sock, &mut buf) {
                    return;
                }
            }
            buf.drain(..head_end + len);
            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
            // Chunked, as streamed answers are: `{"n":` and `N}`, then the last chunk.
            let rest = format!("{n}}}");
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\n\r\n5\r\n{\"n\":\r\n";
            let tail = format!("{:x}\r\n{rest}\r\n0\r\n\r\n", rest.len());
            // In one write (one segment on loopback) unless told to stall.
            let sent = if let After::StallMidBody = after {
                sock.write_all(head.as_bytes()).is_ok() && {
                    std::thread::sleep(Duration::from_millis(300));
                    sock.write_all(tail.as_bytes()).is_ok()
                }
            } else {
                sock.write_all(format!("{head}{tail}").as_bytes()).is_ok()
            };
            if !sent {
                return;
            }
            if let After::CloseSilently = after {
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
    }

    fn client() -> Client {
        Client::new(&Env::from_map([("PATH", "/bin")])).unwrap()
    }

    async fn call(c: &Client, url: &str) -> Result<String, crate::error::ApiError> {
        let t = Duration::from_secs(5);
        let resp = send(c, Request::post_json_to(url, "{}"), t, "test").await?;
        let body = read_body(resp, t, "test").await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// A call's answer as a stream, its first chunk (`{"n":`) read.
    async fn first_chunk_read(c: &Client, url: &str) -> crate::providers::http::ByteStream {
        let t = Duration::from_secs(5);
        let resp = send(c, Request::post_json_to(url, "{}"), t, "test")
            .await
            .unwrap();
        let mut stream = resp.bytes_stream();
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"{\"n\":");
        stream
    }

    #[tokio::test]
    async fn a_connection_read_to_its_end_serves_the_next_call() {
        let (url, conns, hosts) = upstream(After::KeepOpen);
        let c = client();
        for i in 1..=5 {
            assert_eq!(call(&c, &url).await.unwrap(), format!("{{\"n\":{i}}}"));
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        // As hyper-util wrote it: the host and the port that is not the default.
        let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
        assert!(
            hosts
                .lock()
                .iter()
                .all(|h| *h == format!("127.0.0.1:{port}"))
        );
    }

    #[tokio::test]
    async fn concurrent_calls_each_get_a_connection_and_all_are_kept() {
        let (url, conns, _) = upstream(After::KeepOpen);
        let c = client();
        let calls = (0..8).map(|_| call(&c, &url));
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        assert_eq!(conns.load(Ordering::SeqCst), 8);
        // The eight went back to the pool: eight more calls open nothing.
        let calls = (0..8).map(|_| call(&c, &url));
        for r in futures::future::join_all(calls).await {
            r.unwrap();
        }
        assert_eq!(conns.load(Ordering::SeqCst), 8);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_costs_no_call() {
        let (url, conns, _) = upstream(After::CloseSilently);
        let c = client();
        for i in 1..=5 {
            assert_eq!(call(&c, &url).await.unwrap(), format!("{{\"n\":{i}}}"));
            // The connection's task sees the close before the next call looks for one.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(conns.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_stream_dropped_before_its_last_chunk_returns_its_connection() {
        // As a stream reader does at `data: [DONE]`: every data chunk read, the closing chunk
        // (arrived with them) never polled.
        let (url, conns, _) = upstream(After::KeepOpen);
        let c = client();
        for i in 1..=3 {
            let mut stream = first_chunk_read(&c, &url).await;
            let last = stream.next().await.unwrap().unwrap();
            assert_eq!(last, format!("{i}}}"));
            drop(stream);
            // Other tasks run before the next call (the connection's among them).
            tokio::task::yield_now().await;
        }
        assert_eq!(call(&c, &url).await.unwrap(), "{\"n\":4}");
        assert_eq!(conns.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_dropped_half_read_closes_its_connection() {
        let (url, conns, _) = upstream(After::StallMidBody);
        let c = client();
        drop(first_chunk_read(&c, &url).await);
        tokio::task::yield_now().await;
        // The rest of the first answer must not be read as the second's.
        assert_eq!(call(&c, &url).await.unwrap(), "{\"n\":2}");
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn host_is_written_without_the_default_port() {
        let host = |url: &str| {
            let uri: Uri = url.parse().unwrap();
            host_value(uri.scheme().unwrap(), uri.authority().unwrap()).unwrap()
        };
        assert_eq!(host("https://api.example.com:443/v1"), "api.example.com");
        assert_eq!(
            host("https://api.example.com:8443/v1"),
            "api.example.com:8443"
        );
        assert_eq!(host("http://localhost:80/v1"), "localhost");
        assert_eq!(host("http://localhost:11434/v1"), "localhost:11434");
        assert_eq!(
            host("https://user:pw@api.example.com/v1"),
            "api.example.com"
        );
    }
}
