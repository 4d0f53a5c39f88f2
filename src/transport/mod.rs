//! Transports: newline-delimited JSON-RPC over stdio ([`lines`]) and one TCP port with JSON-RPC
//! over HTTP and WebSocket, the REST shim, registry events, health and metrics endpoints
//! ([`http`]).

mod body;
mod connections;
mod dispatch;
mod endpoint;
mod events;
mod front;
pub mod http;
pub mod lines;
mod websocket;

/// A response with `status`, `content_type` and `body`: the one builder for our own answers.
pub(crate) fn respond(
    status: ::http::StatusCode,
    content_type: &'static str,
    body: String,
) -> jsonrpsee::server::HttpResponse {
    let mut response = ::http::Response::new(jsonrpsee::server::HttpBody::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        ::http::header::CONTENT_TYPE,
        ::http::HeaderValue::from_static(content_type),
    );
    response
}

/// `{"error":{"code","message","data"}}` with `status`: our own refusals, in the REST shim's
/// format (`data` naming the code and status, as on every error).
pub(crate) fn json_error(
    status: ::http::StatusCode,
    code: i32,
    message: &str,
) -> jsonrpsee::server::HttpResponse {
    dimsum_rest::layer::error(status, code, message, None, None)
}

/// Our JSON error with one more header: `Allow` on a 405, `WWW-Authenticate` on a 401,
/// `Connection: close` when the connection cannot be reused.
pub(crate) fn json_error_with(
    status: ::http::StatusCode,
    code: i32,
    message: &str,
    header: ::http::header::HeaderName,
    value: &'static str,
) -> jsonrpsee::server::HttpResponse {
    let mut response = json_error(status, code, message);
    response
        .headers_mut()
        .insert(header, ::http::HeaderValue::from_static(value));
    response
}

/// The token a caller sent as `Authorization: Bearer <token>`, if any.
pub(crate) fn bearer(headers: &::http::HeaderMap) -> Option<&str> {
    headers
        .get(::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// A listening socket on `addr`. The IPv6 wildcard `[::]` (the default) takes IPv4 too, set
/// explicitly rather than left to the kernel's `bindv6only`; where the kernel has no IPv6 at all,
/// `[::]` falls back to `0.0.0.0`.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let open = |addr: std::net::SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        if addr.is_ipv6() && addr.ip().is_unspecified() {
            socket.set_only_v6(false)?;
        }
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        Ok(socket.into())
    };
    match open(addr) {
        Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            let v4 = std::net::SocketAddr::from(([0, 0, 0, 0], addr.port()));
            tracing::warn!(error = %e, "no IPv6 here; listening on {v4}");
            open(v4)
        }
        other => other,
    }
}

/// Resolves on Ctrl-C or SIGTERM; every transport shuts down on it.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
