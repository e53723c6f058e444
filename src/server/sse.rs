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
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::BytesMut;
use futures::{Stream, StreamExt};

/// Yields since the last item after which what is held is handed on. One is not enough: the
/// first deferred wake-up can come before the upstream connection's task has delivered (on
/// the work-stealing runtime it often ran on the other worker; on an event loop per core, one
/// yield measured 5-9 % fewer streamed calls a second than two). A third did not gather more.
const IDLE_YIELDS: u8 = 2;
/// The longest a batch (or the headers) waits for more: a busy runtime runs deferred tasks
/// late, and a steady upstream would otherwise keep a batch growing.
const MAX_HOLD: Duration = Duration::from_millis(1);
/// A batch this large is handed on at once.
const MAX_HELD: usize = 32 * 1024;

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
    // Only what is already on its way, and for MAX_HOLD at most: a model that takes seconds to
    // its first token must not hold the headers back.
    let first = std::future::poll_fn(|cx| match events.step(cx, true) {
        Step::Frame(b) => Poll::Ready(Some(Ok(b))),
        Step::End | Step::Idle => Poll::Ready(None),
        Step::Wait => Poll::Pending,
    })
    .await;
    let body = Body::from_stream(futures::stream::iter(first).chain(events));
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    *resp.headers_mut() = headers;
    resp
}

/// A byte stream whose items that are ready together are handed on as one.
pub struct Coalesce<S> {
    inner: S,
    /// Items received and not yet handed on: a lone item as it came (most batches, once
    /// events are apart in time, are one event: no copy), several joined.
    held: Held,
    /// When the batch being held began (or the wait for the first one).
    since: Option<Instant>,
    /// Yields since the last item arrived.
    idle: u8,
    done: bool,
}

/// The bytes a [`Coalesce`] holds.
enum Held {
    Empty,
    One(Bytes),
    Joined(BytesMut),
}

impl Held {
    fn push(&mut self, bytes: Bytes) {
        *self = match std::mem::replace(self, Held::Empty) {
            Held::Empty => Held::One(bytes),
            Held::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + bytes.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(&bytes);
                Held::Joined(joined)
            }
            Held::Joined(mut joined) => {
                joined.extend_from_slice(&bytes);
                Held::Joined(joined)
            }
        };
    }

    fn len(&self) -> usize {
        match self {
            Held::Empty => 0,
            Held::One(b) => b.len(),
            Held::Joined(b) => b.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Held::Empty => Bytes::new(),
            Held::One(b) => b,
            Held::Joined(b) => b.freeze(),
        }
    }
}

/// What one poll of a [`Coalesce`] came to.
enum Step {
    /// A batch to hand on.
    Frame(Bytes),
    /// The stream ended with nothing held.
    End,
    /// Woken later: by the inner stream, or by a deferred yield.
    Wait,
    /// Nothing held and nothing on its way (only when asked to wait eagerly).
    Idle,
}

impl<S> Coalesce<S>
where
    S: Stream<Item = Result<Bytes, Infallible>> + Unpin,
{
    pub fn new(inner: S) -> Self {
        Coalesce {
            inner,
            held: Held::Empty,
            since: None,
            idle: 0,
            done: false,
        }
    }

    /// Gathers ready items and hands them on once `IDLE_YIELDS` yields found nothing new, the
    /// batch is `MAX_HOLD` old or `MAX_HELD` large, or the stream ended. With `eager`, an empty
    /// hold also yields, to see whether a first item is on its way.
    fn step(&mut self, cx: &mut Context<'_>, eager: bool) -> Step {
        loop {
            if self.done {
                return if self.held.is_empty() {
                    Step::End
                } else {
                    Step::Frame(self.take())
                };
            }
            match self.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    self.since.get_or_insert_with(Instant::now);
                    self.held.push(bytes);
                    self.idle = 0;
                    if self.held.len() >= MAX_HELD {
                        return Step::Frame(self.take());
                    }
                }
                Poll::Ready(None) => self.done = true,
                Poll::Pending => {
                    if self.held.is_empty() && !eager {
                        return Step::Wait;
                    }
                    let since = *self.since.get_or_insert_with(Instant::now);
                    if self.idle < IDLE_YIELDS && since.elapsed() < MAX_HOLD {
                        self.idle += 1;
                        yield_now(cx);
                        return Step::Wait;
                    }
                    if self.held.is_empty() {
                        self.reset();
                        return Step::Idle;
                    }
                    return Step::Frame(self.take());
                }
            }
        }
    }

    fn take(&mut self) -> Bytes {
        self.reset();
        std::mem::replace(&mut self.held, Held::Empty).into_bytes()
    }

    fn reset(&mut self) {
        self.idle = 0;
        self.since = None;
    }
}

impl<S> Stream for Coalesce<S>
where
    S: Stream<Item = Result<Bytes, Infallible>> + Unpin,
{
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.step(cx, false) {
            Step::Frame(b) => Poll::Ready(Some(Ok(b))),
            Step::End => Poll::Ready(None),
            Step::Wait | Step::Idle => Poll::Pending,
        }
    }
}

/// Arranges a wake-up after the worker has run what is queued: tokio's `yield_now` defers it;
/// a plain `wake_by_ref` would requeue this task at once and wake an idle worker to steal it.
fn yield_now(cx: &mut Context<'_>) {
    let mut yielded = std::pin::pin!(tokio::task::yield_now());
    let _ = yielded.as_mut().poll(cx);
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
    async fn a_batch_is_capped_in_size() {
        let many = (0..100).map(|_| Ok(Bytes::from(vec![b'x'; 1024])));
        let frames: Vec<Bytes> = Coalesce::new(futures::stream::iter(many))
            .map(|f| f.unwrap())
            .collect()
            .await;
        assert!(frames.len() >= 3, "{} frames", frames.len());
        assert!(frames.iter().all(|f| f.len() <= MAX_HELD));
        assert_eq!(frames.iter().map(Bytes::len).sum::<usize>(), 100 * 1024);
    }

    #[tokio::test]
    async fn a_steady_stream_is_not_held_to_its_end() {
        // An upstream that always has the next event ready after one yield: without the
        // time cap the whole answer would leave in one frame at the end.
        let (tx, rx) = channel();
        let producer = tokio::spawn(async move {
            for _ in 0..20_000 {
                tx.send(item("e")).unwrap();
                tokio::task::yield_now().await;
            }
        });
        let frames: Vec<Bytes> = Coalesce::new(rx).map(|f| f.unwrap()).collect().await;
        producer.await.unwrap();
        assert!(frames.len() > 1, "one frame of {} bytes", frames[0].len());
        assert_eq!(frames.iter().map(Bytes::len).sum::<usize>(), 20_000);
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
