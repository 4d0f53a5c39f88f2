//! `POST /events`: registry notifications (see [`crate::events`] for the formats and
//! `service::notice` for what they change).
//!
//! Enabled by `dimsum.events.tokenFile`; without it the path does not exist (404). The registry
//! authenticates with its own token, never the API token: as `Authorization: Bearer <token>`, or
//! as `?token=` for registries that cannot send headers (Quay). The path is logged without its
//! query, so that token never reaches a log. The account is `?account=NAME`, or the one account
//! whose address has the event's registry host. The answer comes as soon as the caches are
//! updated; pre-fetches run afterwards in the background, so a registry's delivery never waits
//! for dimsum's own registry requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use jsonrpsee::server::HttpResponse;
use tower::{Layer, Service};

use crate::events::{self, Change, Format, Notice};
use crate::prefetch::{Job, Prefetcher};
use crate::reload::{EventsAccess, Live};
use crate::service::{AccountMatch, Applied, Dimsum};
use crate::trigger::{Push, Triggers};

/// The path.
pub(crate) const PATH: &str = "/events";

#[derive(Debug, Clone)]
pub(crate) struct EventsLayer {
    live: Arc<Live>,
    prefetcher: Prefetcher,
    /// `dimsum.triggers`: pipelines started from pushes.
    triggers: Option<Triggers>,
    max_bytes: usize,
    timeout: Duration,
}

impl EventsLayer {
    /// Bodies are read up to `max_bytes` within `timeout`.
    pub(crate) fn new(live: Arc<Live>, max_bytes: usize, timeout: Duration) -> EventsLayer {
        let triggers = live.triggers().and_then(|settings| {
            Triggers::start(live.clone(), settings.clone())
                .map_err(|e| tracing::error!("dimsum.triggers is off: {e}"))
                .ok()
        });
        EventsLayer {
            prefetcher: Prefetcher::start(live.clone()),
            triggers,
            live,
            max_bytes,
            timeout,
        }
    }
}

