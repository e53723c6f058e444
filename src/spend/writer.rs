//! The spend writer: drains spend events off the request path and stores them in batches.
//!
//! Guarantees (see `docs/spend.md`):
//! - a batch goes when `batch_size` events wait or every `proxy_batch_write_at` seconds;
//! - each batch is one transaction, idempotent on `request_id`, so a retry never double counts;
//! - while the database is unreachable events stay in memory (bounded), the overflow is
//!   appended to a JSONL spill file beside the database (fsynced), and writes are retried with
//!   exponential backoff; the spill file is replayed once the database answers, and on start;
//! - `shutdown()` drains the channel (even while stray request tasks still hold senders),
//!   writes what it can within a time budget, and spills the rest: nothing received is lost.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{SpendEvent, SpendQueue};
use crate::config::Config;
use crate::observe::callbacks::Callbacks;
use crate::observe::metrics;
use crate::store::Store;
use crate::store::spend::{BatchOptions, SpendTargets};

/// Tunables, from the config (and overridable in tests).
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// `general_settings.proxy_batch_write_at`.
    pub interval: Duration,
    /// Events per transaction; a full batch is written without waiting for the interval.
    pub batch_size: usize,
    /// Events kept in memory while the database is unreachable before spilling to disk.
    pub memory_max: usize,
    pub spill_path: PathBuf,
    /// `false` with `disable_spend_logs` (spend totals still move).
    pub write_logs: bool,
    pub store_prompts: bool,
    /// Longest time shutdown keeps retrying the database before spilling.
    pub shutdown_budget: Duration,
    /// Longest a single batch write may take before it counts as failed (and is retried).
    pub write_timeout: Duration,
}

/// Name of the spill file, beside the database.
pub const SPILL_FILE: &str = "tollgate-spend-spill.jsonl";
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const MIN_BACKOFF: Duration = Duration::from_millis(200);

impl WriterOptions {
    pub fn from_config(cfg: &Config) -> Self {
        let spill_path = cfg
            .env
            .get("TOLLGATE_SPEND_SPILL_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::app::default_sqlite_path(cfg).with_file_name(SPILL_FILE));
        let num = |k: &str| cfg.env.get(k).and_then(|v| v.parse::<usize>().ok());
        let batch_size = num("TOLLGATE_SPEND_BATCH_SIZE").unwrap_or(1000).max(1);
        WriterOptions {
            interval: cfg
                .general
                .proxy_batch_write_at
                .max(Duration::from_millis(10)),
            batch_size,
            // Below two batches, a full batch could never wait in memory: all would spill.
            memory_max: num("TOLLGATE_SPEND_MEMORY_MAX")
                .unwrap_or(5_000)
                .max(2 * batch_size),
            spill_path,
            write_logs: !cfg.general.disable_spend_logs,
            store_prompts: cfg.general.store_prompts_in_spend_logs,
            shutdown_budget: Duration::from_secs(5),
            write_timeout: Duration::from_secs(30),
        }
    }
}

pub struct WriterHandle {
    task: JoinHandle<()>,
    stop: CancellationToken,
    retention: Option<JoinHandle<()>>,
}

pub fn start(rx: Arc<SpendQueue>, store: Option<Store>, cfg: &Config) -> WriterHandle {
    let retention = store
        .as_ref()
        .and_then(|s| super::retention::start(s.clone(), cfg));
    start_with(
        rx,
        store,
        WriterOptions::from_config(cfg),
        crate::observe::callbacks::start(cfg),
        retention,
    )
}

/// [`start`] with explicit options (tests).
pub fn start_with(
    queue: Arc<SpendQueue>,
    store: Option<Store>,
    opts: WriterOptions,
    callbacks: Option<Callbacks>,
    retention: Option<JoinHandle<()>>,
) -> WriterHandle {
    let stop = CancellationToken::new();
    queue.set_wake_every(opts.batch_size);
    queue.set_spill_path(opts.spill_path.clone());
    let w = Writer {
        stop: stop.clone(),
        finishing: false,
        spill_pending: opts.spill_path.exists() || replaying_path(&opts.spill_path).exists(),
        store,
        opts,
        queue,
        buf: VecDeque::new(),
        targets: None,
        backoff: MIN_BACKOFF,
        retry_at: None,
        callbacks,
    };
    WriterHandle {
        task: spawn_on_own_thread(w.run()),
        stop,
        retention,
    }
}

/// Runs the writer on a thread of its own, with a single-threaded runtime: its spill file,
/// rejected file and replay are synchronous file work (fsynced), which on the gateway's main
/// thread would hold up the event loop serving HTTP there (`server::serve_on_threads`). The
/// returned handle is awaited from any runtime; the thread ends with the task.
fn spawn_on_own_thread(
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    // The thread ends with the task (or when it panics: then its sender is dropped).
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let until = async move {
        let _ = done_rx.await;
    };
    match crate::event_loop::spawn_thread("tollgate-spend".into(), until) {
        Ok(handle) => handle.spawn(async move {
            task.await;
            let _ = done_tx.send(());
        }),
        Err(e) => {
            tracing::warn!("spend writer: no thread of its own ({e}); on the caller's runtime");
            tokio::spawn(task)
        }
    }
}

impl WriterHandle {
    /// Flushes every event received, bounded in time: call after the server has drained.
    /// Senders may still be alive (stray request tasks); the queue is drained and closed.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.retention.take() {
            r.abort();
        }
        // Also interrupts a write stuck on an unreachable database.
        self.stop.cancel();
        if let Err(e) = (&mut self.task).await {
            tracing::error!("spend writer ended abnormally: {e}");
        }
    }
}

