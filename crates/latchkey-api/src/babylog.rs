//! BabyLog, the offline-first reference app (`web/apps/babylog`), served at `/`. Its built
//! files are embedded in the binary, so `latchkey serve` needs no npm step; the test command
//! checks that this build matches a fresh build of the sources.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

macro_rules! asset {
    ($file:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/apps/babylog/dist/", $file))
    };
}

static INDEX: &[u8] = asset!("index.html");
static APP_JS: &[u8] = asset!("app.js");
static STYLES: &[u8] = asset!("styles.css");
static MANIFEST: &[u8] = asset!("manifest.webmanifest");
static ICON: &[u8] = asset!("icon.svg");
static SERVICE_WORKER: &[u8] = asset!("sw.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { file(INDEX, "text/html; charset=utf-8") }))
        .route("/babylog/app.js", get(|| async { file(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/babylog/styles.css", get(|| async { file(STYLES, "text/css; charset=utf-8") }))
        .route("/babylog/manifest.webmanifest", get(|| async { file(MANIFEST, "application/manifest+json") }))
        .route("/babylog/icon.svg", get(|| async { file(ICON, "image/svg+xml") }))
        .route("/sw.js", get(|| async { file(SERVICE_WORKER, "text/javascript; charset=utf-8") }))
}

/// One embedded file. `no-cache` makes the browser revalidate, so a new binary's app is picked
/// up on the next online visit; offline, the service worker answers from its cache.
fn file(body: &'static [u8], content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_page_loads_the_embedded_script_and_styles() {
        let page = std::str::from_utf8(INDEX).unwrap_or_default();
        assert!(page.contains("/babylog/app.js") && page.contains("/babylog/styles.css"), "{page}");
        assert!(!APP_JS.is_empty() && !SERVICE_WORKER.is_empty() && !MANIFEST.is_empty());
    }
}
