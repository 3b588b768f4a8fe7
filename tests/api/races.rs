//! Mail that races something: a relay slower than a worker's claim lasts, an erase while a
//! batch is being sent.

use std::time::Duration;

use crate::helpers::{app_with_papers, spawn_app_with, with_admin};
use crate::smtp::Mode;

#[tokio::test]
async fn a_relay_slower_than_the_claim_lease_gets_each_digest_once_from_two_senders() {
    let (app, _up) = app_with_papers(&[("PAPERBOY_CLAIM_LEASE_SECS", "1")]).await;
    let readers = ["a@example.com", "b@example.com", "c@example.com"];
    for r in readers {
        app.subscriber(r, &[]).await;
    }
    // Each digest takes 2.5 s to be accepted: the first sender's claim on the rest of its
    // batch, and on the one in flight, is older than the lease when the second comes.
    app.smtp.set_mode(Mode::Delay(2500));
    let first = app.send_edition("2025-11-06");
    let second = async {
        tokio::time::sleep(Duration::from_millis(1600)).await;
        app.send_edition("2025-11-06").await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.sent + second.sent, 3, "{first:?} {second:?}");
    for r in readers {
        assert_eq!(app.digests_to(r).len(), 1, "{r} got exactly one digest");
    }
}

#[tokio::test]
async fn a_relay_slower_than_the_claim_lease_gets_each_confirmation_once() {
    let app = spawn_app_with(&[("PAPERBOY_CLAIM_LEASE_SECS", "1")]).await;
    app.smtp.set_mode(Mode::Delay(2500));
    let readers = ["a@example.com", "b@example.com", "c@example.com", "d@example.com"];
    for r in readers {
        assert_eq!(app.subscribe(r, "agents").await.status(), 200);
    }
    app.smtp.wait_for(readers.len()).await;
    // Long enough for any worker to have taken a claim older than the lease and sent again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for r in readers {
        let copies = app.smtp.messages_to(r).len();
        assert_eq!(copies, 1, "{r} got exactly one confirmation, not {copies}");
    }
    assert_eq!(app.smtp.messages().len(), readers.len(), "and nobody else got any");
}

#[tokio::test]
async fn an_erase_during_a_send_stops_mail_to_that_address_and_writes_nothing_back() {
    let (app, _up) = app_with_papers(&with_admin(&[("PAPERBOY_RETRY_BASE_MS", "100")])).await;
    app.subscriber("first@example.com", &[("topics", "agents")]).await;
    app.subscriber("second@example.com", &[("topics", "agents")]).await;
    app.queue_edition("2025-11-06").await;
    let order: Vec<uuid::Uuid> =
        app.deliveries().await.iter().map(|d| d.subscriber_id.unwrap()).collect();
    let admin = app.admin_login().await;

    app.smtp.set_mode(Mode::Delay(1500));
    let send = app.send_edition("2025-11-06");
    let erase = async {
        // The first digest is on the wire, the second one's subscriber already loaded.
        while app.smtp.begun() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for who in [order[1], order[0]] {
            let res = admin.post(&format!("/admin/subscribers/{who}/delete"), &[]).await;
            assert!(res.status().is_redirection() || res.status().is_success(), "{}", res.status());
        }
    };
    let (summary, ()) = tokio::join!(send, erase);

    let digests = |who: &str| app.digests_to(who).len();
    let mailed = (digests("first@example.com"), digests("second@example.com"));
    assert!(
        mailed == (1, 0) || mailed == (0, 1),
        "only the digest already on the wire went: {mailed:?}"
    );
    assert_eq!((summary.sent, summary.cancelled), (1, 1), "{summary:?}");
    // Raw SQL: the erased readers' deliveries belong to nobody, so no interface shows what
    // they hold.
    let why_lines: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE subscriber_id IS NULL AND why <> '{}'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(why_lines, 0, "nothing about an erased reader is written after the erase");
}
