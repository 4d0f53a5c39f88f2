//! An in-process registry for faults a real one cannot produce: 5xx and 429 bursts, wrong
//! digests, oversized or garbage bodies, silence, and blob redirects to another host. It serves
//! Vector A (history-conversion.md §9) as `fault/app:v1` and requires Basic auth.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The served image.
pub const MANIFEST: &[u8] = include_bytes!("../fixtures/vectors/a.manifest.json");
/// Its config.
pub const CONFIG: &[u8] = super::images::VA;
const CONFIG_DIGEST: &str =
    "sha256:b22cf700653e5e384492b70daecce8b3f163036a35ac2aa58c775532812cd4ab";
/// The manifest's digest.
pub const MANIFEST_DIGEST: &str =
    "sha256:3d5ef317fb4ef071eebe08e1a58ffca6a4f1ab92fa7b98f97a2cf472659ddc2a";

/// What the server does wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Nothing: a well-behaved registry.
    None,
    /// The first `n` requests get this status (with `Retry-After: 1` for 429).
    Burst(u16, usize),
    /// Manifests carry a `Docker-Content-Digest` that does not match their bytes.
    WrongDigestHeader,
    /// The config blob's bytes are altered (same length).
    WrongBlob,
    /// Manifests are 5 MiB of padding.
    Oversize,
    /// Manifests are not JSON.
    Garbage,
    /// Manifest requests never answer.
    Silence,
    /// Blob requests redirect to this URL (another listener).
    RedirectBlobs(String),
    /// Manifests promise more bytes than they send, then the connection closes.
    Truncated,
    /// Manifest bodies trickle out one byte at a time, slower than any timeout.
    Drip,
    /// Blob requests redirect to themselves forever.
    RedirectLoop,
    /// The registry asks for Bearer tokens from `/token`, which answers garbage.
    TokenGarbage,
    /// The registry asks for Bearer tokens from `/token`, which answers 503.
    TokenDown,
}

/// Server state, inspected by tests.
pub struct FaultState {
    /// The current fault.
    pub fault: Mutex<Fault>,
    /// Requests seen.
    pub requests: AtomicUsize,
    /// `Authorization` header per request, in order.
    pub authorizations: Mutex<Vec<Option<String>>>,
    failed: AtomicUsize,
}

/// A running fault server; aborted on drop.
pub struct FaultServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// State.
    pub state: Arc<FaultState>,
    _app: super::App,
}

impl FaultServer {
    /// Starts with `fault`.
    pub async fn start(fault: Fault) -> FaultServer {
        let state = Arc::new(FaultState {
            fault: Mutex::new(fault),
            requests: AtomicUsize::new(0),
            authorizations: Mutex::new(Vec::new()),
            failed: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let app = super::App::serve(app).await;
        FaultServer {
            url: app.url.clone(),
            state,
            _app: app,
        }
    }

    /// The `Authorization` values seen so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.state.authorizations.lock().unwrap().clone()
    }
}

async fn handle(
    State(state): State<Arc<FaultState>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.authorizations.lock().unwrap().push(auth.clone());
    let path = req.uri().path().to_owned();
    let fault = state.fault.lock().unwrap().clone();
    // The second listener of a redirect test serves the config to anyone.
    if path == "/storage/config" {
        return (StatusCode::OK, CONFIG.to_vec()).into_response();
    }
    if path == "/token" {
        return match fault {
            Fault::TokenDown => (StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
            _ => (
                StatusCode::OK,
                [("content-type", "application/json")],
                "<html>not a token</html>",
            )
                .into_response(),
        };
    }
    if matches!(fault, Fault::TokenGarbage | Fault::TokenDown) {
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_owned();
        let challenge = format!(r#"Bearer realm="http://{host}/token",service="fault""#);
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            "",
        )
            .into_response();
    }
    if auth.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", r#"Basic realm="fault""#)],
            "",
        )
            .into_response();
    }
    if let Fault::Burst(status, n) = fault {
        if state.failed.fetch_add(1, Ordering::SeqCst) < n {
            let mut resp = (
                StatusCode::from_u16(status).unwrap(),
                r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#,
            )
                .into_response();
            if status == 429 {
                resp.headers_mut()
                    .insert("retry-after", "1".parse().unwrap());
            }
            return resp;
        }
    }
    if path.starts_with("/v2/fault/app/manifests/") {
        return match fault {
            Fault::Silence => std::future::pending().await,
            Fault::Oversize => manifest_response(vec![b' '; 5 * 1024 * 1024], MANIFEST_DIGEST),
            Fault::Garbage => manifest_response(b"<html>gateway</html>".to_vec(), MANIFEST_DIGEST),
            Fault::WrongDigestHeader => manifest_response(MANIFEST.to_vec(), CONFIG_DIGEST),
            Fault::Truncated => {
                // A chunked body that breaks off after 100 bytes: the connection is cut.
                let (tx, mut rx) = tokio::sync::mpsc::channel(2);
                let _ = tx.try_send(Ok(MANIFEST[..100].to_vec()));
                // The cut comes after the head and the first bytes are on the wire.
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                });
                let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
                let mut r = Response::new(Body::from_stream(stream));
                r.headers_mut()
                    .insert("content-type", SCHEMA2.parse().unwrap());
                r
            }
            Fault::Drip => {
                let mut r = Response::new(Body::from_stream(drip()));
                r.headers_mut()
                    .insert("content-type", SCHEMA2.parse().unwrap());
                r
            }
            _ => manifest_response(MANIFEST.to_vec(), MANIFEST_DIGEST),
        };
    }
    if path == format!("/v2/fault/app/blobs/{CONFIG_DIGEST}") {
        return match fault {
            Fault::RedirectBlobs(to) => {
                (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "").into_response()
            }
            Fault::RedirectLoop => (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", path.clone())],
                "",
            )
                .into_response(),
            Fault::WrongBlob => {
                let mut altered = CONFIG.to_vec();
                altered[10] ^= 1;
                (StatusCode::OK, altered).into_response()
            }
            _ => (StatusCode::OK, CONFIG.to_vec()).into_response(),
        };
    }
    (
        StatusCode::NOT_FOUND,
        r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
    )
        .into_response()
}

const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// One byte of the manifest every 200 ms: a slow drip no sane timeout waits for.
fn drip() -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    tokio::spawn(async move {
        for b in MANIFEST {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if tx.send(Ok(vec![*b])).await.is_err() {
                return;
            }
        }
    });
    let mut rx = rx;
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn manifest_response(body: Vec<u8>, digest: &str) -> Response {
    Response::builder()
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .header("docker-content-digest", digest)
        .body(Body::from(body))
        .unwrap()
}
