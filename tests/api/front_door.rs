//! The front door: what a client can make the server hold (sockets, metric series), who
//! may read `/metrics`, the container health check and settings refused at start.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::binary::{Running, free_port, paperboy, scratch_dir};
use crate::helpers::{TestApp, TestDb, spawn_app, spawn_app_with};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: paperboy.test\r\n\r\n";

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://")).await.expect("connect")
}

/// Reads one response from a keep-alive connection: its status, or `None` when the
/// server closed the connection first.
async fn response(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            return head.split(' ').nth(1)?.parse().ok();
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Waits until the server closes the connection (whatever it says before).
async fn closed<R: AsyncRead + Unpin>(stream: &mut R) {
    let mut chunk = [0u8; 1024];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            return;
        }
    }
}

// --- /metrics ---------------------------------------------------------------------------

#[tokio::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    // A long, made-up method per request: each used to become a series kept forever.
    let invented = |i: usize| format!("INVENTED{i}{}", "X".repeat(2000));
    let send = |i: usize| {
        let method = reqwest::Method::from_bytes(invented(i).as_bytes()).unwrap();
        app.client.request(method, format!("{}/healthz", app.address)).send()
    };
    assert_eq!(send(0).await.unwrap().status(), 405);
    app.get_page("/metrics").await;
    let after_one = app.get_page("/metrics").await;
    for i in 1..200 {
        assert_eq!(send(i).await.unwrap().status(), 405);
    }
    let after_200 = app.get_page("/metrics").await;

    assert!(!after_200.contains("INVENTED"), "a raw method became a label");
    assert!(
        after_200.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains(r#"method="OTHER""#)
            && l.contains(r#"route="/healthz""#)),
        "{after_200}"
    );
    // Unbounded, this grew by megabytes; allow for series other tests add meanwhile
    // (the recorder is process-wide).
    assert!(
        after_200.len() < after_one.len() + 32 * 1024,
        "/metrics grew from {} to {} bytes",
        after_one.len(),
        after_200.len()
    );
}

#[tokio::test]
async fn with_a_metrics_token_only_its_bearer_may_scrape() {
    let app = spawn_app_with(&[("PAPERBOY_METRICS_TOKEN", "scrape-secret-1")]).await;
    let url = format!("{}/metrics", app.address);

    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401, "no token");
    assert!(res.headers().get("www-authenticate").is_some());
    for wrong in
        ["Bearer nope", "Bearer scrape-secret-12", "Bearer scrape-secret-", "scrape-secret-1"]
    {
        let res = app.client.get(&url).header("authorization", wrong).send().await.unwrap();
        assert_eq!(res.status(), 401, "{wrong}");
    }
    let res = app.client.get(&url).bearer_auth("scrape-secret-1").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("http_requests_total"));
    // The scheme is case-insensitive (RFC 9110).
    let res = app.client.get(&url).header("authorization", "bearer scrape-secret-1").send().await;
    assert_eq!(res.unwrap().status(), 200);
}

#[tokio::test]
async fn without_a_metrics_token_metrics_are_open() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    assert!(app.get_page("/metrics").await.contains("http_requests_total"));
}

// --- timeouts and the connection cap -----------------------------------------------------

#[tokio::test]
async fn half_a_request_line_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(&[
        ("PAPERBOY_HEADER_TIMEOUT_SECS", "1"),
        ("PAPERBOY_IDLE_TIMEOUT_SECS", "30"),
    ])
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /heal").await.unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(6), closed(&mut stream))
        .await
        .expect("the server keeps a half-sent request open");
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_steadily_dribbled_head_is_still_cut_off() {
    let app = spawn_app_with(&[
        ("PAPERBOY_HEADER_TIMEOUT_SECS", "2"),
        ("PAPERBOY_IDLE_TIMEOUT_SECS", "30"),
    ])
    .await;
    let (mut read, mut write) = connect(&app).await.into_split();
    // A header line every 200 ms: never idle, never done. (The pause is the slow client
    // this test plays, not a wait for the server.)
    let dribble = tokio::spawn(async move {
        write.write_all(b"GET /healthz HTTP/1.1\r\n").await?;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            write.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).await?;
        }
        Ok::<(), std::io::Error>(())
    });
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(8), closed(&mut read))
        .await
        .expect("a dribbled head keeps the connection forever");
    assert!(started.elapsed() >= Duration::from_millis(1800), "{:?}", started.elapsed());
    dribble.abort();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn_app_with(&[
        ("PAPERBOY_HEADER_TIMEOUT_SECS", "1"),
        ("PAPERBOY_IDLE_TIMEOUT_SECS", "4"),
    ])
    .await;
    let mut stream = connect(&app).await;
    // Quiet for longer than the header timeout: a connection opened ahead of time is
    // idle, not a slow head. (The pauses are the scenario: the timeout must elapse.)
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(response(&mut stream).await, Some(200));
    // The same between keep-alive requests.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(HEALTHZ).await.unwrap();
    assert_eq!(response(&mut stream).await, Some(200));

    let idle_since = Instant::now();
    let early = tokio::time::timeout(Duration::from_millis(2500), closed(&mut stream)).await;
    assert!(early.is_err(), "closed after {:?}, before the idle timeout", idle_since.elapsed());
    tokio::time::timeout(Duration::from_secs(5), closed(&mut stream))
        .await
        .expect("an idle keep-alive connection stays open");
    assert!(idle_since.elapsed() < Duration::from_secs(7));
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(&[("PAPERBOY_MAX_CONNECTIONS", "2")]).await;
    // Two connections held open (keep-alive, served once so the server has taken them).
    let mut first = connect(&app).await;
    let mut second = connect(&app).await;
    for stream in [&mut first, &mut second] {
        stream.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(stream).await, Some(200));
    }
    // The third waits in the listen queue: no answer...
    let mut third = connect(&app).await;
    third.write_all(HEALTHZ).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(1500), response(&mut third)).await;
    assert!(waited.is_err(), "a connection over the cap was served: {waited:?}");
    // ...while the connections within the cap are served as usual...
    second.write_all(HEALTHZ).await.unwrap();
    assert_eq!(response(&mut second).await, Some(200));
    // ...and its turn comes when one of them closes.
    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(5), response(&mut third)).await;
    assert_eq!(served.expect("served once a slot is free"), Some(200));
}

