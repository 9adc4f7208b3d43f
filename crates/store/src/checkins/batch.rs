//! Group commit of check-ins. Each request queues its submission; a writer task takes
//! whatever is waiting (at most [`MAX_BATCH`]), reads what the batch needs with one
//! statement, decides each request and writes them all with one statement per kind.
//! On PostgreSQL that is two statements on a connection the writer keeps, the second
//! committing ([`postgres`]); on SQLite one transaction ([`prepare_many`], [`write_many`]).
//! When that does not go through whole (two requests of one person or one code in the
//! batch, a row changed meanwhile), the batch starts over in a transaction one request at
//! a time, each under its own savepoint. The writer answers each request only after the
//! commit: one commit (one fsync) serves many check-ins, and nothing is acknowledged
//! before it is durable.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, Mutex, OwnedRwLockWriteGuard, RwLock};

use super::submit::{answer_after_conflict, prepare_many, write, write_many, wrong_code, Prepared, Submit, Write};
use super::{postgres, CheckinReceipt};
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
/// How long a writer keeps the queue while its batch is being written.
const HANDOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a PostgreSQL writer waits for one of its statements before it closes its
/// connection and goes through the pool instead: a connection that died unnoticed (a
/// NAT, a failover) would otherwise never answer.
const STATEMENT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// A writer's connection unused for longer is replaced rather than trusted.
const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
/// PostgreSQL writers: while some wait for their commits, one runs the next batch (three
/// measured best against two and four; see BENCHMARKS.md).
const POSTGRES_WRITERS: usize = 3;

/// A request's write, as the batch decided it.
enum Job {
    Write(Box<Write>),
    /// A wrong guess at a code: counted, and the check-in refused.
    WrongCode(i64),
}

type Answer = Result<CheckinReceipt, StoreError>;

struct Request {
    submit: Box<Submit>,
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
    /// Batches that could not be written whole and went one request at a time.
    one_by_one: AtomicUsize,
}

/// A PostgreSQL writer's own connection ([`postgres::connect`]), with when it last answered.
struct Own {
    conn: PgConnection,
    answered: std::time::Instant,
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
                one_by_one: AtomicUsize::new(0),
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

