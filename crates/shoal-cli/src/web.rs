//! The HTTP service for everything outside `/socket.io/`: the demo's static files and
//! `/health`.
//!
//! Routes (GET and HEAD):
//! - `/` and `/index.html`: `<demo dir>/index.html`;
//! - `/socket.io.min.js` and `/socket.io.min.js.map`: from
//!   `<demo dir>/node_modules/socket.io-client/dist/`;
//! - `/health`: `200 {"status":"ok","node":ID,"connections":N,"forwarded":F}`, or `503
//!   {"status":"draining",…}` while the node drains (load
//!   balancers then stop sending it new clients).
//!
//! Anything else is 404. The file routes are a fixed table, so a request path never
//! becomes a file path; on top of that, a path with a `..` or hidden segment (also
//! percent-encoded), a backslash or a NUL is refused with 400 before routing.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

/// Where the socket.io-client bundle is, inside the demo directory.
pub(crate) const CLIENT_DIST: &str = "node_modules/socket.io-client/dist";

/// The files of the demo: request path, file path relative to the demo directory,
/// content type.
const FILES: [(&str, &str, &str); 4] = [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/index.html", "index.html", "text/html; charset=utf-8"),
    ("/socket.io.min.js", "node_modules/socket.io-client/dist/socket.io.min.js", "text/javascript; charset=utf-8"),
    ("/socket.io.min.js.map", "node_modules/socket.io-client/dist/socket.io.min.js.map", "application/json"),
];

/// What a request path maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/health`.
    Health,
    /// A file of the demo.
    File {
        /// Its path on disk.
        path: PathBuf,
        /// Its `Content-Type`.
        content_type: &'static str,
    },
    /// Nothing here.
    NotFound,
    /// A path that tries to leave the demo directory, or does not decode.
    BadPath,
}

/// Maps a request path to what serves it. `demo_dir` is `None` when the demo is off.
pub(crate) fn route(demo_dir: Option<&Path>, path: &str) -> Route {
    if !is_safe_path(path) {
        return Route::BadPath;
    }
    if path == "/health" {
        return Route::Health;
    }
    let Some(dir) = demo_dir else { return Route::NotFound };
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, file, content_type)) => Route::File { path: dir.join(file), content_type },
        None => Route::NotFound,
    }
}

/// False for paths that do not start with `/`, do not percent-decode to UTF-8, or have a
/// segment that is `.`, `..` or hidden (`.x`), or contains `\`, `:` or NUL.
pub(crate) fn is_safe_path(path: &str) -> bool {
    let Some(decoded) = percent_decode(path) else { return false };
    if !decoded.starts_with('/') {
        return false;
    }
    decoded.split('/').all(|seg| !seg.starts_with('.') && !seg.contains(['\\', ':', '\0']))
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Finds the demo's directory: `configured` if given, else the first `web/` holding an
/// `index.html` in the current directory, then next to the binary and in the binary's
/// parent directories (so `target/release/shoal` finds the repository's `web/`).
pub(crate) fn find_demo_dir(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = configured {
        return Some(dir.to_owned());
    }
    let mut candidates = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        candidates.push(cwd.join("web"));
    }
    if let Some(exe_dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_owned)) {
        candidates.extend(exe_dir.ancestors().take(4).map(|d| d.join("web")));
    }
    candidates.into_iter().find(|d| d.join("index.html").is_file())
}

/// What `/health` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    /// The node id.
    pub(crate) node: String,
    /// Open connections.
    pub(crate) connections: usize,
    /// True while draining (503).
    pub(crate) draining: bool,
    /// Requests forwarded to other nodes so far.
    pub(crate) forwarded: u64,
}

/// Reads the node's health, for `/health`.
pub(crate) type HealthFn = Arc<dyn Fn() -> Health + Send + Sync>;

struct Web {
    demo_dir: Option<PathBuf>,
    health: HealthFn,
}

/// The tower service of the non-Socket.IO paths. Cheap to clone.
#[derive(Clone)]
pub(crate) struct WebService(Arc<Web>);