#[tokio::test]
async fn a_graceful_stop_lets_the_request_in_flight_finish() {
    let mut app = spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut idle = connect(&app).await;
    idle.write_all(HEALTHZ).await.unwrap();
    assert_eq!(response(&mut idle).await, Some(200));
    // A sign-up whose body is still on its way when the stop comes.
    let body = "email=inflight%40example.com&topics=diffusion&frequency=daily&website=";
    let (first, rest) = body.split_at(20);
    let mut busy = connect(&app).await;
    // Expecting 100-continue, so the server says when the handler starts reading the body.
    let head = format!(
        "POST /subscribe HTTP/1.1\r\nHost: paperboy.test\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n{first}",
        body.len()
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    // The request is in flight: its handler waits for the rest of the body.
    assert_eq!(response(&mut busy).await, Some(100));

    // Both run at once: the stop begins (the shutdown is cancelled) on its first poll.
    let client = async {
        // The idle keep-alive connection was closed at once.
        tokio::time::timeout(Duration::from_millis(600), closed(&mut idle))
            .await
            .expect("an idle connection outlives the stop");
        busy.write_all(rest.as_bytes()).await.unwrap();
        let status = response(&mut busy).await;
        tokio::time::timeout(Duration::from_secs(2), closed(&mut busy))
            .await
            .expect("the connection closes after its last response");
        status
    };
    let (status, ()) = tokio::join!(client, app.stop());
    assert_eq!(status, Some(200), "the request in flight was cut off");
    assert!(TcpStream::connect(&address).await.is_err(), "still accepting after the stop");
}

// --- the real binary: health check and settings -------------------------------------------

/// Runs `paperboy healthcheck` against `bind`; exit success, stdout, stderr.
fn healthcheck(dir: &PathBuf, bind: &str) -> (bool, String, String) {
    let out = paperboy(dir, &[("PAPERBOY_BIND", bind)]).arg("healthcheck").output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn healthcheck_exits_zero_when_the_server_answers() {
    let db = TestDb::new();
    let dir = scratch_dir();
    let port = free_port();
    // Listening on every address, as in the container: the check asks loopback.
    let bind = format!("0.0.0.0:{port}");
    let cmd = paperboy(
        &dir,
        &[("DATABASE_URL", &db.url), ("PAPERBOY_BIND", &bind), ("PAPERBOY_SCHEDULER", "off")],
    );
    let server = Running::start(cmd, port).await;
    let (ok, stdout, stderr) = healthcheck(&dir, &bind);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), format!("healthy: http://127.0.0.1:{port}/healthz"));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn healthcheck_fails_with_a_one_line_reason_when_nothing_listens() {
    let dir = scratch_dir();
    let bind = format!("127.0.0.1:{}", free_port());
    let (ok, _, stderr) = healthcheck(&dir, &bind);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unhealthy") && stderr.contains(&bind), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn healthcheck_fails_on_an_error_status_or_no_answer() {
    let dir = scratch_dir();
    // Answers 503 to one request.
    let sick = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = sick.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = sick.accept().unwrap();
        let _ = s.read(&mut [0u8; 1024]);
        let _ = s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    });
    let (ok, _, stderr) = healthcheck(&dir, &bind);
    assert!(!ok);
    assert!(stderr.contains("503"), "{stderr}");

    // Takes the connection (the kernel does) but never answers.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = mute.local_addr().unwrap().to_string();
    let started = Instant::now();
    let (ok, _, stderr) = healthcheck(&dir, &bind);
    assert!(!ok);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(stderr.contains("no answer"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    drop(mute);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_bad_url_setting_exits_non_zero_naming_the_variable() {
    let dir = scratch_dir();
    // Were the settings accepted, the unreachable database would be the complaint.
    let database = format!("postgres://postgres@127.0.0.1:{}/paperboy", free_port());
    for (var, value) in [
        ("PAPERBOY_HF_URL", "mailto:papers@example.com"),
        ("PAPERBOY_ARXIV_URL", "data:text/plain,feed"),
        ("PAPERBOY_BASE_URL", "ftp://paperboy.example"),
        ("PAPERBOY_SMTP_URL", "https://mail.example"),
        ("PAPERBOY_SMTP_URL", "smtp://ann:hunter2@mail.example:587"),
    ] {
        let out = paperboy(&dir, &[("DATABASE_URL", &database), (var, value)])
            .arg("migrate")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(var), "{var}={value}: {err}");
        assert!(!err.contains("hunter2"), "a password in the output: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
