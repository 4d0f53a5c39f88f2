//! JSON-RPC at `/`: `POST` with an `application/json` body, or a WebSocket upgrade. Both are
//! answered by [`super::dispatch`], as stdio is, and every refusal is our JSON error: 405 (with
//! `Allow`) for another method, 415 for another content type, 413 past the body cap.
//! A request of notifications only is answered `204 No Content`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use jsonrpsee::Methods;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpResponse};
use tokio::sync::watch;
use tower::Service;

use super::websocket;
use crate::fiat::Caller;

/// The innermost service of the port.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) methods: Methods,
    /// The largest request body, and WebSocket message.
    pub(crate) max_body: usize,
    /// Changes to `true` on shutdown; WebSockets close then.
    pub(crate) stop: watch::Receiver<bool>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send + 'static>>;

impl Service<Request<HttpBody>> for Endpoint {
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<HttpBody>) -> BoxFuture {
        // Who calls, as the guard established it, goes with every method call of this request
        // (a WebSocket's: of the connection), each checked on its own.
        let mut methods = self.methods.clone();
        if let Some(caller) = req.extensions().get::<Caller>() {
            methods.extensions_mut().insert(caller.clone());
        }
        if req.method() == Method::GET && websocket::wants_websocket(req.headers()) {
            let response = websocket::upgrade(req, methods, self.max_body, self.stop.clone());
            return Box::pin(std::future::ready(Ok(response)));
        }
        if req.method() != Method::POST {
            let msg = format!(
                "method {} not allowed on /: JSON-RPC is POST / with Content-Type: application/json, or GET / with Upgrade: websocket; REST routes are /{{account}}/{{repository}}/{{reference}}/{{{}}}",
                req.method(),
                dimsum_rest::routes::ROUTES.join("|")
            );
            let status = StatusCode::METHOD_NOT_ALLOWED;
            let allow = http::header::ALLOW;
            let response = super::json_error_with(status, -32600, &msg, allow, "GET, POST");
            return Box::pin(std::future::ready(Ok(response)));
        }
        if !is_json(req.headers()) {
            let response = super::json_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                -32600,
                "JSON-RPC needs Content-Type: application/json",
            );
            return Box::pin(std::future::ready(Ok(response)));
        }
        let max = self.max_body;
        Box::pin(async move {
            let body = http_body_util::Limited::new(req.into_body(), max);
            let bytes = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    let msg = format!("request body larger than {max} bytes");
                    return Ok(super::json_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        -32600,
                        &msg,
                    ));
                }
                Err(e) => {
                    let msg = format!("reading the request body: {e}");
                    return Ok(super::json_error(StatusCode::BAD_REQUEST, -32600, &msg));
                }
            };
            let reply = match std::str::from_utf8(&bytes) {
                Ok(text) => super::dispatch::handle_message(&methods, text).await,
                Err(_) => Some(super::dispatch::error_reply(
                    "null",
                    -32700,
                    "Parse error: not UTF-8",
                )),
            };
            Ok(match reply {
                Some(reply) => super::respond(StatusCode::OK, "application/json", reply),
                None => {
                    let mut response = http::Response::new(HttpBody::empty());
                    *response.status_mut() = StatusCode::NO_CONTENT;
                    response
                }
            })
        })
    }
}

/// `Content-Type: application/json`, any parameters and case.
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::registry::manifest::content_type_essence)
        .is_some_and(|essence| essence.eq_ignore_ascii_case("application/json"))
}
