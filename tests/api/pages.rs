//! What every visitor sees: the landing page, security headers, health, errors.

use crate::helpers::{app_with_papers, snapshot_settings, spawn_app};

#[tokio::test]
async fn landing_page_has_the_subscribe_form_and_strict_security_headers() {
    let (app, _up) = app_with_papers(&[]).await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"), "no inline script or style may be allowed");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let body = res.text().await.unwrap();
    // A short title, the subscribe form (email, topics, categories, frequency, the hidden
    // honeypot field), and the latest day's papers, most upvoted first.
    let _snapshots = snapshot_settings().bind_to_scope();
    insta::assert_snapshot!("landing_page", body);
    assert!(!body.contains("<script"), "pages carry no script");
    assert!(!body.contains("style=\""), "pages carry no inline style");

    let css = app.get("/static/style.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn readiness_fails_when_the_database_goes_away() {
    let app = spawn_app().await;
    app.db.close().await;
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn unknown_pages_get_a_friendly_404() {
    let app = spawn_app().await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app().await;
    let huge = "a".repeat(70 * 1024);
    let res = app.post_form("/subscribe", &[("email", "ann@example.com"), ("topics", &huge)]).await;
    assert_eq!(res.status(), 413);
    assert!(app.subscribers().await.is_empty(), "nothing is stored");
}

#[tokio::test]
async fn a_body_that_is_not_a_form_gets_a_400_page() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/subscribe", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=%ZZ&&=")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "got {}", res.status());
    assert_ne!(res.status(), 500);
}
