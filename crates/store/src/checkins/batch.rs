//! Group commit of check-ins. Each request reads what it needs on the read pool
//! ([`super::submit::prepare`]) and queues the write; a writer task takes whatever is
//! waiting (at most [`MAX_BATCH`]), runs it in one transaction with a savepoint per
//! request, commits once and only then answers each request. One commit (one fsync)
//! serves many check-ins, and nothing is acknowledged before it is durable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot, Mutex, OwnedRwLockWriteGuard, RwLock};

use super::submit::{answer_after_conflict, write, wrong_code, Write};
use super::CheckinReceipt;
use crate::db::{Backend, Pools};
use crate::{messages, StoreError, Tx};

/// Requests per transaction: keeps a batch's time short, and on PostgreSQL within the 64
/// subtransactions a backend caches before snapshots get slower.
const MAX_BATCH: usize = 64;
/// Requests waiting for a writer; beyond this, senders wait.
const QUEUE: usize = 1024;
/// How long a request waits for room in the queue, then for its answer.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// PostgreSQL writers: while one commits, others run their batches.
const POSTGRES_WRITERS: usize = 4;

/// A write that waits for the writer.
pub(crate) enum Job {
    Write(Box<Write>),
    /// A wrong guess at a code: counted, and the check-in refused.
    WrongCode(i64),
}

type Answer = Result<CheckinReceipt, StoreError>;

struct Request {
    job: Job,
    reply: oneshot::Sender<Answer>,
}

struct Shared {
    /// One queue for all writers: the one whose turn it is takes everything waiting.
    queue: Mutex<mpsc::Receiver<Request>>,
    /// Taken by a writer between its first request and the rest (see [`hold`]).
    hold: Arc<RwLock<()>>,
    /// Requests taken by a writer that waits at `hold`.
    in_hand: AtomicUsize,
    largest_batch: AtomicUsize,
}

struct Writer {
    queue: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

/// The writer of a store, started with its first check-in (so that it runs on the
/// caller's runtime). The tasks end when the last handle on the store is dropped.
#[derive(Clone, Default)]
pub(crate) struct CheckinWriter(Arc<OnceLock<Writer>>);

impl CheckinWriter {
    fn get(&self, pools: &Pools) -> &Writer {
        self.0.get_or_init(|| {
            let (queue, rx) = mpsc::channel(QUEUE);
            let shared = Arc::new(Shared {
                queue: Mutex::new(rx),
                hold: Arc::new(RwLock::new(())),
                in_hand: AtomicUsize::new(0),
                largest_batch: AtomicUsize::new(0),
            });
            // SQLite has one writer connection; PostgreSQL commits concurrently.
            let writers = match pools.backend() {
                Backend::Sqlite => 1,
                Backend::Postgres => POSTGRES_WRITERS,
            };
            for _ in 0..writers {
                tokio::spawn(run(pools.clone(), shared.clone()));
            }
            Writer { queue, shared }
        })
    }

    /// Queues `job` and waits for its answer, given after the batch's commit.
    pub(crate) async fn send(&self, pools: &Pools, job: Job) -> Answer {
        let (reply, answer) = oneshot::channel();
        let w = self.get(pools);
        // A full queue or a writer that stops answering gives a retryable error, never a hang.
        match tokio::time::timeout(QUEUE_WAIT, w.queue.send(Request { job, reply })).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(stopped()),
            Err(_) => return Err(StoreError::NotStored("the check-in queue is full".into())),
        }
        match tokio::time::timeout(ANSWER_WAIT, answer).await {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(StoreError::NotStored("no answer from the check-in writer in time".into())),
        }
    }

    /// Keeps the writer from starting its next batch until the guard is dropped.
    pub(crate) async fn hold(&self, pools: &Pools) -> OwnedRwLockWriteGuard<()> {
        self.get(pools).shared.hold.clone().write_owned().await
    }

    /// Requests queued or in a held writer's hand, not yet in a batch.
    pub(crate) fn waiting(&self, pools: &Pools) -> usize {
        let w = self.get(pools);
        w.queue.max_capacity() - w.queue.capacity() + w.shared.in_hand.load(Ordering::SeqCst)
    }

    pub(crate) fn largest_batch(&self, pools: &Pools) -> usize {
        self.get(pools).shared.largest_batch.load(Ordering::SeqCst)
    }
}

fn stopped() -> StoreError {
    StoreError::NotStored("the check-in writer has stopped".into())
}

async fn run(pools: Pools, shared: Arc<Shared>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut queue = shared.queue.lock().await;
            // Waits only while nothing is queued; then takes what is there, never more.
            match queue.recv().await {
                Some(r) => batch.push(r),
                None => return,
            }
            shared.in_hand.store(1, Ordering::SeqCst);
            drop(shared.hold.read().await);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            shared.in_hand.store(0, Ordering::SeqCst);
        }
        shared.largest_batch.fetch_max(batch.len(), Ordering::SeqCst);
        // In a task of its own, so that a panic answers its batch (the dropped replies
        // read as "not stored") and this writer goes on with the next.
        let (p, mut work) = (pools.clone(), std::mem::take(&mut batch));
        if let Err(e) = tokio::spawn(async move { commit_batch(&p, &mut work).await }).await {
            tracing::error!(error = %e, "check-in batch failed");
        }
    }
}