impl fmt::Debug for WebService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebService").field("demo_dir", &self.0.demo_dir).finish_non_exhaustive()
    }
}

impl WebService {
    /// Serves the demo from `demo_dir` (`None`: no demo, only `/health`), and reports
    /// `health()` on `/health`.
    pub(crate) fn new(demo_dir: Option<PathBuf>, health: HealthFn) -> WebService {
        WebService(Arc::new(Web { demo_dir, health }))
    }
}

impl Web {
    async fn handle(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let route = route(self.demo_dir.as_deref(), path);
        match route {
            Route::BadPath => return text(StatusCode::BAD_REQUEST, "bad request path\n"),
            Route::NotFound => return text(StatusCode::NOT_FOUND, "not found\n"),
            Route::Health | Route::File { .. } => {}
        }
        if method != Method::GET && method != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match route {
            Route::Health => {
                let h = (self.health)();
                let (status, word) =
                    if h.draining { (StatusCode::SERVICE_UNAVAILABLE, "draining") } else { (StatusCode::OK, "ok") };
                let body = serde_json::json!({
                    "status": word,
                    "node": h.node,
                    "connections": h.connections,
                    "forwarded": h.forwarded,
                });
                let mut r = respond(status, "application/json", Bytes::from(body.to_string()));
                r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                r
            }
            Route::File { path, content_type } => match tokio::fs::read(&path).await {
                Ok(bytes) => {
                    let mut r = respond(StatusCode::OK, content_type, Bytes::from(bytes));
                    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                    r
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::debug!(path = %path.display(), "demo file missing");
                    let hint = if path.to_string_lossy().contains(CLIENT_DIST) {
                        "not found: the socket.io-client bundle is not installed (run `npm ci` in web/)\n"
                    } else {
                        "not found\n"
                    };
                    text(StatusCode::NOT_FOUND, hint)
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), cause = %e, "cannot read demo file");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read file\n")
                }
            },
            Route::NotFound | Route::BadPath => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", Bytes::from_static(body.as_bytes()))
}

