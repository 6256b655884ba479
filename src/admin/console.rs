//! The admin web console: static files from the top-level `admin/` folder,
//! embedded in the binary so it works offline and needs no build step.
//!
//! Served at `/` on the admin listener and at `/admin/` on the main port.
//! `ADMIN_CONSOLE_DIR` serves the files from disk instead — for people who
//! customise the console, and for working on it without rebuilding.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

/// (name, content type, bytes)
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../../admin/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../admin/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../admin/style.css"),
    ),
];

/// The console page (on the admin listener).
#[utoipa::path(get, path = "/", tag = "console", responses(
    (status = 200, description = "The console's HTML page", body = String, content_type = "text/html"),
))]
pub async fn index() -> Response {
    serve("index.html")
}

/// The console page (on the main port).
#[utoipa::path(get, path = "/admin/", tag = "console", responses(
    (status = 200, description = "The console's HTML page", body = String, content_type = "text/html"),
))]
pub async fn admin_index() -> Response {
    serve("index.html")
}

/// A console file (`index.html`, `app.js`, `style.css`), on the main port.
#[utoipa::path(get, path = "/admin/{file}", tag = "console",
    params(("file" = String, Path, description = "`index.html`, `app.js` or `style.css`")),
    responses(
        (status = 200, description = "The file", body = String, content_type = "text/html"),
        (status = 404, description = "No such console file", body = super::bodies::ErrorBody),
    ),
)]
pub async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

/// A console file (`index.html`, `app.js`, `style.css`), on the admin listener.
#[utoipa::path(get, path = "/{file}", tag = "console",
    params(("file" = String, Path, description = "`index.html`, `app.js` or `style.css`")),
    responses(
        (status = 200, description = "The file", body = String, content_type = "text/html"),
        (status = 404, description = "No such console file", body = super::bodies::ErrorBody),
    ),
)]
pub async fn root_file(Path(name): Path<String>) -> Response {
    serve(&name)
}

/// `/admin` without the slash: the page's relative asset links need it.
#[utoipa::path(get, path = "/admin", tag = "console", responses(
    (status = 308, description = "To `/admin/`", headers(("location" = String, description = "/admin/"))),
))]
pub async fn redirect() -> Redirect {
    Redirect::permanent("/admin/")
}

/// `dir/name`, if it is a regular file whose real path is inside the real
/// path of `dir`.
fn read_inside(dir: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let root = std::fs::canonicalize(dir).ok()?;
    let path = std::fs::canonicalize(root.join(name)).ok()?;
    if !path.starts_with(&root) {
        tracing::warn!(file = name, "ADMIN_CONSOLE_DIR: the console file leads outside the directory; serving the built-in one");
        return None;
    }
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    std::fs::read(&path).ok()
}

fn serve(name: &str) -> Response {
    let name = if name.is_empty() { "index.html" } else { name };
    let Some((_, mime, embedded)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such console file").into_response();
    };
    // Only names from the fixed list are ever read from disk, and only
    // when the file resolves (symlinks followed) to a place inside the
    // directory: a link named `app.js` pointing elsewhere is not served.
    let body = match std::env::var_os("ADMIN_CONSOLE_DIR") {
        Some(dir) if !dir.is_empty() => match read_inside(std::path::Path::new(&dir), name) {
            Some(b) => b,
            None => embedded.to_vec(),
        },
        _ => embedded.to_vec(),
    };
    (
        [
            (header::CONTENT_TYPE, *mime),
            // The page holds no secret (the token lives in the browser's
            // session storage); no-cache so an upgrade shows at once.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
