//! One TCP port: JSON-RPC over HTTP POST and WebSocket (jsonrpsee), the REST shim
//! ([`dimsum_rest::RestLayer`]), and `/healthz` / `/readyz`. Limits on body size, connections and
//! request time; graceful shutdown with a bounded drain.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dimsum_rest::RestLayer;
use http::{Request, Response, StatusCode};
use jsonrpsee::server::{HttpBody, HttpResponse, Server, ServerConfig};
use tower::{Layer, Service};

use crate::rpc::{DimsumApiServer as _, Rpc};
use crate::service::Dimsum;

/// Server limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body.
    pub max_request_bytes: u32,
    /// Largest response body.
    pub max_response_bytes: u32,
    /// Connections at once.
    pub max_connections: u32,
    /// How long shutdown waits for in-flight requests.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_bytes: 1024 * 1024,
            max_response_bytes: 64 * 1024 * 1024,
            max_connections: 1024,
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves on `listener` until `shutdown` resolves, then drains for at most `limits.drain`.
pub async fn serve(
    listener: std::net::TcpListener,
    service: Arc<Dimsum>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        .max_connections(limits.max_connections)
        .build();
    let middleware = tower::ServiceBuilder::new()
        .layer(HealthLayer)
        .layer(RestLayer);
    let server = Server::builder()
        .set_config(config)
        .set_http_middleware(middleware)
        .build_from_tcp(listener)?;
    let handle = server.start(Rpc::new(service).into_rpc());
    shutdown.await;
    tracing::info!("shutting down");
    let _ = handle.stop();
    if tokio::time::timeout(limits.drain, handle.stopped())
        .await
        .is_err()
    {
        tracing::warn!(drain = ?limits.drain, "in-flight requests did not finish in time");
    }
    Ok(())
}

/// Answers `GET /healthz` and `GET /readyz` before anything else sees the request. dimsum is ready
/// as soon as it serves: accounts are validated at start and registries are asked on demand.
#[derive(Debug, Clone, Copy)]
struct HealthLayer;

impl<S> Layer<S> for HealthLayer {
    type Service = Health<S>;
    fn layer(&self, inner: S) -> Health<S> {
        Health { inner }
    }
}

#[derive(Debug, Clone)]
struct Health<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Health<S>
where
    S: Service<Request<B>, Response = HttpResponse>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if matches!(req.uri().path(), "/healthz" | "/readyz") {
            let mut response = Response::new(HttpBody::from(r#"{"status":"ok"}"#));
            *response.status_mut() = StatusCode::OK;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return Box::pin(std::future::ready(Ok(response)));
        }
        Box::pin(self.inner.call(req))
    }
}