struct Writer {
    stop: CancellationToken,
    /// Shutdown's final flush: writes are no longer interrupted by `stop`.
    finishing: bool,
    store: Option<Store>,
    opts: WriterOptions,
    queue: Arc<SpendQueue>,
    /// Taken from the queue, not yet written (at most `memory_max`, beyond which the oldest
    /// go to the spill file).
    buf: VecDeque<SpendEvent>,
    targets: Option<SpendTargets>,
    backoff: Duration,
    retry_at: Option<Instant>,
    spill_pending: bool,
    callbacks: Option<Callbacks>,
}

enum Flush {
    Done,
    /// Unreachable, timed out, or a transient refusal: retry later.
    Failed,
    /// The database answered and refused the data itself.
    Rejected,
}

/// Whether a store error is the database refusing this data (a constraint or a value it
/// cannot hold) rather than a transient condition or an outage.
fn is_rejection(e: &crate::store::StoreError) -> bool {
    if crate::store::spend_sqlite::is_refusal(e) {
        return true;
    }
    let crate::store::StoreError::Db(sqlx::Error::Database(d)) = e else {
        return false;
    };
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    match code.parse::<u32>() {
        // SQLite (extended) result codes: constraint, mismatch, range.
        Ok(n) if !code.starts_with("22") && !code.starts_with("23") => {
            // Constraint and datatype mismatch; not RANGE (a bind-index bug: an outage to
            // retry, not data to set aside).
            matches!(n & 0xff, 19 | 20)
        }
        // PostgreSQL SQLSTATE classes 22 (data exception) and 23 (integrity constraint).
        _ => code.starts_with("22") || code.starts_with("23"),
    }
}

/// Name of the file rejected events are kept in, beside the spill file.
pub const REJECTED_FILE: &str = "tollgate-spend-rejected.jsonl";

/// The spill file while it is being replayed: spills made meanwhile start a new spill file,
/// so removing the replayed one never loses them.
fn replaying_path(spill: &std::path::Path) -> PathBuf {
    let mut p = spill.as_os_str().to_owned();
    p.push(".replaying");
    PathBuf::from(p)
}

