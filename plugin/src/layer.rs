//! [`RestLayer`]: answers the REST routes by asking a [`Backend`] (the same service the JSON-RPC
//! methods call), so a REST lookup never goes through JSON-RPC encoding and decoding.
//!
//! One port serves everything: `/` (JSON-RPC over `POST` and WebSocket) passes through to the
//! inner service untouched; a path that matches [`crate::routes`] becomes a typed [`Call`], and the backend's
//! answer is rendered: the raw bytes on success, a JSON error with the status from
//! [`crate::codes`] otherwise. Every response is `Content-Type: application/json`, because Orca
//! parses nothing else (spinnaker.md §3.6).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::ErrorObjectOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use tower::{Layer, Service};

use crate::codes::Code;
use crate::routes::{self, Action, Call, NoRoute};

const JSON: &str = "application/json";

/// A successful answer, in the bytes the original dimsum sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A JSON document: a history entry, the history list, or the labels.
    Json(Vec<u8>),
    /// The manifest's bytes, as the registry served them, and their digest.
    Manifest {
        /// The manifest.
        bytes: Vec<u8>,
        /// `sha256:…`, sent as `Docker-Content-Digest`.
        digest: String,
    },
}

impl Answer {
    /// The answer's bytes (a manifest's without its digest).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Answer::Json(bytes) | Answer::Manifest { bytes, .. } => bytes,
        }
    }
}

/// What the REST routes call: the service behind the JSON-RPC methods, asked directly. Errors
/// are the JSON-RPC error objects those methods would return, so both wires say the same.
pub trait Backend: Clone + Send + Sync + 'static {
    /// Answers one call; `extensions` are the request's (who calls, as the server's
    /// authentication put it there).
    fn answer(
        &self,
        call: Call,
        extensions: &http::Extensions,
    ) -> impl Future<Output = Result<Answer, ErrorObjectOwned>> + Send + 'static;
}

/// Mounts the REST routes in front of the JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub struct RestLayer<B> {
    backend: B,
}

impl<B> RestLayer<B> {
    /// REST routes answered by `backend`.
    pub fn new(backend: B) -> RestLayer<B> {
        RestLayer { backend }
    }
}

impl<S, B: Clone> Layer<S> for RestLayer<B> {
    type Service = Rest<S, B>;

    fn layer(&self, inner: S) -> Rest<S, B> {
        Rest {
            inner,
            backend: self.backend.clone(),
        }
    }
}

/// The service [`RestLayer`] produces.
#[derive(Debug, Clone)]
pub struct Rest<S, B> {
    inner: S,
    backend: B,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

impl<S, B, Body> Service<Request<Body>> for Rest<S, B>
where
    S: Service<HttpRequest, Response = HttpResponse> + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
    B: Backend,
    Body: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    Body::Error: Into<BoxError>,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> BoxFuture {
        let path = req.uri().path();
        if path == "/" {
            let fut = self.inner.call(req.map(HttpBody::new));
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        let call = match routes::route(path, req.uri().query()) {
            Ok(call) => call,
            Err(NoRoute::Unknown) => {
                let msg = format!(
                    "no route {path}: use /{{account}}/{{repository}}/{{reference}}/{{{}}}, or JSON-RPC at POST /",
                    routes::ROUTES.join("|")
                );
                return ready(error(StatusCode::NOT_FOUND, -32601, &msg, None, None));
            }
            Err(NoRoute::BadEncoding(segment)) => {
                let msg = format!("malformed percent-encoding, or an encoded '/', in {segment:?}");
                return ready(invalid_params(&msg));
            }
            Err(NoRoute::BadParam(msg)) => {
                return ready(invalid_params(&format!("invalid params: {msg}")));
            }
        };
        // Orca's webhook default is POST; accept it on REST paths too.
        if !matches!(*req.method(), Method::GET | Method::HEAD | Method::POST) {
            let msg = format!("method {} not allowed; use GET", req.method());
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, -32600, &msg, None, None);
            response.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST"),
            );
            return ready(response);
        }
        let action = call.action;
        let answer = self.backend.answer(call, req.extensions());
        Box::pin(async move { Ok(render(action, answer.await)) })
    }
}

/// A 400 with JSON-RPC's invalid-params code, as the same mistake over JSON-RPC gets.
fn invalid_params(message: &str) -> HttpResponse {
    error(StatusCode::BAD_REQUEST, -32602, message, None, None)
}

fn ready(response: HttpResponse) -> BoxFuture {
    Box::pin(std::future::ready(Ok(response)))
}

/// Turns the backend's answer into the REST answer.
fn render(action: Action, answer: Result<Answer, ErrorObjectOwned>) -> HttpResponse {
    match answer {
        Ok(Answer::Json(mut bytes)) => {
            if matches!(action, Action::History { level: None, .. }) {
                bytes.push(b'\n');
            }
            json(StatusCode::OK, bytes)
        }
        Ok(Answer::Manifest { bytes, digest }) => {
            let mut response = json(StatusCode::OK, bytes);
            if let Ok(v) = HeaderValue::from_str(&digest) {
                response.headers_mut().insert("docker-content-digest", v);
            }
            response
        }
        Err(e) => {
            let data = e.data();
            let (status, retry_after) = match Code::from_number(e.code()) {
                Some(code) => (
                    StatusCode::from_u16(code.http_status())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    retry_after(data),
                ),
                None => (rpc_status(e.code()), None),
            };
            error(status, e.code(), e.message(), data, retry_after)
        }
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

/// `{"error":{"code","message","data"}}` with `status`, and `Retry-After` when known. `data` is
/// the backend's, else `{name, httpStatus}` for JSON-RPC's own codes, so every error names itself.
pub fn error(
    status: StatusCode,
    code: i32,
    message: &str,
    data: Option<&RawValue>,
    retry_after: Option<u64>,
) -> HttpResponse {
    let data = data
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
        .unwrap_or_else(|| {
            serde_json::json!({"name": crate::codes::rpc_name(code), "httpStatus": status.as_u16()})
        });
    let error = serde_json::json!({"code": code, "message": message, "data": data});
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