impl<S> Layer<S> for EventsLayer {
    type Service = Events<S>;
    fn layer(&self, inner: S) -> Events<S> {
        Events {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Events<S> {
    inner: S,
    layer: EventsLayer,
}

impl<S, B> Service<Request<B>> for Events<S>
where
    S: Service<Request<B>, Response = HttpResponse>,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<jsonrpsee::core::BoxError>,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.uri().path() != PATH {
            return Box::pin(self.inner.call(req));
        }
        let layer = self.layer.clone();
        Box::pin(async move { Ok(layer.answer(req).await) })
    }
}

/// What the query string says.
#[derive(Default)]
struct Query {
    account: Option<String>,
    token: Option<String>,
}

fn query(req: &Request<impl Sized>) -> Result<Query, String> {
    let mut q = Query::default();
    let pairs = dimsum_rest::routes::query_params(req.uri().query().unwrap_or(""))
        .map_err(|_| "malformed percent-encoding in the query".to_owned())?;
    for (key, value) in pairs {
        let slot = match key.as_str() {
            "account" => &mut q.account,
            "token" => &mut q.token,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(format!("{key} is given more than once"));
        }
    }
    Ok(q)
}

impl EventsLayer {
    async fn answer<B>(&self, req: Request<B>) -> HttpResponse
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<jsonrpsee::core::BoxError>,
    {
        let service = self.live.current();
        let metrics = service.metrics().clone();
        let refused = |result: &'static str| metrics.event("", "", "", result);
        let q = match query(&req) {
            Ok(q) => q,
            Err(msg) => {
                refused("bad_request");
                return super::json_error(StatusCode::BAD_REQUEST, -32602, &msg);
            }
        };
        let token = super::bearer(req.headers()).or(q.token.as_deref());
        let prefetch = match self.live.events_access(token) {
            EventsAccess::Off => {
                return super::json_error(
                    StatusCode::NOT_FOUND,
                    -32601,
                    "no route /events: registry events are off (set dimsum.events.tokenFile; see docs/freshness.md)",
                );
            }
            _ if req.method() != Method::POST => {
                return super::json_error_with(
                    StatusCode::METHOD_NOT_ALLOWED,
                    -32600,
                    &format!("method {} not allowed on /events; use POST", req.method()),
                    http::header::ALLOW,
                    "POST",
                );
            }
            EventsAccess::Denied => {
                refused("unauthorized");
                return super::json_error_with(
                    StatusCode::UNAUTHORIZED,
                    -32001,
                    "missing or invalid events token",
                    http::header::WWW_AUTHENTICATE,
                    "Bearer realm=\"dimsum-events\"",
                );
            }
            EventsAccess::Allowed { prefetch } => prefetch,
        };
        let body = match self.read(req.into_body()).await {
            Ok(body) => body,
            Err((status, msg)) => {
                refused("bad_request");
                return super::json_error(status, -32600, &msg);
            }
        };
        let (format, notices) = match events::parse(&body) {
            Ok(parsed) => parsed,
            Err(e) => {
                refused("bad_request");
                let code = match e {
                    events::Error::NotJson(_) => -32700,
                    _ => -32600,
                };
                return super::json_error(StatusCode::BAD_REQUEST, code, &e.to_string());
            }
        };
        let accounts = match accounts(&service, q.account.as_deref(), &notices) {
            Ok(accounts) => accounts,
            Err(e) => {
                metrics.event("", format.label(), "", "unknown_account");
                let status = match e {
                    AccountMatch::Unknown(_) | AccountMatch::NoHost { .. } => StatusCode::NOT_FOUND,
                    AccountMatch::Ambiguous { .. } | AccountMatch::NoHostInEvent => {
                        StatusCode::BAD_REQUEST
                    }
                };
                return super::json_error(status, 1002, &e.to_string());
            }
        };
        let mut counts = [0usize; 3];
        for (notice, account) in notices.iter().zip(&accounts) {
            let applied = match service.apply(account, notice).await {
                Ok(applied) => applied,
                // The account was just matched against this same service.
                Err(_) => Applied::Invalid,
            };
            let result = applied.label();
            metrics.event(account, format.label(), notice.change.label(), result);
            counts[match result {
                "applied" => 0,
                "ignored" => 1,
                _ => 2,
            }] += 1;
            log(format, account, notice, result);
            if let Applied::Pushed { repository, tag } = applied {
                if let Some(triggers) = &self.triggers {
                    let digest = match &notice.change {
                        events::Change::Pushed { digest, .. } => digest.clone(),
                        _ => None,
                    };
                    triggers.offer(Push {
                        account: account.clone(),
                        repository: repository.clone(),
                        tag: tag.clone(),
                        digest,
                    });
                }
                if prefetch {
                    self.prefetcher.offer(Job {
                        account: account.clone(),
                        repository,
                        tag,
                    });
                }
            }
        }
        let body = serde_json::json!({
            "received": notices.len(),
            "applied": counts[0],
            "ignored": counts[1],
            "invalid": counts[2],
        });
        super::respond(StatusCode::OK, "application/json", body.to_string())
    }

    /// The body, read whole within the size and time bounds.
    async fn read<B>(&self, body: B) -> Result<bytes::Bytes, (StatusCode, String)>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<jsonrpsee::core::BoxError>,
    {
        let limited = http_body_util::Limited::new(body, self.max_bytes);
        match tokio::time::timeout(self.timeout, limited.collect()).await {
            Err(_) => Err((
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time".to_owned(),
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", self.max_bytes),
            )),
            Ok(Err(e)) => Err((StatusCode::BAD_REQUEST, format!("reading the body: {e}"))),
        }
    }
}

/// The account of every notice, or the first reason one cannot be told (nothing is applied
/// then: the registry retries, and the operator sees why). A named account must exist even
/// when there is no notice.
fn accounts(
    service: &Dimsum,
    named: Option<&str>,
    notices: &[Notice],
) -> Result<Vec<String>, AccountMatch> {
    if let Some(name) = named {
        service.event_account(Some(name), None)?;
    }
    notices
        .iter()
        .map(|n| service.event_account(named, n.host.as_deref()))
        .collect()
}

fn log(format: Format, account: &str, notice: &Notice, result: &str) {
    if result == "ignored" {
        return;
    }
    let (tag, digest) = match &notice.change {
        Change::Pushed { tag, digest } => (Some(tag.as_str()), digest.as_deref()),
        Change::TagDeleted { tag } => (Some(tag.as_str()), None),
        Change::ManifestDeleted { digest } => (None, Some(digest.as_str())),
        Change::Ignored(_) => (None, None),
    };
    tracing::info!(
        format = format.label(),
        account,
        repository = %notice.repository,
        action = notice.change.label(),
        tag,
        digest,
        result,
        "registry event"
    );
}