impl Writer {
    async fn run(mut self) {
        let stop = self.stop.clone();
        let queue = self.queue.clone();
        let mut tick = tokio::time::interval(self.opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Woken by the interval, or by the sink when a batch's worth waits: not per event.
            let all = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = queue.ready.notified() => false,
                _ = tick.tick() => true,
            };
            self.take_queue();
            if self.may_try() && (!self.buf.is_empty() || self.spill_pending) {
                self.flush(all).await;
            }
            self.bound_memory();
        }
        self.finish().await;
    }

    /// Moves what the sink queued into the buffer.
    fn take_queue(&mut self) {
        let from = self.buf.len();
        self.queue.take_into(&mut self.buf);
        if self.buf.len() == from {
            return;
        }
        let (cb, store_prompts) = (&self.callbacks, self.opts.store_prompts);
        for ev in self.buf.range_mut(from..) {
            accept(cb, store_prompts, ev);
        }
        self.gauge();
    }

    fn gauge(&self) {
        metrics::global()
            .spend_queue
            .store(self.buf.len() as u64, Ordering::Relaxed);
    }

    /// Above `memory_max` buffered events (the database unreachable, or the writer behind),
    /// the oldest go to the spill file, down to half.
    fn bound_memory(&mut self) {
        if self.buf.len() > self.opts.memory_max {
            let keep = self.opts.memory_max / 2;
            self.spill(self.buf.len() - keep);
        }
    }

    fn may_try(&self) -> bool {
        self.store.is_some() && self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// Writes full batches — and with `all` (the interval tick, shutdown) everything buffered
    /// when it began — then replays the spill file. Stops at the first failure. A batch is moved
    /// out of the buffer, not copied, and put back if it could not be written. Events arriving
    /// meanwhile join the buffer but, short of a full batch, wait for the next tick: writing
    /// them as they trickle in made transactions of ~20 events, each paying its commit.
    async fn flush(&mut self, all: bool) -> Flush {
        self.take_queue();
        let mut owed = if all { self.buf.len() } else { 0 };
        loop {
            self.take_queue();
            if self.buf.is_empty() || (owed == 0 && self.buf.len() < self.opts.batch_size) {
                break;
            }
            let n = self.buf.len().min(self.opts.batch_size);
            owed = owed.saturating_sub(n);
            let batch: Arc<Vec<SpendEvent>> = Arc::new(self.buf.drain(..n).collect());
            self.gauge();
            if let Flush::Failed = self.write_checked(&batch).await {
                let back = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
                for ev in back.into_iter().rev() {
                    self.buf.push_front(ev);
                }
                self.gauge();
                self.bound_memory();
                return Flush::Failed;
            }
        }
        // Not at shutdown: a large spill file would outlast the shutdown budget; it stays on
        // disk and is replayed after the next start.
        if self.spill_pending && !self.finishing && (all || self.buf.len() < self.opts.batch_size) {
            return self.replay().await;
        }
        Flush::Done
    }

    /// Writes a batch; when the database refuses it, writes its events one by one so only the
    /// culprits are set aside (in the rejected file, never dropped silently).
    async fn write_checked(&mut self, batch: &Arc<Vec<SpendEvent>>) -> Flush {
        match self.write(batch).await {
            Flush::Rejected => {}
            other => return other,
        }
        if batch.len() > 1 {
            tracing::warn!(
                events = batch.len(),
                "spend: the database refused a batch; writing its events one by one"
            );
        }
        for ev in batch.iter() {
            match self.write(&Arc::new(vec![ev.clone()])).await {
                Flush::Done => {}
                Flush::Rejected => self.reject(ev),
                Flush::Failed => return Flush::Failed,
            }
        }
        Flush::Done
    }

    /// Keeps an event the database will not take, for an operator to look at.
    fn reject(&mut self, ev: &SpendEvent) {
        let path = self.opts.spill_path.with_file_name(REJECTED_FILE);
        let res = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            serde_json::to_writer(&mut f, ev)?;
            f.write_all(b"\n")?;
            f.sync_all()
        })();
        metrics::global()
            .spend_write_errors
            .fetch_add(1, Ordering::Relaxed);
        match res {
            Ok(()) => tracing::error!(
                request_id = %ev.request_id,
                path = %path.display(),
                "spend: the database refused this event; kept in the rejected file"
            ),
            Err(e) => tracing::error!(
                request_id = %ev.request_id,
                "spend: the database refused this event and it could not be kept on disk: {e}"
            ),
        }
    }

    /// One transaction; on failure schedules the retry with backoff. While it runs, events
    /// the sink queues are still taken in (and spilled beyond `memory_max`), so a slow
    /// database bounds memory rather than growing the queue.
    async fn write(&mut self, batch: &Arc<Vec<SpendEvent>>) -> Flush {
        let Some(store) = self.store.clone() else {
            return Flush::Failed;
        };
        let known = self.targets;
        let write_logs = self.opts.write_logs;
        let events = batch.clone();
        let attempt = async move {
            let targets = match known {
                Some(t) => t,
                None => store.spend_targets().await?,
            };
            let r = store
                .write_spend_events(
                    events,
                    BatchOptions {
                        write_logs,
                        targets,
                    },
                )
                .await?;
            Ok::<_, crate::store::StoreError>((targets, r))
        };
        tokio::pin!(attempt);
        let deadline = tokio::time::sleep(self.opts.write_timeout);
        tokio::pin!(deadline);
        let stop = self.stop.clone();
        let queue = self.queue.clone();
        let interruptible = !self.finishing;
        let outcome = loop {
            tokio::select! {
                biased;
                r = &mut attempt => break Some(Ok(r)),
                _ = &mut deadline => break Some(Err(())),
                _ = stop.cancelled(), if interruptible => break None,
                _ = queue.ready.notified(), if interruptible => {
                    self.take_queue();
                    self.bound_memory();
                }
            }
        };
        let Some(outcome) = outcome else {
            // Shutting down: the final flush retries this batch (idempotently).
            return Flush::Failed;
        };
        match outcome {
            Ok(Ok((targets, r))) => {
                if self.targets.is_none() {
                    if targets == SpendTargets::default() {
                        tracing::info!(
                            "spend: no key/team/user tables in this database; only spend logs are written"
                        );
                    }
                    self.targets = Some(targets);
                }
                if self.retry_at.is_some() {
                    tracing::info!("spend: database reachable again; writing queued events");
                }
                self.retry_at = None;
                self.backoff = MIN_BACKOFF;
                metrics::global()
                    .spend_written
                    .fetch_add(r.applied as u64, Ordering::Relaxed);
                Flush::Done
            }
            Ok(Err(e)) if is_rejection(&e) => Flush::Rejected,
            Ok(Err(e)) => self.failed(&e.to_string(), batch.len()),
            Err(()) => self.failed("timed out", batch.len()),
        }
    }

    fn failed(&mut self, why: &str, n: usize) -> Flush {
        metrics::global()
            .spend_write_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            events = n,
            queued = self.buf.len(),
            retry_in_ms = self.backoff.as_millis() as u64,
            "spend: cannot write to the database ({why}); keeping events and retrying"
        );
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Flush::Failed
    }

    /// Appends the `n` oldest buffered events to the spill file (fsynced) and drops them from
    /// memory. On a file error they stay in memory.
    fn spill(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        if n == 0 {
            return;
        }
        let res = append_events(&self.opts.spill_path, self.buf.iter().take(n));
        match res {
            Ok(()) => {
                self.buf.drain(..n);
                self.spill_pending = true;
                metrics::global()
                    .spend_spilled
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.gauge();
                tracing::warn!(
                    events = n,
                    path = %self.opts.spill_path.display(),
                    "spend: database unreachable or writer behind; events spilled to disk"
                );
            }
            Err(e) => tracing::error!(
                path = %self.opts.spill_path.display(),
                "spend: cannot spill events to disk ({e}); keeping them in memory"
            ),
        }
    }

    /// Writes the spill file's events; removes the file once all are in. The file is first
    /// renamed aside (see [`replaying_path`]); a crash mid-replay leaves it to the next start
    /// (replaying it again is harmless: writes are idempotent).
    async fn replay(&mut self) -> Flush {
        let replaying = replaying_path(&self.opts.spill_path);
        if !replaying.exists() {
            match std::fs::rename(&self.opts.spill_path, &replaying) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.spill_pending = false;
                    return Flush::Done;
                }
                Err(e) => {
                    tracing::error!("spend: cannot set the spill file aside for replay: {e}");
                    return Flush::Failed;
                }
            }
        }
        let file = match std::fs::File::open(&replaying) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("spend: cannot read the spill file: {e}");
                return Flush::Failed;
            }
        };
        let mut lines = BufReader::new(file).lines();
        let mut total = 0usize;
        loop {
            let mut batch = Vec::with_capacity(self.opts.batch_size);
            for line in lines.by_ref() {
                let line = match line {
                    Ok(l) => l,
                    // Not UTF-8: a line torn by a crash mid-write (the reader is past it).
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        tracing::error!("spend: unreadable spill line skipped: {e}");
                        continue;
                    }
                    // Anything else: keep the file (and what is left in it) for later.
                    Err(e) => {
                        tracing::error!("spend: cannot read the spill file: {e}");
                        return Flush::Failed;
                    }
                };
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<SpendEvent>(&line) {
                    Ok(ev) => batch.push(ev),
                    // A line torn by a crash mid-write: appends start on a fresh line
                    // (`append_events`), so only that line's own event is affected.
                    Err(e) => tracing::error!("spend: unreadable spill line skipped: {e}"),
                }
                if batch.len() >= self.opts.batch_size {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            let n = batch.len();
            if let Flush::Failed = self.write_checked(&Arc::new(batch)).await {
                return Flush::Failed;
            }
            total += n;
        }
        if let Err(e) = std::fs::remove_file(&replaying) {
            tracing::error!("spend: cannot remove the replayed spill file: {e}");
            return Flush::Failed;
        }
        // Spills made during the replay are next.
        self.spill_pending = self.opts.spill_path.exists();
        if !self.spill_pending {
            metrics::global().spend_spilled.store(0, Ordering::Relaxed);
        }
        tracing::info!(
            events = total,
            "spend: spilled events replayed into the database"
        );
        Flush::Done
    }

    /// Shutdown: take everything still coming, write within the budget, spill the rest.
    async fn finish(mut self) {
        self.finishing = true;
        // Request tasks still finishing may be recording: wait until the queue is quiet.
        let quiet = Duration::from_millis(200);
        let drain_until = Instant::now() + Duration::from_secs(2);
        let mut last = self.queue.counts().1;
        while Instant::now() < drain_until {
            tokio::time::sleep(quiet).await;
            let now = self.queue.counts().1;
            if now == last {
                break;
            }
            last = now;
        }
        self.take_queue();
        let deadline = Instant::now() + self.opts.shutdown_budget;
        if self.store.is_some() {
            loop {
                self.retry_at = None;
                let left = deadline.saturating_duration_since(Instant::now());
                self.opts.write_timeout = left.max(Duration::from_millis(200));
                if let Flush::Done = self.flush(true).await {
                    break;
                }
                let wait = self
                    .backoff
                    .min(deadline.saturating_duration_since(Instant::now()));
                if wait.is_zero() {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
        }
        // From here on the sink appends straight to the spill file (`SpendSink::record`);
        // nothing queued before is missed.
        self.queue.close();
        self.take_queue();
        if !self.buf.is_empty() {
            let n = self.buf.len();
            self.spill(n);
            if !self.buf.is_empty() {
                tracing::error!(
                    events = self.buf.len(),
                    "spend: could neither write nor spill these events at shutdown"
                );
            }
        }
        if let Some(cb) = self.callbacks.take() {
            cb.shutdown().await;
        }
    }
}

/// Serializes appends to spill files: the writer's own spills and late events recorded after
/// shutdown closed the queue may run at the same time.
static SPILL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Appends events to a JSONL spill file and fsyncs it. Each append starts on a fresh line (a
/// line torn by an earlier crash is terminated first), and a failed append is cut back to the
/// file's previous length, so a torn write never swallows another event.
pub(crate) fn append_events<'a>(
    path: &std::path::Path,
    events: impl Iterator<Item = &'a SpendEvent>,
) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let _guard = SPILL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let start = f.metadata()?.len();
    let torn = start > 0 && {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(start - 1))?;
        f.read_exact(&mut last)?;
        last[0] != b'\n'
    };
    let written = (|| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, &f);
        if torn {
            w.write_all(b"\n")?;
        }
        for ev in events {
            serde_json::to_writer(&mut w, ev)?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        drop(w);
        f.sync_all()
    })();
    if written.is_err() {
        let _ = f.set_len(start);
        let _ = f.sync_all();
    }
    written
}

