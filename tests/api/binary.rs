//! The real `paperboy` binary, as an operator runs it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use paperboy::store::deliveries::DeliveryStatus;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestDb, extract_path, login_form, wait_until};
use crate::smtp::SmtpServer;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("paperboy-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `paperboy` with a clean environment (nothing leaks in from the developer's shell).
pub(crate) fn paperboy(dir: &PathBuf, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paperboy"));
    cmd.env_clear().current_dir(dir).env("PATH", std::env::var("PATH").unwrap_or_default());
    // Literal ranking unless a test names a model: tests never reach the Hugging Face hub.
    cmd.env("PAPERBOY_EMBEDDING_MODEL", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub(crate) struct Running {
    child: Child,
    base: String,
}

impl Running {
    pub(crate) async fn start(mut cmd: Command, port: u16) -> Self {
        let child =
            cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn paperboy");
        let base = format!("http://127.0.0.1:{port}");
        wait_until("paperboy ready", Duration::from_secs(30), || async {
            reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
        Self { child, base }
    }

    /// SIGTERM, then the exit status and everything logged.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let ok =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
        let out = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `paperboy serve` in `dir` on a free port, scheduler off, with `extra` settings.
async fn serve(db: &TestDb, dir: &PathBuf, extra: &[(&str, &str)]) -> Running {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = vec![
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_BIND", bind.as_str()),
        ("PAPERBOY_SCHEDULER", "off"),
    ];
    env.extend_from_slice(extra);
    Running::start(paperboy(dir, &env), port).await
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn migrate_creates_the_database_and_can_run_twice() {
    let db = TestDb::new();
    let dir = scratch_dir();
    for _ in 0..2 {
        let out = paperboy(&dir, &[("DATABASE_URL", &db.url)]).arg("migrate").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // The schema is there: the subscribers and the mail queue can be read.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    assert!(paperboy::store::subscribers::counts(&pool).await.unwrap().is_empty());
    assert_eq!(paperboy::store::mail_queue::next_due(&pool).await.unwrap(), None);
    pool.close().await;
}

#[tokio::test]
async fn without_smtp_mail_lands_in_the_outbox_and_sigterm_exits_cleanly() {
    let db = TestDb::new();
    let dir = scratch_dir();
    // No SMTP URL: mail goes to the outbox.
    let app = serve(&db, &dir, &[]).await;

    let res = reqwest::Client::new()
        .post(format!("{}/subscribe", app.base))
        .form(&[("email", "out@example.com"), ("frequency", "daily")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The default outbox is ./outbox under the working directory.
    let outbox = dir.join("outbox");
    let find_eml = || {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| p.extension().is_some_and(|x| x == "eml"))
            })
            .ok()
            .flatten()
    };
    wait_until("an .eml in the outbox", Duration::from_secs(10), || async { find_eml().is_some() })
        .await;
    let eml = find_eml().expect("the .eml found");
    let text = std::fs::read_to_string(&eml).unwrap();
    assert!(text.contains("out@example.com"));
    assert!(text.contains("/confirm/"));

    let (status, log) = app.terminate();
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(log.contains(".eml"), "the outbox path is logged");
    assert!(!log.contains("out@example.com"), "whole addresses never appear in logs");
    assert!(!log.contains("/confirm/"), "tokens never appear in logs");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mail_queued_before_a_crash_is_delivered_after_restart() {
    let db = TestDb::new();
    let dir = scratch_dir();
    let out = paperboy(&dir, &[("DATABASE_URL", &db.url)]).arg("migrate").output().unwrap();
    assert!(out.status.success());
    // A message committed by a request whose process died before the worker sent it.
    // Raw SQL: the state a crash leaves (a message queued, as an older version queued
    // them, rendered); no interface stops a process between commit and send.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO outgoing_mail (kind, recipient, subject, body_text, body_html)
         VALUES ('confirmation', 'late@example.com', 'Confirm your paperboy subscription', 'text', '<p>html</p>')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let smtp = SmtpServer::start().await;
    let app = serve(&db, &dir, &[("PAPERBOY_SMTP_URL", &smtp.url())]).await;
    let mail = smtp.wait_for_mail_to("late@example.com", 1).await;
    assert_eq!(mail.subject(), "Confirm your paperboy subscription");
    let (status, _) = app.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn a_failing_request_gets_a_friendly_500_and_the_log_names_the_step() {
    let db = TestDb::new();
    let dir = scratch_dir();
    let app = serve(&db, &dir, &[]).await;
    // The archive's table goes missing under the running service. Raw SQL: a database
    // broken under the service; no interface breaks it.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query("ALTER TABLE papers RENAME TO papers_elsewhere").execute(&pool).await.unwrap();
    pool.close().await;

    let res = reqwest::get(format!("{}/days", app.base)).await.unwrap();
    assert_eq!(res.status(), 500);
    let page = res.text().await.unwrap();
    assert!(page.contains("Something went wrong"), "{page}");
    assert!(!page.contains("relation") && !page.contains("papers_elsewhere"), "no SQL error shown");

    let (_, log) = app.terminate();
    let line =
        log.lines().find(|l| l.contains("request failed")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("listing the featured days"), "the step is named: {line}");
    assert!(line.contains("papers"), "and the cause: {line}");
    assert_eq!(line.matches("does not exist").count(), 1, "each cause once: {line}");
    assert!(line.contains("SQLSTATE 42P01"), "with the database's code: {line}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_bad_setting_exits_non_zero_with_a_one_line_reason() {
    let dir = scratch_dir();
    let out =
        paperboy(&dir, &[("PAPERBOY_BIND", "not-an-address")]).arg("migrate").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PAPERBOY_BIND"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn an_unreachable_database_exits_non_zero_with_a_reason() {
    let dir = scratch_dir();
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/paperboy");
    let out = paperboy(&dir, &[("DATABASE_URL", &url)]).arg("migrate").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Postgres") || err.contains("database"), "{err}");
}

// The binary runs synchronously here; the upstream needs a second worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_prints_a_summary_line_and_exits_zero() {
    let up = crate::upstream::Upstream::start().await;
    let db = TestDb::new();
    let dir = scratch_dir();
    let arxiv = format!("{}/rss", up.url);
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_HF_URL", up.url.as_str()),
        ("PAPERBOY_ARXIV_URL", arxiv.as_str()),
    ];
    let out = paperboy(&dir, &env)
        .args(["ingest", "--source", "huggingface", "--date", "2025-11-06"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "huggingface 2025-11-06: fetched 13, new 13, updated 0\n"
    );

    let out = paperboy(&dir, &env).args(["ingest", "--date", "2025-11-06"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "huggingface 2025-11-06: fetched 13, new 0, updated 0");
    assert!(lines[1].starts_with("arxiv 2025-11-06: fetched 13, new "), "{stdout}");
}

// The binary runs synchronously here; the upstream needs a second worker thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ingest_exits_non_zero_with_a_one_line_reason() {
    let up = crate::upstream::Upstream::start().await;
    up.set_fault(Some(crate::upstream::Fault::Body(b"<html><body>Oops</body></html>".to_vec())));
    let db = TestDb::new();
    let dir = scratch_dir();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_HF_URL", up.url.as_str()),
        ("RUST_LOG", "off"),
    ];
    let out = paperboy(&dir, &env)
        .args(["ingest", "--source", "huggingface", "--date", "2025-11-06"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("HTML page"), "{err}");

    for bad in [vec!["ingest", "--date", "2025-13-45"], vec!["ingest", "--source", "bogus"]] {
        let out = paperboy(&dir, &env).args(&bad).output().unwrap();
        assert!(!out.status.success(), "{bad:?}");
    }
}

// terminate() blocks while the children finish their requests to the upstream here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_run_the_same_scheduled_job_at_once() {
    let up = crate::upstream::Upstream::start().await;
    // Each Hugging Face request takes 1.5 s, and the job is due every second.
    up.set_delay(Duration::from_millis(1500));
    let db = TestDb::new();
    let dir = scratch_dir();
    let mut apps = Vec::new();
    for _ in 0..2 {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let arxiv = format!("{}/rss", up.url);
        let cmd = paperboy(
            &dir,
            &[
                ("DATABASE_URL", db.url.as_str()),
                ("PAPERBOY_BIND", bind.as_str()),
                ("PAPERBOY_HF_URL", up.url.as_str()),
                ("PAPERBOY_ARXIV_URL", arxiv.as_str()),
                ("PAPERBOY_INGEST_HF_CRON", "* * * * * *"),
                ("PAPERBOY_INGEST_ARXIV_CRON", "0 0 1 1 *"),
            ],
        );
        apps.push(Running::start(cmd, port).await);
    }
    // Both processes compete for the job until it has run a few times.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    // The runs as the dashboard lists them, oldest first.
    let hf_runs = || async {
        let mut runs = paperboy::store::ingest_runs::latest(&pool, 1000).await.unwrap();
        runs.retain(|r| r.source == "huggingface");
        runs.sort_by_key(|r| r.started_at);
        runs
    };
    wait_until("four finished Hugging Face runs", Duration::from_secs(30), || async {
        hf_runs().await.iter().filter(|r| r.finished_at.is_some()).count() >= 4
    })
    .await;
    for app in apps {
        let (status, log) = app.terminate();
        assert!(status.success(), "{log}");
    }

    let runs = hf_runs().await;
    assert!(runs.len() >= 4, "the job ran repeatedly: {runs:?}");
    // Runs come in pairs (today, yesterday) per job execution; none may overlap another.
    for w in runs.windows(2) {
        let (Some(end), next_start) = (w[0].finished_at, w[1].started_at) else {
            panic!("an unfinished run: {runs:?}")
        };
        assert!(end <= next_start, "runs overlap: {runs:?}");
    }
    pool.close().await;
}

/// A migrated database with the fixture papers of 2025-11-06 and `subscribers` confirmed subscribers.
async fn seeded_for_send(up: &crate::upstream::Upstream, subscribers: usize) -> (TestDb, PathBuf) {
    let db = TestDb::new();
    let dir = scratch_dir();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_HF_URL", up.url.as_str()),
        ("RUST_LOG", "warn"),
    ];
    let out = paperboy(&dir, &env)
        .args(["ingest", "--source", "huggingface", "--date", "2025-11-06"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Raw SQL: subscribers who confirmed long ago, in bulk; signing up (the web's way, the
    // only one) needs `serve` and leaves a confirmation in the queue for each.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO subscribers (email, email_key, status, confirmed_at)
         SELECT 'subscriber' || i || '@example.com', 'subscriber' || i || '@example.com', 'confirmed',
                now()
         FROM generate_series(1, $1) AS i",
    )
    .bind(subscribers as i32)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    (db, dir)
}

/// `paperboy send` against this database and SMTP server, two connections at a time.
fn send_env<'a>(db: &'a TestDb, smtp_url: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_SMTP_URL", smtp_url),
        ("PAPERBOY_SEND_CONCURRENCY", "2"),
        ("RUST_LOG", "warn"),
    ]
}

/// Who got a digest, once per digest.
fn recipients(smtp: &SmtpServer) -> Vec<String> {
    smtp.digests().into_iter().flat_map(|m| m.to).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_prints_a_summary_and_a_second_run_sends_nothing() {
    let up = crate::upstream::Upstream::start().await;
    let (db, dir) = seeded_for_send(&up, 3).await;
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_SMTP_URL", smtp_url.as_str()),
        ("RUST_LOG", "warn"),
    ];
    let out = paperboy(&dir, &env).args(["send", "--date", "2025-11-06"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "send 2025-11-06 + 2025-W45: composed 3, sent 3, skipped empty 0, failed 0, retrying later 0, cancelled 0\n"
    );
    let out = paperboy(&dir, &env).arg("send").output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("composed 0, sent 0"),
        "the latest day is the default"
    );
    assert_eq!(recipients(&smtp).len(), 3);

    // Everyone switches to a weekly digest on Thursdays (the weekday of 2025-11-06).
    smtp.set_mode(crate::smtp::Mode::RejectPermanent);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    use paperboy::store::subscribers;
    for s in subscribers::search(&pool, "", None, "", "", 100).await.unwrap() {
        let mut prefs = subscribers::find_by_id(&pool, s.id).await.unwrap().unwrap().preferences();
        (prefs.frequency, prefs.weekday) = (paperboy::domain::Frequency::Weekly, 4);
        subscribers::update_preferences(&pool, s.id, &prefs).await.unwrap();
    }
    pool.close().await;
    let out = paperboy(&dir, &env).args(["send", "--date", "2025-11-06"]).output().unwrap();
    assert!(!out.status.success(), "failures give a non-zero exit");
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed 3"));
    let err = String::from_utf8_lossy(&out.stderr);
    let reason = err.trim().lines().last().unwrap();
    assert!(reason.starts_with("paperboy: 3 digests failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_killed_mid_run_resumes_without_losing_or_repeating_digests() {
    let up = crate::upstream::Upstream::start().await;
    let subscribers = 12;
    let (db, dir) = seeded_for_send(&up, subscribers).await;
    let smtp = SmtpServer::start().await;
    smtp.set_mode(crate::smtp::Mode::Delay(300));
    let smtp_url = smtp.url();
    let env = send_env(&db, &smtp_url);
    let mut child = paperboy(&dir, &env)
        .args(["send", "--date", "2025-11-06"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("sending started", Duration::from_secs(20), || async { smtp.begun() >= 4 }).await;
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // The messages whose data the server had when the sender died still land; then its
    // sessions see the closed connections and end.
    wait_until("the killed sender's SMTP sessions ended", Duration::from_secs(10), || async {
        smtp.open_sessions() == 0
    })
    .await;
    let before = recipients(&smtp).len();
    assert!(before < subscribers, "killed mid-run ({before} sent)");

    smtp.set_mode(crate::smtp::Mode::Accept);
    let out = paperboy(&dir, &env).args(["send", "--date", "2025-11-06"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = recipients(&smtp);
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), subscribers, "nobody was lost");
    assert!(
        all.len() <= subscribers + 2,
        "only the messages in flight at the kill may repeat: {} for {subscribers}",
        all.len()
    );
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let sent = paperboy::store::deliveries::listed(&pool, Some(DeliveryStatus::Sent), 100);
    assert_eq!(sent.await.unwrap().len(), subscribers, "each recorded as sent");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_sends_share_the_work_without_duplicates() {
    let up = crate::upstream::Upstream::start().await;
    let subscribers = 40;
    let (db, dir) = seeded_for_send(&up, subscribers).await;
    let smtp = SmtpServer::start().await;
    smtp.set_mode(crate::smtp::Mode::Delay(50));
    let smtp_url = smtp.url();
    let env = send_env(&db, &smtp_url);
    let a = paperboy(&dir, &env)
        .args(["send", "--date", "2025-11-06"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let b = paperboy(&dir, &env)
        .args(["send", "--date", "2025-11-06"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let sent = |out: &std::process::Output| -> usize {
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        line.split("sent ").nth(1).unwrap().split(',').next().unwrap().parse().unwrap()
    };
    assert_eq!(sent(&a) + sent(&b), subscribers, "together they sent each digest once");
    let all = recipients(&smtp);
    let unique: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (subscribers, subscribers), "no duplicates");
}

#[tokio::test]
async fn admin_add_reads_the_password_from_stdin_and_stores_an_argon2id_hash() {
    use std::io::Write;
    let db = TestDb::new();
    let dir = scratch_dir();
    let run = |password: &str| {
        let mut child = paperboy(&dir, &[("DATABASE_URL", db.url.as_str()), ("RUST_LOG", "warn")])
            .args(["admin", "add", "Ops@Paperboy.test"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("a long enough password\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin"));
    let out = run("another long password\n");
    assert!(String::from_utf8_lossy(&out.stdout).contains("updated the password"));
    let out = run("short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));

    // One operator, by their address as typed in any case, with the second password.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (_, hash) = paperboy::store::admins::credentials(&pool, "ops@paperboy.test")
        .await
        .unwrap()
        .expect("the operator, found by the lower-cased address");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("another long password"));
    use argon2::PasswordVerifier;
    let parsed = argon2::PasswordHash::new(&hash).unwrap();
    let verify =
        |password: &str| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed);
    assert!(verify("another long password").is_ok(), "the updated password");
    assert!(verify("a long enough password").is_err(), "not the first one");
    pool.close().await;
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let db = TestDb::new();
    let dir = scratch_dir();
    let out = paperboy(
        &dir,
        &[("DATABASE_URL", db.url.as_str()), ("PAPERBOY_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
    )
    .arg("migrate")
    .output()
    .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!lines.is_empty(), "creating the database is logged");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some() && v.get("timestamp").is_some(), "{line}");
    }
}

#[tokio::test]
async fn text_from_requests_cannot_forge_log_lines() {
    let db = TestDb::new();
    let dir = scratch_dir();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let env = [
        ("DATABASE_URL", db.url.as_str()),
        ("PAPERBOY_BIND", bind.as_str()),
        ("PAPERBOY_SCHEDULER", "off"),
        ("PAPERBOY_ADMIN_EMAIL", ADMIN_EMAIL),
        ("PAPERBOY_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ("NO_COLOR", "1"),
        ("RUST_LOG", "info"),
    ];
    let app = Running::start(paperboy(&dir, &env), port).await;
    let client = reqwest::Client::new();
    let (cookie, csrf) = login_form(&client, &app.base).await;
    let csrf = csrf.as_str();
    // A failed sign-in logs the address's domain: here one that carries a fake log line.
    let forged = "x@evil.example\n2026-01-01T00:00:00Z  INFO paperboy: admin signed in admin_id=1";
    let res = client
        .post(format!("{}/admin/login", app.base))
        .header("cookie", cookie)
        .form(&[("email", forged), ("password", "wrong password"), ("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, log) = app.terminate();
    assert!(status.success());
    assert!(log.contains("admin sign-in failed"), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a request wrote a line of its own into the log:\n{log}"
    );
    assert!(log.contains("evil.example\\n2026"), "the newline is escaped: {log}");
}

#[tokio::test]
async fn the_generated_secret_lives_in_a_private_file_and_nothing_in_the_database_confirms() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new();
    let dir = scratch_dir();
    // The relay is down: the confirmation waits in the queue.
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let app =
        serve(&db, &dir, &[("PAPERBOY_SMTP_URL", &smtp_url), ("PAPERBOY_RETRY_BASE_MS", "200")])
            .await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/subscribe", app.base))
        .form(&[("email", "dump@example.com"), ("frequency", "daily")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let file = dir.join(".paperboy-secret");
    let mode = std::fs::metadata(&file).expect("the secret file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let in_db = paperboy::store::app_settings::legacy_secret(&pool).await.unwrap();
    assert_eq!(in_db, None, "the key is not in the database");
    // Raw SQL: what the queue keeps at rest is the point, and no interface shows it.
    let queued: Vec<String> = sqlx::query_scalar(
        "SELECT concat_ws(' ', notice::text, body_text, body_html) FROM outgoing_mail",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(queued.len(), 1);

    // The relay comes back: the email carries a link that works, and that link was nowhere
    // in the queue.
    let smtp = SmtpServer::start_on(port).await;
    let mail = smtp.wait_for_mail_to("dump@example.com", 1).await;
    let link = mail.link("/confirm/").expect("a confirmation link");
    let token = link.rsplit('/').next().unwrap().to_string();
    assert!(!queued[0].contains(&token), "the queue held the confirming token: {}", queued[0]);
    let page = client.post(format!("{}/confirm/{token}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let prefs = extract_path(&page.text().await.unwrap(), "/preferences/").unwrap();

    // An older version kept the key in the database: a fresh start without the file moves
    // it out once, and every link made with it keeps working.
    let key = std::fs::read_to_string(&file).unwrap().trim().to_string();
    let (status, _) = app.terminate();
    assert!(status.success());
    // Raw SQL: the database as an older version left it; no interface writes the key there.
    sqlx::query("INSERT INTO app_settings (key, value) VALUES ('secret', $1)")
        .bind(&key)
        .execute(&pool)
        .await
        .unwrap();
    let elsewhere = scratch_dir();
    let app = serve(&db, &elsewhere, &[("PAPERBOY_SMTP_URL", &smtp.url())]).await;
    let moved = elsewhere.join(".paperboy-secret");
    assert_eq!(std::fs::read_to_string(&moved).unwrap().trim(), key);
    assert_eq!(std::fs::metadata(&moved).unwrap().permissions().mode() & 0o777, 0o600);
    let in_db = paperboy::store::app_settings::legacy_secret(&pool).await.unwrap();
    assert_eq!(in_db, None, "the moved key is deleted from the database");
    let page = client.get(format!("{}{prefs}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200, "a link made with the moved key still opens");
    let (status, _) = app.terminate();
    assert!(status.success());
    pool.close().await;
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(elsewhere);
}
