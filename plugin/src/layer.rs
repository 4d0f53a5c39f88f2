//! [`RestLayer`]: answers the REST routes by calling the JSON-RPC service it wraps.
//!
//! One port serves everything: `POST /` and WebSocket upgrades pass through to jsonrpsee
//! untouched; a path that matches [`crate::routes`] is rewritten into a JSON-RPC request, sent to
//! the inner service, and its (bounded) response rendered: the result's raw bytes on success, a
//! JSON error with the status from [`crate::codes`] otherwise. Every response is
//! `Content-Type: application/json`, because Orca parses nothing else (spinnaker.md §3.6).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::value::RawValue;
use tower::{Layer, Service};

use crate::codes::Code;
use crate::routes::{self, Call, NoRoute, Render};

/// The largest JSON-RPC response the shim reads back (manifests are capped at a few MiB).
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
const JSON: &str = "application/json";

/// Mounts the REST routes on a jsonrpsee HTTP server.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestLayer;

impl<S> Layer<S> for RestLayer {
    type Service = Rest<S>;

    fn layer(&self, inner: S) -> Rest<S> {
        Rest { inner }
    }
}

/// The service [`RestLayer`] produces.
#[derive(Debug, Clone)]
pub struct Rest<S> {
    inner: S,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

impl<S, B> Service<Request<B>> for Rest<S>
where
    S: Service<HttpRequest, Response = HttpResponse> + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> BoxFuture {
        let path = req.uri().path().to_owned();
        let upgrade = req.headers().contains_key(http::header::UPGRADE);
        if path == "/" || upgrade {
            let fut = self.inner.call(req.map(HttpBody::new));
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        let call = match routes::route(&path, req.uri().query()) {
            Ok(call) => call,
            Err(NoRoute::Unknown) => {
                let msg = format!(
                    "no route {path}: use /{{account}}/{{repository}}/{{reference}}/history, /metadata or /labels, or JSON-RPC at POST /"
                );
                return ready(error(StatusCode::NOT_FOUND, -32601, &msg, None, None));
            }
            Err(NoRoute::BadEncoding(segment)) => {
                let msg = format!("malformed percent-encoding, or an encoded '/', in {segment:?}");
                return ready(error(StatusCode::BAD_REQUEST, -32602, &msg, None, None));
            }
        };
        // Orca's webhook default is POST; accept it on REST paths too.
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::POST) {
            let msg = format!("method {} not allowed; use GET", req.method());
            return ready(error(
                StatusCode::METHOD_NOT_ALLOWED,
                -32600,
                &msg,
                None,
                None,
            ));
        }
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": call.method, "params": call.params});
        let (mut parts, _) = req.into_parts();
        parts.method = Method::POST;
        parts.uri = http::Uri::from_static("/");
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
        parts.headers.insert(ACCEPT, HeaderValue::from_static(JSON));
        parts.headers.remove(http::header::CONTENT_LENGTH);
        let rpc_request = Request::from_parts(parts, HttpBody::from(body.to_string()));
        let fut = self.inner.call(rpc_request);
        Box::pin(async move {
            let response = fut.await.map_err(Into::into)?;
            let (parts, body) = response.into_parts();
            let limited = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES);
            let bytes = match limited.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return Ok(error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        -32603,
                        "response too large",
                        None,
                        None,
                    ));
                }
            };
            Ok(render(&call, parts.status, &bytes))
        })
    }
}

fn ready(response: HttpResponse) -> BoxFuture {
    Box::pin(std::future::ready(Ok(response)))
}

#[derive(Deserialize)]
struct RpcResponse<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<RpcError<'a>>,
}

#[derive(Deserialize)]
struct RpcError<'a> {
    code: i32,
    message: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ManifestResult<'a> {
    digest: String,
    #[serde(borrow)]
    manifest: &'a RawValue,
}

/// Turns the JSON-RPC answer into the REST answer.
fn render(call: &Call, status: StatusCode, bytes: &[u8]) -> HttpResponse {
    let parsed: RpcResponse<'_> = match serde_json::from_slice(bytes) {
        Ok(p) => p,
        // jsonrpsee answered outside JSON-RPC (e.g. body too large): keep its status.
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let status = if status.is_success() {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                status
            };
            return error(status, -32603, text.trim(), None, None);
        }
    };
    if let Some(e) = parsed.error {
        let (status, retry_after) = match Code::from_number(e.code) {
            Some(code) => (
                StatusCode::from_u16(code.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                retry_after(e.data),
            ),
            None => (rpc_status(e.code), None),
        };
        return error(status, e.code, &e.message, e.data, retry_after);
    }
    let Some(result) = parsed.result else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            -32603,
            "empty JSON-RPC response",
            None,
            None,
        );
    };
    match call.render {
        Render::Entry | Render::Raw => json(StatusCode::OK, result.get().as_bytes().to_vec()),
        Render::List => json(StatusCode::OK, format!("{}\n", result.get()).into_bytes()),
        Render::Manifest => match serde_json::from_str::<ManifestResult<'_>>(result.get()) {
            Ok(m) => {
                let mut response = json(StatusCode::OK, m.manifest.get().as_bytes().to_vec());
                if let Ok(v) = HeaderValue::from_str(&m.digest) {
                    response.headers_mut().insert("docker-content-digest", v);
                }
                response
            }
            Err(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                -32603,
                "malformed getManifest result",
                None,
                None,
            ),
        },
    }
}

/// HTTP statuses for JSON-RPC's own codes.
fn rpc_status(code: i32) -> StatusCode {
    match code {
        -32700 | -32600 | -32602 => StatusCode::BAD_REQUEST,
        -32601 => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn retry_after(data: Option<&RawValue>) -> Option<u64> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        retry_after: Option<u64>,
    }
    serde_json::from_str::<Data>(data?.get()).ok()?.retry_after
}

fn json(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut response = Response::new(HttpBody::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// `{"error":{"code","message","data"?}}` with `status`, and `Retry-After` when known.
pub fn error(
    status: StatusCode,
    code: i32,
    message: &str,
    data: Option<&RawValue>,
    retry_after: Option<u64>,
) -> HttpResponse {
    let mut error = serde_json::json!({"code": code, "message": message});
    if let Some(d) = data.and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok()) {
        error["data"] = d;
    }
    let mut response = json(
        status,
        serde_json::json!({ "error": error })
            .to_string()
            .into_bytes(),
    );
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