/// Prepares an event taken from the queue: callbacks see it, prompts go unless stored, and it
/// is made storable.
fn accept(callbacks: &Option<Callbacks>, store_prompts: bool, ev: &mut SpendEvent) {
    if let Some(cb) = callbacks {
        cb.log(ev);
    }
    if !store_prompts {
        ev.messages = None;
        ev.response = None;
    }
    sanitize(ev);
}

/// Makes an event storable on every backend, so no client input can wedge a batch:
/// PostgreSQL rejects NUL in text, SQLite turns NaN into NULL.
fn sanitize(ev: &mut SpendEvent) {
    fn clean(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "");
        }
    }
    for s in [
        &mut ev.request_id,
        &mut ev.call_id,
        &mut ev.call_type,
        &mut ev.api_key,
        &mut ev.model,
        &mut ev.model_group,
        &mut ev.model_id,
        &mut ev.provider,
        &mut ev.api_base,
        &mut ev.status,
    ] {
        clean(s);
    }
    for s in [
        &mut ev.key_alias,
        &mut ev.team_id,
        &mut ev.user_id,
        &mut ev.end_user,
        &mut ev.requester_ip,
    ]
    .into_iter()
    .flatten()
    {
        clean(s);
    }
    ev.tags.iter_mut().for_each(clean);
    if !ev.spend.is_finite() || ev.spend < 0.0 {
        ev.spend = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spend::SpendSink;
    use crate::store::spend::LogFilter;
    use crate::store::spend::tests::{event, test_store};

    fn opts(dir: &std::path::Path) -> WriterOptions {
        WriterOptions {
            interval: Duration::from_millis(50),
            batch_size: 100,
            memory_max: 50,
            spill_path: dir.join(SPILL_FILE),
            write_logs: true,
            store_prompts: false,
            shutdown_budget: Duration::from_secs(2),
            write_timeout: Duration::from_secs(5),
        }
    }

    fn spilled_ids(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<SpendEvent>(l).ok())
            .map(|e| e.request_id)
            .collect()
    }

    #[test]
    fn a_torn_spill_line_never_swallows_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SPILL_FILE);
        append_events(&path, [event("a", "k", 1.0, 0)].iter()).unwrap();
        // A crash mid-write left half a line behind.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"request_id":"torn","#).unwrap();
        drop(f);
        append_events(
            &path,
            [event("b", "k", 1.0, 0), event("c", "k", 1.0, 0)].iter(),
        )
        .unwrap();
        assert_eq!(spilled_ids(&path), ["a", "b", "c"]);
    }

    #[test]
    fn events_recorded_after_shutdown_closed_the_queue_go_to_the_spill_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SPILL_FILE);
        let (sink, queue) = SpendSink::channel(10);
        queue.set_spill_path(path.clone());
        sink.record(event("before", "k", 1.0, 0));
        queue.close();
        sink.record(event("late", "k", 1.0, 0));
        assert_eq!(spilled_ids(&path), ["late"]);
        let mut taken = VecDeque::new();
        queue.take_into(&mut taken);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].request_id, "before");
    }

    async fn count(store: &Store) -> i64 {
        store.count_spend_logs(&LogFilter::default()).await.unwrap()
    }

    async fn rename(store: &Store, from: &str, to: &str) {
        sqlx::query(&format!("ALTER TABLE {from} RENAME TO {to}"))
            .execute(&store.pool)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refused_event_is_set_aside_and_the_rest_written() {
        let (store, dir) = test_store(false).await.unwrap();
        let dir = dir.unwrap();
        sqlx::query(
            "CREATE TRIGGER poison BEFORE INSERT ON tollgate_spend_logs WHEN NEW.model = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poison'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let (sink, rx) = SpendSink::channel(64);
        let h = start_with(rx, Some(store.clone()), opts(dir.path()), None, None);
        for i in 0..10 {
            let mut ev = event(&format!("r{i}"), "k", 0.1, i);
            if i == 4 {
                ev.model = "poison".into();
            }
            sink.record(ev);
        }
        drop(sink);
        h.shutdown().await;
        assert_eq!(count(&store).await, 9);
        let kept = std::fs::read_to_string(dir.path().join(REJECTED_FILE)).unwrap();
        assert_eq!(kept.lines().count(), 1);
        assert!(kept.contains("\"r4\""));
    }

    #[test]
    fn sanitize_removes_what_a_database_would_refuse() {
        let mut ev = event("r\0", "k", f64::NAN, 0);
        ev.end_user = Some("a\0b".into());
        sanitize(&mut ev);
        assert_eq!(ev.request_id, "r");
        assert_eq!(ev.end_user.as_deref(), Some("ab"));
        assert_eq!(ev.spend, 0.0);
    }

    #[tokio::test]
    async fn shutdown_flushes_everything_even_with_live_senders() {
        let (store, dir) = test_store(false).await.unwrap();
        let dir = dir.unwrap();
        let (sink, rx) = SpendSink::channel(64);
        let mut o = opts(dir.path());
        o.interval = Duration::from_secs(3600);
        o.memory_max = 100_000;
        let h = start_with(rx, Some(store.clone()), o, None, None);
        for i in 0..1_050 {
            sink.record(event(&format!("r{i}"), "k", 0.001, i));
        }
        let _still_alive = sink.clone();
        tokio::time::timeout(Duration::from_secs(10), h.shutdown())
            .await
            .expect("shutdown is bounded");
        assert_eq!(count(&store).await, 1_050);
    }

    #[tokio::test]
    async fn outage_keeps_spills_and_replays_without_loss_or_duplicates() {
        let (store, dir) = test_store(false).await.unwrap();
        let dir = dir.unwrap();
        sqlx::query("INSERT INTO tollgate_keys (token, spend, created_at, updated_at) VALUES ('k', 0, 0, 0)")
            .execute(&store.pool)
            .await
            .unwrap();
        // Warm the writer so the first batch goes in while the database is up.
        let (sink, rx) = SpendSink::channel(1024);
        let h = start_with(rx, Some(store.clone()), opts(dir.path()), None, None);
        sink.record(event("first", "k", 0.5, 0));
        for _ in 0..100 {
            if count(&store).await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(count(&store).await, 1);

        // "Outage": the table is gone, every write fails.
        rename(&store, "tollgate_spend_logs", "outage").await;
        for i in 0..300 {
            sink.record(event(&format!("r{i}"), "k", 0.25, i));
        }
        let spill = dir.path().join(SPILL_FILE);
        for _ in 0..200 {
            if spill.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(spill.exists(), "overflow spilled to disk");
        rename(&store, "outage", "tollgate_spend_logs").await;
        for _ in 0..300 {
            if count(&store).await == 301 && !spill.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count(&store).await, 301);
        assert!(!spill.exists(), "spill replayed and removed");
        h.shutdown().await;
        let totals = store
            .spend_totals(crate::store::spend::SpendTotal::Keys)
            .await
            .unwrap();
        assert!(
            (totals[0].1 - (0.5 + 300.0 * 0.25)).abs() < 1e-9,
            "{totals:?}"
        );
    }

    #[tokio::test]
    async fn events_spilled_at_shutdown_are_replayed_on_next_start() {
        let (store, dir) = test_store(false).await.unwrap();
        let dir = dir.unwrap();
        rename(&store, "tollgate_spend_logs", "outage").await;
        let (sink, rx) = SpendSink::channel(1024);
        let mut o = opts(dir.path());
        o.shutdown_budget = Duration::from_millis(300);
        let h = start_with(rx, Some(store.clone()), o, None, None);
        for i in 0..40 {
            sink.record(event(&format!("r{i}"), "k", 0.1, i));
        }
        drop(sink);
        h.shutdown().await;
        assert!(dir.path().join(SPILL_FILE).exists());
        rename(&store, "outage", "tollgate_spend_logs").await;

        let (sink, rx) = SpendSink::channel(16);
        let h = start_with(rx, Some(store.clone()), opts(dir.path()), None, None);
        for _ in 0..100 {
            if count(&store).await == 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop(sink);
        h.shutdown().await;
        assert_eq!(count(&store).await, 40);
        assert!(!dir.path().join(SPILL_FILE).exists());
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use crate::store::spend::tests::{drop_pg_schema, event, test_store};

    /// Batch write throughput. `cargo test --release --lib spend::writer::bench -- --ignored
    /// --nocapture` (with `TOLLGATE_TEST_DATABASE_URL` for PostgreSQL too).
    #[tokio::test]
    #[ignore]
    async fn batch_write_throughput() {
        for pg in [false, true] {
            let Some((store, _dir)) = test_store(pg).await else {
                continue;
            };
            let targets = store.spend_targets().await.unwrap();
            let opts = BatchOptions {
                write_logs: true,
                targets,
            };
            let n = 20_000;
            let evs: Vec<_> = (0..n)
                .map(|i| event(&format!("r{i}"), &format!("k{}", i % 50), 0.001, i as i64))
                .collect();
            let t = std::time::Instant::now();
            for chunk in evs.chunks(1000) {
                store.write_spend_batch(chunk, opts).await.unwrap();
            }
            let el = t.elapsed();
            eprintln!(
                "{}: {n} events in {el:?} = {:.0} events/s (batches of 1000)",
                if pg { "PostgreSQL" } else { "SQLite" },
                n as f64 / el.as_secs_f64()
            );
            drop_pg_schema(&store).await;
        }
    }
}
