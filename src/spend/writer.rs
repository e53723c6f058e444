//! The spend writer: drains spend events off the request path and stores them in batches.
//! (Placeholder: events are logged; batching into the store lands with the spend-log work.)

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::SpendEvent;
use crate::config::Config;
use crate::store::Store;

pub struct WriterHandle {
    task: JoinHandle<()>,
}

pub fn start(
    mut rx: mpsc::Receiver<SpendEvent>,
    _store: Option<Store>,
    _cfg: &Config,
) -> WriterHandle {
    let task = tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            tracing::debug!(request_id = %ev.request_id, spend = ev.spend, "spend event");
        }
    });
    WriterHandle { task }
}

impl WriterHandle {
    /// Waits until every event sent before the last sender dropped is written.
    pub async fn shutdown(self) {
        let _ = self.task.await;
    }
}
