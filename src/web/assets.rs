//! The one stylesheet, compiled into the binary.

use axum::http::header;
use axum::response::IntoResponse;

const STYLE: &str = include_str!("../../static/style.css");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
}

/// The logo as the site's icon (also at `/favicon.ico`, which browsers ask for unprompted).
const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 26 26"><rect x="1" y="3" width="24" height="20" rx="3" fill="#3b5bdb"/><rect x="5" y="7" width="8" height="6" rx="1" fill="#fff"/><rect x="15" y="7" width="6" height="2" fill="#fff"/><rect x="15" y="11" width="6" height="2" fill="#fff"/><rect x="5" y="16" width="16" height="2" fill="#fff"/></svg>"##;

pub async fn icon() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
        ICON,
    )
}

/// Public pages may be indexed; pages reached through a token never (they are also
/// `noindex` themselves, for crawlers that ignore this file).
const ROBOTS: &str = "User-agent: *
Disallow: /confirm/
Disallow: /preferences/
Disallow: /unsubscribe/
Disallow: /resubscribe/
Disallow: /rate/
Disallow: /d/
Disallow: /feed/
Disallow: /admin
Allow: /
";

pub async fn robots() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ROBOTS,
    )
}
