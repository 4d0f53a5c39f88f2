//! One TCP port: JSON-RPC over HTTP POST and WebSocket ([`super::endpoint`]), the REST shim
//! ([`dimsum_rest::RestLayer`]), registry notifications ([`super::events`]) and the operator
//! endpoints of [`super::front`]. Middleware order: front (health, metrics, request log) → events
//! (`POST /events`, its own token) → guard (API token, deadline) → bodies (408, 413) → REST shim
//! → JSON-RPC endpoint.
//! Connections are accepted by [`super::connections`] (a cap on sockets, a header timeout);
//! limits on body size, body time and request time; graceful shutdown with a bounded drain.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use dimsum_rest::RestLayer;
use http::{Request, StatusCode};
use jsonrpsee::server::HttpResponse;
use tokio::sync::watch;
use tower::{Layer, Service};

use super::body::BodyLayer;
use super::connections;
use super::endpoint::Endpoint;
use super::events::EventsLayer;
use super::front::FrontLayer;
use crate::config::ServerLimits;
use crate::reload::Live;
use crate::rpc::Rpc;

/// The header a delegate token's holder (Orca's stage) names the user in.
pub const USER_HEADER: &str = "x-dimsum-user";

/// Serves on `listener` until `shutdown` resolves, then drains for at most `limits.drain`.
pub async fn serve(
    listener: std::net::TcpListener,
    live: Arc<Live>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (stop, stopped) = watch::channel(false);
    let endpoint = Endpoint {
        methods: Rpc::new(live.clone()).into_rpc().into(),
        max_body: limits.max_request_bytes as usize,
        stop: stopped.clone(),
    };
    let service = tower::ServiceBuilder::new()
        .layer(FrontLayer::new(live.clone()))
        .layer(EventsLayer::new(
            live.clone(),
            limits.max_request_bytes as usize,
            limits.request_timeout,
        ))
        .layer(GuardLayer {
            live: live.clone(),
            timeout: limits.request_timeout,
        })
        .layer(BodyLayer {
            max_bytes: u64::from(limits.max_request_bytes),
            timeout: limits.body_timeout,
        })
        .layer(RestLayer::new(Rpc::new(live.clone())))
        .service(endpoint);
    let metrics = live.current().metrics().clone();
    let accepting = connections::accept(listener, || service.clone(), &limits, metrics, stopped);
    let stopping = async {
        shutdown.await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    };
    tokio::join!(accepting, stopping);
    Ok(())
}

/// Checks the caller's bearer token and bounds the request's time. Health endpoints never reach
/// it (the health layer answers them first). WebSocket upgrades are requests too, so they are
/// checked the same way.
#[derive(Debug, Clone)]
struct GuardLayer {
    /// Holds the expected token, which a reload may change.
    live: Arc<Live>,
    timeout: Duration,
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;
    fn layer(&self, inner: S) -> Guard<S> {
        Guard {
            inner,
            live: self.live.clone(),
            timeout: self.timeout,
        }
    }
}

#[derive(Debug, Clone)]
struct Guard<S> {
    inner: S,
    live: Arc<Live>,
    timeout: Duration,
}

impl<S, B> Service<Request<B>> for Guard<S>
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

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let user = req
            .headers()
            .get(USER_HEADER)
            .map(|v| v.to_str().unwrap_or("${not UTF-8}"));
        let caller = self.live.caller(super::bearer(req.headers()), user);
        if let Some(caller) = caller {
            // The REST routes and the JSON-RPC methods read who calls from here.
            req.extensions_mut().insert(caller);
        } else {
            let response = super::json_error_with(
                StatusCode::UNAUTHORIZED,
                -32001,
                "missing or invalid bearer token",
                http::header::WWW_AUTHENTICATE,
                "Bearer realm=\"dimsum\"",
            );
            return Box::pin(std::future::ready(Ok(response)));
        }
        let timeout = self.timeout;
        let fut = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(result) => result,
                Err(_) => Ok(super::json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    -32603,
                    "request timed out",
                )),
            }
        })
    }
}
