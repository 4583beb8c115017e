//! The web UI: static files from `ui/`, compiled into the binary, served at `/` and `/static/`.
//! The pages read and write through the same REST API as every client; nothing here touches
//! the store. A strict Content-Security-Policy lets the pages load only this server's own
//! scripts, styles and images.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::routes::{Method, Permission, RouteTable};

/// Each file: its name under `/static/`, its content type and its text.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../../ui/app.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("../../../ui/chart.js")),
    ("theme.js", "text/javascript; charset=utf-8", include_str!("../../../ui/theme.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("../../../ui/app.css")),
];

const INDEX: &str = include_str!("../../../ui/index.html");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(crate) fn routes(t: RouteTable) -> RouteTable {
    t.route(Method::Get, "/", Permission::Public, index).route(Method::Get, "/static/{file}", Permission::Public, file)
}

fn respond(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => respond(content_type, body),
        None => (StatusCode::NOT_FOUND, "No such file").into_response(),
    }
}
