//! The digest delivery workers of `serve`: `Deliverer::pass` over whatever falls due,
//! under the shared worker runner, woken by `NOTIFY`s from whichever process queued the
//! deliveries.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::digests::deliver::{Deliverer, Tally};
use crate::jobs::worker::{self, Health, Step, listen};
use crate::store::deliveries::{self, Scope};

/// The long-running workers of `serve`: deliver whatever falls due until `shutdown`,
/// woken by `NOTIFY`s from whichever process queued the deliveries.
pub fn spawn(
    deliverer: Arc<Deliverer>,
    concurrency: usize,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(
        deliverer.db().clone(),
        deliveries::CHANNEL,
        wake.clone(),
        shutdown.clone(),
    ));
    let tally = Arc::new(Tally::default());
    let stop = shutdown.clone();
    let workers = worker::spawn("delivery", concurrency, wake, health, shutdown, move || {
        let (me, tally, stop) = (deliverer.clone(), tally.clone(), stop.clone());
        async move {
            let mut conn = me.db().acquire().await?;
            if me.pass(&mut conn, &Scope::Due, &tally, &stop).await? > 0 {
                return Ok(Step::Worked);
            }
            drop(conn);
            Ok(Step::Idle(deliveries::next_due(me.db()).await?))
        }
    });
    tokio::spawn(async move {
        let _ = workers.await;
        listener.abort();
    })
}
