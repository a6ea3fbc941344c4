//! The portal's static files, embedded in the binary. Each is served under a name that holds
//! a digest of its content, so it can be cached for a year and a new build is still fetched.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

/// One embedded file: its name without the digest, its type and its bytes.
pub struct Asset {
    stem: &'static str,
    extension: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// htmx 2 from the npm package `htmx.org`, unmodified but for its licence line.
pub static HTMX: Asset = Asset {
    stem: "htmx",
    extension: "min.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../../static/htmx.min.js"),
};

pub static CSS: Asset = Asset {
    stem: "portal",
    extension: "css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("../../static/portal.css"),
};

static ALL: [&Asset; 2] = [&HTMX, &CSS];

/// `stem-<12 hex of SHA-256>.extension`, computed once.
static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ALL.iter()
        .map(|a| {
            let digest = crate::auth::sha256_hex(a.body);
            format!("{}-{}.{}", a.stem, &digest[..12], a.extension)
        })
        .collect()
});

impl Asset {
    /// The path pages link to.
    pub fn url(&'static self) -> String {
        let i = ALL.iter().position(|a| std::ptr::eq(*a, self)).unwrap_or(0);
        format!("/static/{}", NAMES[i])
    }
}

pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(i) = NAMES.iter().position(|n| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let a = ALL[i];
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
    ];
    (headers, a.body).into_response()
}
