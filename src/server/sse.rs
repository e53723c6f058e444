//! Server-sent event responses: the headers every SSE answer carries, and the coalescing that
//! lets events which arrive together leave in one write.
//!
//! hyper's client hands an upstream body over one chunk per run of its connection task, a
//! separate task from the one writing the client's answer. Without help, every event is then
//! its own `writev` to the client (and a wake-up of the client): a 7-event answer that the
//! upstream sent in one segment left in 7 writes, plus one for the headers. [`Coalesce`] waits
//! for that task a little — tokio's yield, which defers the wake-up until the worker has run
//! what is queued — before handing on what it holds, and [`sse_response`] does the same before
//! the headers leave, so they go out with the first events.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::BytesMut;
use futures::{Stream, StreamExt};

/// Yields since the last item after which what is held is handed on. One is not enough: the
/// upstream connection's task often runs on the other worker, and the first deferred wake-up
/// can come before it has delivered. A third did not gather more in the benchmark.
const IDLE_YIELDS: u8 = 2;

/// The answer for an SSE body: status 200, the event-stream headers, and the first events
/// already received in the same write as the headers.
pub async fn sse_response<S>(mut headers: HeaderMap, events: S) -> Response
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + Unpin + 'static,
{
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let mut events = Coalesce::new(events);
    // Only what is already on its way: a model that takes seconds to its first token must not
    // hold the headers back.
    let first = std::future::poll_fn(|cx| events.poll_first(cx)).await;
    let body = Body::from_stream(futures::stream::iter(first).chain(events));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    *resp.headers_mut() = headers;
    resp
}

/// A byte stream whose items that are ready together are handed on as one.
pub struct Coalesce<S> {
    inner: S,
    /// Items received and not yet handed on.
    held: BytesMut,
    /// Yields since the last item arrived.
    idle: u8,
    done: bool,
}

impl<S> Coalesce<S>
where
    S: Stream<Item = Result<Bytes, Infallible>> + Unpin,
{
    pub fn new(inner: S) -> Self {
        Coalesce {
            inner,
            held: BytesMut::new(),
            idle: 0,
            done: false,
        }
    }

    /// Like `poll_next`, but resolves to `None` (nothing yet) instead of waiting once the
    /// stream is idle with nothing held.
    fn poll_first(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        match self.poll_held(cx, true) {
            Poll::Ready(item) => Poll::Ready(item),
            Poll::Pending if self.held.is_empty() && self.idle >= IDLE_YIELDS => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Gathers ready items; hands them on once `IDLE_YIELDS` yields found nothing new, or the
    /// stream ended.
    /// With `eager`, an empty hold also yields (to see whether the first item is on its way).
    fn poll_held(
        &mut self,
        cx: &mut Context<'_>,
        eager: bool,
    ) -> Poll<Option<Result<Bytes, Infallible>>> {
        loop {
            if self.done {
                return Poll::Ready((!self.held.is_empty()).then(|| Ok(self.take())));
            }
            match self.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    self.held.extend_from_slice(&bytes);
                    self.idle = 0;
                }
                Poll::Ready(None) => self.done = true,
                Poll::Pending => {
                    if self.held.is_empty() && !eager {
                        return Poll::Pending;
                    }
                    if self.idle < IDLE_YIELDS {
                        self.idle += 1;
                        return yield_now(cx);
                    }
                    if self.held.is_empty() {
                        return Poll::Pending;
                    }
                    return Poll::Ready(Some(Ok(self.take())));
                }
            }
        }
    }

    fn take(&mut self) -> Bytes {
        self.idle = 0;
        self.held.split().freeze()
    }
}

impl<S> Stream for Coalesce<S>
where
    S: Stream<Item = Result<Bytes, Infallible>> + Unpin,
{
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_held(cx, false)
    }
}

/// Pending now, woken after the worker has run what is queued: tokio's `yield_now` defers the
/// wake-up; a plain `wake_by_ref` would requeue this task at once and wake an idle worker to
/// steal it.
fn yield_now<T>(cx: &mut Context<'_>) -> Poll<T> {
    let mut yielded = std::pin::pin!(tokio::task::yield_now());
    let _ = yielded.as_mut().poll(cx);
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn item(s: &'static str) -> Result<Bytes, Infallible> {
        Ok(Bytes::from_static(s.as_bytes()))
    }

    /// A stream fed by hand, as an upstream that sends events apart in time.
    fn channel() -> (
        tokio::sync::mpsc::UnboundedSender<Result<Bytes, Infallible>>,
        impl Stream<Item = Result<Bytes, Infallible>> + Unpin,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (tx, tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
    }

    #[tokio::test]
    async fn events_ready_together_leave_as_one_frame() {
        let mut c = Coalesce::new(futures::stream::iter([item("a"), item("b"), item("c")]));
        assert_eq!(c.next().await.unwrap().unwrap(), "abc");
        assert!(c.next().await.is_none());
    }

    #[tokio::test]
    async fn an_event_is_not_held_for_the_next_one() {
        let (tx, rx) = channel();
        let mut c = Coalesce::new(rx);
        tx.send(item("first")).unwrap();
        let first = tokio::time::timeout(Duration::from_secs(1), c.next()).await;
        assert_eq!(first.unwrap().unwrap().unwrap(), "first");
        tx.send(item("second")).unwrap();
        tx.send(item("third")).unwrap();
        assert_eq!(c.next().await.unwrap().unwrap(), "secondthird");
        drop(tx);
        assert!(c.next().await.is_none());
    }

    #[tokio::test]
    async fn headers_carry_the_events_already_received() {
        let resp = sse_response(
            HeaderMap::new(),
            futures::stream::iter([item("data: 1\n\n"), item("data: 2\n\n")]),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
        let mut frames = resp.into_body().into_data_stream();
        let first = frames.next().await.unwrap().unwrap();
        assert_eq!(first, "data: 1\n\ndata: 2\n\n");
        assert!(frames.next().await.is_none());
    }

    #[tokio::test]
    async fn headers_do_not_wait_for_a_slow_first_event() {
        let (tx, rx) = channel();
        let resp = tokio::time::timeout(Duration::from_secs(1), sse_response(HeaderMap::new(), rx))
            .await
            .expect("the headers left without the first event");
        tx.send(item("late")).unwrap();
        drop(tx);
        let mut frames = resp.into_body().into_data_stream();
        assert_eq!(frames.next().await.unwrap().unwrap(), "late");
        assert!(frames.next().await.is_none());
    }
}