impl<B> tower_service::Service<Request<B>> for WebService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // the body is never read: drop the request here, keep what routing needs
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let web = self.0.clone();
        Box::pin(async move { Ok(web.handle(&method, &path).await) })
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tower_service::Service;

    use super::*;

    #[test]
    fn routes() {
        let dir = Path::new("/srv/web");
        let file = |p: &str| route(Some(dir), p);
        assert_eq!(file("/"), Route::File { path: dir.join("index.html"), content_type: "text/html; charset=utf-8" });
        assert!(matches!(file("/index.html"), Route::File { path, .. } if path == dir.join("index.html")));
        assert!(matches!(file("/socket.io.min.js"),
            Route::File { path, .. } if path == dir.join(CLIENT_DIST).join("socket.io.min.js")));
        assert!(matches!(file("/socket.io.min.js.map"),
            Route::File { path, content_type: "application/json" }
                if path == dir.join(CLIENT_DIST).join("socket.io.min.js.map")));
        assert_eq!(file("/health"), Route::Health);
        for p in ["/nope", "/package.json", "/node_modules/socket.io-client/package.json", "/socket.io.js", "//"] {
            assert_eq!(file(p), Route::NotFound, "{p}");
        }
        // demo off: only /health
        assert_eq!(route(None, "/"), Route::NotFound);
        assert_eq!(route(None, "/socket.io.min.js"), Route::NotFound);
        assert_eq!(route(None, "/health"), Route::Health);
    }

    #[test]
    fn traversal_is_refused() {
        for p in [
            "/..",
            "/../Cargo.toml",
            "/../../etc/passwd",
            "/socket.io.min.js/../../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/%2E%2e/%2e%2e/etc/passwd",
            "/.%2e/secret",
            "/..%2fCargo.toml",
            "/%2e%2e%2fCargo.toml",
            "/..\\Cargo.toml",
            "/..%5cCargo.toml",
            "/.git/config",
            "/./index.html",
            "/C:/Windows",
            "/index.html%00",
            "/%zz",
            "/%",
            "/%ff",
            "index.html",
        ] {
            assert!(!is_safe_path(p), "{p} should be refused");
            assert_eq!(route(Some(Path::new("/srv/web")), p), Route::BadPath, "{p}");
        }
        for p in ["/", "/index.html", "/socket.io.min.js.map", "/a%20b", "/health"] {
            assert!(is_safe_path(p), "{p} should be accepted");
        }
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            let p = std::env::temp_dir().join(format!("shoal-cli-{tag}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    async fn get(svc: &mut WebService, method: Method, path: &str) -> (StatusCode, http::HeaderMap, Bytes) {
        let req = Request::builder().method(method).uri(path).body(()).unwrap();
        let resp = svc.call(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn serves_index_bundle_and_health_but_nothing_else() {
        let root = TempDir::new("web");
        let web = root.0.join("web");
        std::fs::create_dir_all(web.join(CLIENT_DIST)).unwrap();
        std::fs::write(web.join("index.html"), "<h1>chat</h1>").unwrap();
        std::fs::write(web.join(CLIENT_DIST).join("socket.io.min.js"), "/* io */").unwrap();
        std::fs::write(root.0.join("secret.txt"), "top secret").unwrap();
        std::fs::write(web.join(".env"), "TOKEN=1").unwrap();

        let mut svc = WebService::new(Some(web.clone()), health("ab12", 7, false));

        let (status, headers, body) = get(&mut svc, Method::GET, "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(body, "<h1>chat</h1>");

        let (status, headers, body) = get(&mut svc, Method::GET, "/socket.io.min.js").await;
        assert_eq!((status, body.as_ref()), (StatusCode::OK, b"/* io */".as_ref()));
        assert_eq!(headers[CONTENT_TYPE], "text/javascript; charset=utf-8");

        // the map is not there: 404 with a hint
        let (status, _, body) = get(&mut svc, Method::GET, "/socket.io.min.js.map").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(String::from_utf8_lossy(&body).contains("npm ci"));

        let (status, headers, body) = get(&mut svc, Method::GET, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json, serde_json::json!({"status": "ok", "node": "ab12", "connections": 7, "forwarded": 0}));

        for path in ["/../secret.txt", "/%2e%2e/secret.txt", "/socket.io.min.js/../../secret.txt", "/.env"] {
            let (status, _, body) = get(&mut svc, Method::GET, path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert!(!String::from_utf8_lossy(&body).contains("secret"), "{path}");
        }
        let (status, _, _) = get(&mut svc, Method::GET, "/secret.txt").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, headers, _) = get(&mut svc, Method::POST, "/").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[ALLOW], "GET, HEAD");
        let (status, _, _) = get(&mut svc, Method::HEAD, "/").await;
        assert_eq!(status, StatusCode::OK);
    }

    fn health(node: &str, connections: usize, draining: bool) -> HealthFn {
        let node = node.to_owned();
        Arc::new(move || Health { node: node.clone(), connections, draining, forwarded: 0 })
    }

    #[tokio::test]
    async fn without_demo_only_health() {
        let mut svc = WebService::new(None, health("ab12", 0, false));
        assert_eq!(get(&mut svc, Method::GET, "/").await.0, StatusCode::NOT_FOUND);
        let (status, _, body) = get(&mut svc, Method::GET, "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, r#"{"status":"ok","node":"ab12","connections":0,"forwarded":0}"#);
    }

    #[tokio::test]
    async fn health_is_503_while_draining() {
        let mut svc = WebService::new(None, health("ab12", 3, true));
        let (status, headers, body) = get(&mut svc, Method::GET, "/health").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(body, r#"{"status":"draining","node":"ab12","connections":3,"forwarded":0}"#);
    }

    #[test]
    fn configured_demo_dir_wins() {
        assert_eq!(find_demo_dir(Some(Path::new("/x/y"))), Some(PathBuf::from("/x/y")));
    }
}
