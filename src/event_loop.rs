//! A named thread running a single-threaded tokio runtime: what the HTTP event loops beyond
//! the main thread's (`server::serve_on_threads`) and the spend writer (`spend::writer`) run on.

use std::future::Future;
use std::io;

use tokio::runtime::Handle;

/// Starts thread `name` with a current-thread runtime that runs until `until` resolves, and
/// returns a handle to spawn on it. Tasks spawned there keep running until then; the thread
/// ends with `until`, and whatever is still spawned on it is dropped.
pub fn spawn_thread(
    name: String,
    until: impl Future<Output = ()> + Send + 'static,
) -> io::Result<Handle> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new().name(name).spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match rt {
            Ok(rt) => {
                let _ = handle_tx.send(Ok(rt.handle().clone()));
                rt.block_on(until);
            }
            Err(e) => {
                let _ = handle_tx.send(Err(e));
            }
        }
    })?;
    handle_rx
        .recv()
        .map_err(|_| io::Error::other("the event loop's thread ended before it started"))?
}