    /// Queues `submit` and waits for its answer, given after the batch's commit.
    pub(crate) async fn send(&self, pools: &Pools, submit: Box<Submit>) -> Answer {
        let (reply, answer) = oneshot::channel();
        let w = self.get(pools);
        // A full queue or a writer that stops answering gives a retryable error, never a hang.
        match tokio::time::timeout(QUEUE_WAIT, w.queue.send(Request { submit, reply })).await {
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

    pub(crate) fn one_by_one(&self, pools: &Pools) -> usize {
        self.get(pools).shared.one_by_one.load(Ordering::SeqCst)
    }
}

fn unanswered() -> StoreError {
    StoreError::NotStored("the check-in batch gave no answer for a request".into())
}

fn stopped() -> StoreError {
    StoreError::NotStored("the check-in writer has stopped".into())
}

async fn run(pools: Pools, shared: Arc<Shared>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // PostgreSQL: the connection this writer keeps between batches (see [`postgres`]).
    let mut own: Option<Own> = None;
    loop {
        let task = {
            // Waits for its turn, then only while nothing is queued; then takes what is
            // there, never more.
            let (mut queue, first) = loop {
                let wait = async {
                    let mut queue = shared.queue.lock().await;
                    let first = queue.recv().await;
                    (queue, first)
                };
                match (&pools, own.is_some()) {
                    // A kept connection is closed with the pool.
                    (Pools::Postgres(pool), true) => tokio::select! {
                        got = wait => break got,
                        () = pool.close_event() => own = None,
                    },
                    _ => break wait.await,
                }
            };
            match first {
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
            shared.largest_batch.fetch_max(batch.len(), Ordering::SeqCst);
            // In a task of its own, so that a panic answers its batch (the dropped replies
            // read as "not stored") and this writer goes on with the next.
            let (p, sh, mut work, conn) = (pools.clone(), shared.clone(), std::mem::take(&mut batch), own.take());
            let (written, ready) = oneshot::channel();
            let task = tokio::spawn(async move { commit_batch(&p, conn, &mut work, &sh, written).await });
            // The queue stays with this writer until only the commit is left (on
            // PostgreSQL, the one write that commits): the next writer then takes all that
            // came meanwhile (one large batch rather than several small ones) while this
            // one waits for its commit.
            // A batch stuck on a lock does not stop the others for long.
            let _ = tokio::time::timeout(HANDOVER_WAIT, ready).await;
            drop(queue);
            task
        };
        match task.await {
            Ok(conn) => own = conn.filter(|_| !pools.is_closed()),
            Err(e) => tracing::error!(error = %e, "check-in batch failed"),
        }
    }
}

/// Runs `batch` and answers every request: each with its own answer once the commit
/// succeeded, all with an error if the transaction was lost. On PostgreSQL it goes in two
/// statements on the writer's own connection `conn` where it can, else (as always on
/// SQLite) in one transaction, whole or else one request at a time. `written` is told
/// when only the commit is left. Gives back the connection to keep.
async fn commit_batch(
    pools: &Pools,
    mut conn: Option<Own>,
    batch: &mut Vec<Request>,
    shared: &Shared,
    written: oneshot::Sender<()>,
) -> Option<Own> {
    let subs: Vec<&Submit> = batch.iter().map(|r| &*r.submit).collect();
    let mut written = Some(written);
    let mut ways: &[bool] = &[true, false];
    if let Pools::Postgres(pool) = pools {
        match two_statements(pool, &mut conn, &subs, &mut written).await {
            Ok(answers) => {
                answer(batch, answers);
                return conn;
            }
            // The read failed: the transaction reads again.
            Err(Again::Whole) => {}
            Err(Again::OneByOne) => ways = &[false],
        }
    }
    match in_transaction(pools, &subs, shared, ways, &mut written).await {
        Ok(answers) => answer(batch, answers),
        Err(e) => fail(batch.drain(..).map(|r| r.reply), &e),
    }
    conn
}

/// The batch in a transaction, whole (where `ways` starts with `true`) and, if a write of
/// the batch failed, all over again one request at a time. The answers once committed.
async fn in_transaction(
    pools: &Pools,
    subs: &[&Submit],
    shared: &Shared,
    ways: &[bool],
    written: &mut Option<oneshot::Sender<()>>,
) -> Result<Vec<Answer>, StoreError> {
    for &whole in ways {
        let mut tx = pools.write_immediate().await?;
        if let Some(answers) = run_batch(&mut tx, subs, shared, whole).await? {
            hand_over(written);
            tx.commit().await?;
            return Ok(answers);
        }
    }
    Err(unanswered())
}

/// Tells the writer that only the commit is left: the next writer may take the queue.
fn hand_over(written: &mut Option<oneshot::Sender<()>>) {
    if let Some(w) = written.take() {
        let _ = w.send(());
    }
}

/// Each request its answer, in order.
fn answer(batch: &mut Vec<Request>, answers: Vec<Answer>) {
    for (r, answer) in batch.drain(..).zip(answers) {
        // A requester that went away is answered by its retry (same key).
        let _ = r.reply.send(answer);
    }
}

/// How a batch the two statements could not write goes on.
enum Again {
    Whole,
    OneByOne,
}

/// The batch on PostgreSQL with one read and one write that commits ([`postgres`]), on
/// the writer's own connection (a new one if there is none, or if it was idle past
/// [`IDLE_LIMIT`]). A statement that fails or does not answer within [`STATEMENT_WAIT`]
/// closes the connection: the next batch opens another.
async fn two_statements(
    pool: &PgPool,
    own: &mut Option<Own>,
    subs: &[&Submit],
    written: &mut Option<oneshot::Sender<()>>,
) -> Result<Vec<Answer>, Again> {
    if own.as_ref().is_some_and(|o| o.answered.elapsed() > IDLE_LIMIT) {
        *own = None;
    }
    let o = match own {
        Some(o) => o,
        None => match timeout(postgres::connect(pool)).await {
            Ok(conn) => own.insert(Own { conn, answered: std::time::Instant::now() }),
            Err(e) => {
                tracing::debug!(error = %e, "no connection of its own for the check-in writer");
                return Err(Again::Whole);
            }
        },
    };
    let (prepared, ids) = match timeout(postgres::prepare_many(&mut o.conn, subs)).await {
        Ok(read) => read,
        Err(e) => {
            tracing::debug!(error = %e, "check-in batch read again in a transaction");
            *own = None;
            return Err(Again::Whole);
        }
    };
    o.answered = std::time::Instant::now();
    let (mut answers, jobs) = sort(prepared);
    if !independent(&jobs) {
        return Err(Again::OneByOne);
    }
    // Only the write is left, and it commits.
    hand_over(written);
    if !jobs.is_empty() {
        let (writes, wrong) = split(&jobs);
        match timeout(postgres::write_many(&mut o.conn, &writes, &ids, &wrong)).await {
            Ok(receipts) => {
                o.answered = std::time::Instant::now();
                fill(&mut answers, jobs, receipts)
            }
            Err(e) => {
                tracing::debug!(error = %e, "check-in batch goes again one request at a time");
                *own = None;
                return Err(Again::OneByOne);
            }
        }
    }
    Ok(finish(answers))
}

/// `f`, or an error after [`STATEMENT_WAIT`].
async fn timeout<T>(f: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(STATEMENT_WAIT, f)
        .await
        .unwrap_or_else(|_| Err(StoreError::NotStored("no answer from PostgreSQL in time".into())))
}

/// What the read decided, sorted: the answers known now (`None` where a write is to
/// come), and the writes, each with its request's place in the batch.
fn sort(prepared: Vec<Result<Prepared, StoreError>>) -> (Vec<Option<Answer>>, Vec<(usize, Job)>) {
    let mut answers = Vec::with_capacity(prepared.len());
    let mut jobs = Vec::new();
    for (i, p) in prepared.into_iter().enumerate() {
        answers.push(match p {
            Ok(Prepared::Answer(receipt)) => Some(Ok(receipt)),
            Err(e) => Some(Err(e)),
            Ok(Prepared::WrongCode(id)) => {
                jobs.push((i, Job::WrongCode(id)));
                None
            }
            Ok(Prepared::Write(w)) => {
                jobs.push((i, Job::Write(w)));
                None
            }
        });
    }
    (answers, jobs)
}

/// The check-ins to insert and the wrong codes to count, in the jobs' order.
fn split(jobs: &[(usize, Job)]) -> (Vec<&Write>, Vec<i64>) {
    let writes = jobs.iter().filter_map(|(_, j)| if let Job::Write(w) = j { Some(&**w) } else { None }).collect();
    let wrong = jobs.iter().filter_map(|(_, j)| if let Job::WrongCode(id) = j { Some(*id) } else { None }).collect();
    (writes, wrong)
}

/// The answers of jobs written together: the receipts of the writes, in order.
fn fill(answers: &mut [Option<Answer>], jobs: Vec<(usize, Job)>, receipts: Vec<CheckinReceipt>) {
    let mut receipts = receipts.into_iter();
    for (i, job) in jobs {
        answers[i] = Some(match job {
            Job::Write(_) => receipts.next().ok_or_else(unanswered),
            Job::WrongCode(_) => Err(wrong_code()),
        });
    }
}

/// The answers in order; one still missing is an error, never a hang.
fn finish(answers: Vec<Option<Answer>>) -> Vec<Answer> {
    answers.into_iter().map(|a| a.unwrap_or_else(|| Err(unanswered()))).collect()
}

/// The batch's answers, in order. With `whole`, the batch is written with one statement
/// per kind if its requests are independent; `Ok(None)` when such a write failed (the
/// transaction is then to be dropped). Otherwise one request at a time, each under a
/// savepoint. `Err` when the transaction itself is lost.
async fn run_batch(
    tx: &mut Tx,
    subs: &[&Submit],
    shared: &Shared,
    whole: bool,
) -> Result<Option<Vec<Answer>>, StoreError> {
    let (mut answers, jobs) = sort(prepare_many(tx, subs).await?);
    if whole && independent(&jobs) {
        let (writes, wrong) = split(&jobs);
        let receipts = match write_many(tx, &writes, &wrong).await {
            Ok(receipts) => receipts,
            Err(e) => {
                tracing::debug!(error = %e, "check-in batch goes again one request at a time");
                return Ok(None);
            }
        };
        fill(&mut answers, jobs, receipts);
    } else {
        shared.one_by_one.fetch_add(1, Ordering::SeqCst);
        // Request keys stored one by one, for the same request twice in the batch.
        let mut stored: HashMap<String, (String, CheckinReceipt)> = HashMap::new();
        for (i, job) in &jobs {
            answers[*i] = Some(step(tx, job, &mut stored).await?);
        }
    }
    Ok(Some(finish(answers)))
}

/// Whether the jobs can be written together: no request key, ID number or code twice.
fn independent(jobs: &[(usize, Job)]) -> bool {
    let (mut keys, mut people, mut codes) = (HashSet::new(), HashSet::new(), HashSet::new());
    jobs.iter().all(|(_, job)| match job {
        Job::WrongCode(id) => codes.insert(*id),
        Job::Write(w) => {
            keys.insert(w.request_key.as_str())
                && people.insert(w.id_number())
                && w.code_id.is_none_or(|id| codes.insert(id))
        }
    })
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
    // A deadlock victim (PostgreSQL, crossing another transaction on the same rows) tries
    // once more: its lock wait ends with the other one, and a retry then finds the first answer.
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
