//! Postgres restarting under a running `paperboy serve`: `/readyz` follows the database,
//! and sign-ups and their mail work again afterwards without restarting paperboy.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::binary::{free_port, paperboy};
use crate::helpers::{wait_for, wait_for_empty_mail_queue};
use crate::smtp::SmtpServer;

/// The `bin` dir of the newest PostgreSQL under /usr/lib/postgresql (Debian's layout).
fn pg_bin() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, dir)| dir.join("bin/initdb").exists() && dir.join("bin/pg_ctl").exists())
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, dir)) => dir.join("bin"),
        None => panic!(
            "this test needs the PostgreSQL server binaries (initdb, pg_ctl) under \
             {}/<version>/bin; install them (Debian: apt-get install postgresql)",
            root.display()
        ),
    }
}

/// A throwaway cluster in its own temp dir, on 127.0.0.1 and a free port. Dropping it
/// stops the server at once and removes the dir, also when an assertion failed.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// initdb refuses to run as root: as root, the binaries run as the `postgres` user.
    as_postgres: bool,
}

impl Cluster {
    fn init() -> Self {
        let bin = pg_bin();
        let dir = std::env::temp_dir()
            .join(format!("paperboy-pg-restart-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // The owner of /proc/self is this process's effective user.
        let as_postgres = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let cluster = Self { bin, dir, port: free_port(), as_postgres };
        if as_postgres {
            let ok = Command::new("chown").arg("postgres").arg(&cluster.dir).status().unwrap();
            assert!(ok.success(), "chown postgres {}", cluster.dir.display());
        }
        let data = cluster.data();
        cluster.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // Our own cwd may not be readable by the postgres user.
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        cmd
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program, args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("postgres.log").display().to_string();
        self.run(
            "pg_ctl",
            &["start", "-D", &self.data(), "-l", &log, "-w", "-t", "60", "-o", &opts],
        );
    }

    /// A fast shutdown: open sessions are cut off, as in a real restart.
    fn stop(&self) {
        self.run("pg_ctl", &["stop", "-D", &self.data(), "-m", "fast", "-w"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.command("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `paperboy serve`, its stderr in a file; killed when dropped (the log is printed first
/// if the test is failing).
struct Paperboy {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Paperboy {
    async fn serve(dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = dir.join("paperboy.log");
        let mut cmd = paperboy(&dir.to_path_buf(), env);
        cmd.env("PAPERBOY_BIND", format!("127.0.0.1:{port}"));
        // Plain text: the log is printed when the test fails.
        cmd.env("NO_COLOR", "1");
        let child = cmd
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("spawn paperboy");
        let app = Self { child, base: format!("http://127.0.0.1:{port}"), log };
        app.wait_until_ready().await;
        app
    }

    async fn wait_until_ready(&self) {
        readyz_becomes(&client(), &self.base, 200, Duration::from_secs(60)).await;
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Paperboy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- paperboy stderr ---\n{log}--- end ---");
        }
    }
}

/// Every request has a deadline: a hang fails the test instead of blocking it. The pool
/// may spend up to its acquire timeout (10 s) finding out that Postgres is gone.
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

async fn sign_up(client: &reqwest::Client, base: &str, email: &str) -> reqwest::Response {
    client
        .post(format!("{base}/subscribe"))
        .form(&[("email", email), ("topics", "diffusion"), ("frequency", "daily"), ("website", "")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("sign-up of {email} got no answer: {e}"))
}

/// Polls `/readyz` until it answers `status`.
async fn readyz_becomes(client: &reqwest::Client, base: &str, status: u16, within: Duration) {
    wait_for(&format!("/readyz answers {status}"), within, || async {
        let got = client.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16());
        if got.as_ref().is_ok_and(|s| *s == status) { Ok(()) } else { Err(format!("{got:?}")) }
    })
    .await;
}

// pg_ctl blocks its thread; the SMTP capture server keeps running on the other one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_makes_paperboy_unready_and_then_work_again_without_a_restart() {
    let cluster = Cluster::init();
    let smtp = SmtpServer::start().await;
    let (db_url, smtp_url) = (cluster.url("paperboy"), smtp.url());
    // Declared after the cluster, so it is killed before the cluster is removed.
    let mut app = Paperboy::serve(
        &cluster.dir,
        &[
            ("DATABASE_URL", &db_url),
            ("PAPERBOY_SMTP_URL", &smtp_url),
            ("PAPERBOY_SCHEDULER", "off"),
            ("PAPERBOY_BASE_URL", "http://paperboy.test"),
            ("PAPERBOY_RETRY_BASE_MS", "200"),
        ],
    )
    .await;
    let client = client();
    let base = app.base.clone();

    assert_eq!(sign_up(&client, &base, "before@example.com").await.status(), 200);
    smtp.wait_for_mail_to("before@example.com", 1).await;

    cluster.stop();
    let down = Instant::now();
    readyz_becomes(&client, &base, 503, Duration::from_secs(30)).await;
    eprintln!("/readyz answered 503 {:?} after the stop", down.elapsed());
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "liveness does not depend on the database");
    // A sign-up now fails with the error page, in bounded time, and nothing is kept.
    let res = sign_up(&client, &base, "during@example.com").await;
    assert!(res.status().is_server_error(), "sign-up while Postgres is down: {}", res.status());
    assert!(res.text().await.unwrap().contains("Something went wrong"));
    assert!(app.is_running(), "paperboy survived the outage");

    cluster.start();
    let up = Instant::now();
    readyz_becomes(&client, &base, 200, Duration::from_secs(30)).await;
    eprintln!("/readyz answered 200 {:?} after the start", up.elapsed());
    assert_eq!(sign_up(&client, &base, "after@example.com").await.status(), 200);
    smtp.wait_for_mail_to("after@example.com", 1).await;
    // A duplicate would be a queued message sent again (one whose "sent" mark the restart
    // lost): with none left pending, every send that will happen has happened.
    let db = sqlx::PgPool::connect(&db_url).await.unwrap();
    wait_for_empty_mail_queue(&db).await;
    db.close().await;
    assert_eq!(
        smtp.messages_to("after@example.com").len(),
        1,
        "the new confirmation went out once"
    );
    assert_eq!(smtp.messages_to("before@example.com").len(), 1, "the old one was not sent again");
    assert_eq!(smtp.messages_to("during@example.com").len(), 0, "a failed sign-up sends nothing");
    assert!(app.is_running(), "still the same paperboy process");
}
