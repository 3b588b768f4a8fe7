//! The sign-up writer: new addresses that arrive together are written together.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::store::subscribers;

/// Sign-ups written together: the new addresses that arrive while one batch is being
/// written go into the next, in one statement and one commit (group commit), so a burst
/// of sign-ups costs Postgres a commit per batch rather than per request. Each request
/// still answers only once the commit holding its subscriber and its confirmation email
/// is done.
#[derive(Clone)]
pub struct SignupWriter {
    jobs: mpsc::Sender<WriteJob>,
}

struct WriteJob {
    row: subscribers::NewPending,
    done: oneshot::Sender<Result<Written, String>>,
}

/// What became of a sign-up handed to the writer.
pub enum Written {
    New,
    /// The address is known already: nothing was written.
    Known,
}

/// Sign-ups written in one statement at most.
const MAX_BATCH: usize = 128;
/// Batches written at once: while one commits, the next is being written.
const WRITERS: usize = 2;

impl SignupWriter {
    /// Starts the writers; they stop when the last handle is dropped.
    pub fn start(db: PgPool) -> Self {
        let (jobs, queue) = mpsc::channel::<WriteJob>(4 * MAX_BATCH);
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(db.clone(), queue.clone()));
        }
        Self { jobs }
    }

    /// Writes a new pending subscriber with its confirmation, unless the address is known.
    pub async fn insert(&self, row: subscribers::NewPending) -> Result<Written, String> {
        let (done, written) = oneshot::channel();
        let gone = || "the sign-up writer has stopped".to_string();
        self.jobs.send(WriteJob { row, done }).await.map_err(|_| gone())?;
        written.await.map_err(|_| gone())?
    }
}

async fn write_batches(db: PgPool, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<WriteJob>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        // One statement cannot insert an address twice: repeats go in a later round.
        while !batch.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|j| seen.insert(j.row.email_key.clone()));
            write_round(&db, round).await;
            batch = later;
        }
    }
}

async fn write_round(db: &PgPool, round: Vec<WriteJob>) {
    let rows: Vec<&subscribers::NewPending> = round.iter().map(|j| &j.row).collect();
    match subscribers::insert_pending(db, &rows).await {
        Ok(new) => {
            let new: HashSet<String> = new.into_iter().collect();
            for job in round {
                let written = match new.contains(&job.row.email_key) {
                    true => Written::New,
                    false => Written::Known,
                };
                let _ = job.done.send(Ok(written));
            }
        }
        Err(e) => {
            let why = e.to_string();
            for job in round {
                let _ = job.done.send(Err(why.clone()));
            }
        }
    }
}
