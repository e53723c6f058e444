//! Serving on one event loop per core: a thread each with a single-threaded runtime, and
//! connections dealt to them in turn.
//!
//! Why not tokio's work-stealing runtime: a proxied call is a chain of short tasks (the
//! client's connection, the handler, the upstream connection, the body), and on a
//! multi-threaded runtime a wake-up of any of them could unpark the other worker to steal it.
//! On the 2-core benchmark machine one worker spent ~18 % less CPU per call than two. Here
//! each thread keeps its connections, their tasks and its own upstream connections (the
//! client's pool is per thread, `providers::http`), and both cores serve: against the
//! work-stealing runtime, alternating runs at c=50 measured 14 % less CPU per call and 16 % /
//! 6 % more calls a second, non-streaming / streaming (docs/PERFORMANCE.md).
//!
//! One acceptor, on the caller's runtime, deals connections round-robin, so that a few
//! long-lived connections (a load balancer's keep-alive pool) still spread over the threads;
//! with threads accepting from the socket themselves, whichever was awake took a burst of new
//! connections (32/49 and 70/41 ticks of CPU per thread in two runs of 50). What is not
//! balanced is the load: a connection stays on its thread, and an HTTP/2 client's streams all
//! share one connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::serve;
use crate::state::AppState;

/// [`serve`] on `threads` event loops: the caller's runtime, which also keeps everything else
/// (start-up, the spend writer, the background loops), and `threads - 1` threads of their
/// own. With one, plain [`serve`] here.
pub async fn serve_on_threads(
    listener: TcpListener,
    state: AppState,
    threads: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    if threads <= 1 {
        return serve(listener, state, shutdown).await;
    }
    let local = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (release_tx, release_rx) = watch::channel(false);
    let mut deal = Vec::with_capacity(threads);
    let mut loops = Vec::with_capacity(threads);
    for i in 0..threads {
        let (conn_tx, conn_rx) = mpsc::unbounded_channel();
        deal.push(conn_tx);
        let dealt = Dealt { rx: conn_rx, local };
        let state = state.clone();
        let mut stop = stop_rx.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let (done_tx, done_rx) = oneshot::channel();
        loops.push(done_rx);
        if i == 0 {
            // The first loop on the caller's runtime (the gateway's main thread, which the
            // background tasks leave mostly idle): a thread and an allocator heap fewer.
            tokio::spawn(async move {
                let _ = done_tx.send(serve(dealt, state, stopped).await);
            });
            continue;
        }
        let mut release = release_rx.clone();
        // Once drained, what the loop's requests spawned (a budget settlement, a Redis
        // connection's driver, …) still runs there until every loop is done.
        let until = async move {
            let _ = release.wait_for(|r| *r).await;
        };
        crate::event_loop::spawn_thread(format!("tollgate-http-{i}"), until)?.spawn(async move {
            let _ = done_tx.send(serve(dealt, state, stopped).await);
        });
    }
    let acceptor = tokio::spawn(accept_and_deal(listener, deal));
    // Until the signal, or until a loop ends on its own (a failure): then the others stop too.
    let mut ended = None;
    {
        let first = futures::future::select_all(loops.iter_mut());
        tokio::select! {
            _ = shutdown => {}
            (r, i, _) = first => ended = Some((i, r)),
        }
    }
    // No new connections (the listening socket closes with the acceptor), then every loop
    // drains its own.
    acceptor.abort();
    let _ = acceptor.await;
    let _ = stop_tx.send(true);
    let lost = || io::Error::other("an HTTP thread ended without a result");
    let (finished, mut result) = match ended {
        Some((i, r)) => (Some(i), r.unwrap_or_else(|_| Err(lost()))),
        None => (None, Ok(())),
    };
    for (i, done) in loops.into_iter().enumerate() {
        if finished == Some(i) {
            continue;
        }
        let r = done.await.unwrap_or_else(|_| Err(lost()));
        if result.is_ok() {
            result = r;
        }
    }
    let _ = release_tx.send(true);
    result
}

/// Accepts connections and hands each to the next thread in turn, as a std socket (a tokio
/// one belongs to the runtime that registered it).
async fn accept_and_deal(
    listener: TcpListener,
    deal: Vec<mpsc::UnboundedSender<(std::net::TcpStream, SocketAddr)>>,
) {
    let mut next = 0;
    loop {
        match listener.accept().await {
            Ok((tcp, addr)) => match tcp.into_std() {
                Ok(tcp) => {
                    // A thread that has stopped no longer takes any: the next one does.
                    let mut conn = (tcp, addr);
                    for _ in 0..deal.len() {
                        let to = &deal[next % deal.len()];
                        next = next.wrapping_add(1);
                        match to.send(conn) {
                            Ok(()) => break,
                            Err(mpsc::error::SendError(back)) => conn = back,
                        }
                    }
                }
                Err(e) => tracing::warn!("accepted connection unusable: {e}"),
            },
            // The peer gave up before we took it: nothing to do.
            Err(e) if is_connection_error(&e) => {}
            // Out of file descriptors and the like: wait for some to be freed rather than spin.
            Err(e) => {
                tracing::error!("accept failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The connections dealt to one thread, as axum's listener.
struct Dealt {
    rx: mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for Dealt {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((tcp, addr)) = self.rx.recv().await else {
                // The acceptor is gone (shutting down): nothing more will come.
                return std::future::pending().await;
            };
            // Registered with this thread's runtime: its events are polled here.
            match TcpStream::from_std(tcp) {
                Ok(tcp) => return (tcp, addr),
                Err(e) => tracing::warn!("accepted connection unusable: {e}"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