/// Runs `batch` in one transaction and answers every request: each with its own
/// answer once the commit succeeded, all with an error if the transaction was lost.
async fn commit_batch(pools: &Pools, batch: &mut Vec<Request>) {
    let mut tx = match pools.write().await {
        Ok(tx) => tx,
        Err(e) => return fail(batch.drain(..).map(|r| r.reply), &e),
    };
    let mut answers = Vec::with_capacity(batch.len());
    // Request keys stored by this batch, for the same request twice in it.
    let mut stored: HashMap<String, (String, CheckinReceipt)> = HashMap::new();
    let mut requests = batch.drain(..);
    while let Some(r) = requests.next() {
        match step(&mut tx, &r.job, &mut stored).await {
            Ok(answer) => answers.push((r.reply, answer)),
            Err(e) => {
                drop(tx);
                let replies = answers.into_iter().map(|a| a.0).chain([r.reply]).chain(requests.map(|r| r.reply));
                return fail(replies, &e);
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, answer) in answers {
                // A requester that went away is answered by its retry (same key).
                let _ = reply.send(answer);
            }
        }
        Err(e) => fail(answers.into_iter().map(|a| a.0), &e),
    }
}

fn fail(replies: impl Iterator<Item = oneshot::Sender<Answer>>, e: &StoreError) {
    tracing::error!(error = %e, "check-in batch not stored");
    for reply in replies {
        let _ = reply.send(Err(StoreError::NotStored(e.to_string())));
    }
}

/// One request inside the batch's transaction: `Ok` with its answer (the transaction is
/// still good), or `Err` when the transaction itself is lost.
async fn step(
    tx: &mut Tx,
    job: &Job,
    stored: &mut HashMap<String, (String, CheckinReceipt)>,
) -> Result<Answer, StoreError> {
    if let Job::Write(w) = job {
        if let Some((id_number, first)) = stored.get(&w.request_key) {
            // As a retry after the first had committed would be answered.
            return Ok(if id_number == w.id_number() {
                Ok(first.clone())
            } else {
                Err(StoreError::Conflict("checkin.request_reused"))
            });
        }
    }
    // Without a RELEASE: one round trip less on PostgreSQL, and the commit releases all.
    let mut e = match attempt(tx, job, stored).await? {
        Ok(answer) => return Ok(answer),
        Err(e) => e,
    };
    // A deadlock victim (PostgreSQL, writers crossing on the same rows) tries once more:
    // its lock wait ends with the other batch, and a retry then finds the first answer.
    if e.is_deadlock() {
        e = match attempt(tx, job, stored).await? {
            Ok(answer) => return Ok(answer),
            Err(e) => e,
        };
    }
    match job {
        Job::Write(w) if e.is_unique_violation() || e.is_deadlock() => match answer_after_conflict(tx, w).await {
            // A failed read would leave a PostgreSQL transaction aborted: give it up.
            Err(StoreError::Db(e)) => Err(StoreError::Db(e)),
            answer => Ok(answer),
        },
        _ => Ok(Err(e)),
    }
}

/// One try under a savepoint: `Ok(Ok(answer))` done, `Ok(Err(e))` undone to the
/// savepoint with `e`, `Err` when the transaction itself is lost.
async fn attempt(
    tx: &mut Tx,
    job: &Job,
    stored: &mut HashMap<String, (String, CheckinReceipt)>,
) -> Result<Result<Answer, StoreError>, StoreError> {
    plain(tx, "SAVEPOINT checkin").await?;
    let done = match job {
        Job::Write(w) => write(tx, w).await,
        Job::WrongCode(id) => match messages::count_wrong_attempt(tx, *id).await {
            Ok(()) => return Ok(Ok(Err(wrong_code()))),
            Err(e) => Err(e),
        },
    };
    match done {
        Ok(receipt) => {
            if let Job::Write(w) = job {
                stored.insert(w.request_key.clone(), (w.id_number().to_string(), receipt.clone()));
            }
            Ok(Ok(Ok(receipt)))
        }
        Err(e) => {
            // Undoes this request only; if that fails, the transaction is gone.
            plain(tx, "ROLLBACK TO SAVEPOINT checkin").await?;
            Ok(Err(e))
        }
    }
}

/// A statement without parameters (on PostgreSQL, one simple-protocol round trip).
async fn plain(tx: &mut Tx, sql: &'static str) -> Result<(), StoreError> {
    use sqlx::Executor;
    match tx {
        Tx::Sqlite(t) => t.execute(sql).await.map(|_| ())?,
        Tx::Postgres(t) => t.execute(sql).await.map(|_| ())?,
    }
    Ok(())
}
