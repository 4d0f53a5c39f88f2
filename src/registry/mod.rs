//! A pull-only Docker/OCI registry client for one account. It knows nothing of RPC or history.
//!
//! Fetching one image (the service drives these steps, caching each):
//!
//! 1. `GET /v2/<name>/manifests/<reference>` with the full [`manifest::ACCEPT`] list, so no registry
//!    converts to schema1. The digest is computed from the bytes (for signed schema1, from the
//!    canonical payload). By digest, the bytes must hash to it; by tag, a `Docker-Content-Digest`
//!    header that disagrees with the bytes is refused.
//! 2. An index or manifest list is resolved to one platform ([`platform`]) and that child is fetched
//!    by digest (verified).
//! 3. [`Client::blob`] fetches the config blob; its length must equal the descriptor's `size` and its
//!    bytes must hash to the descriptor's digest.
//!
//! Every request goes through [`auth`]'s state machine, is bounded in size ([`Limits`]) and time
//! (`clientTimeoutMillis`), and is retried a bounded number of times with backoff on connection
//! errors, 5xx and 429 (honouring a short `Retry-After`). Redirects are followed up to five hops;
//! reqwest drops `Authorization` when the host, port or scheme changes, and we refuse a downgrade
//! from `https` to `http`.

pub mod auth;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod platform;
pub mod reference;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use url::Url;

use self::auth::{AuthCache, Cached, Challenge};
pub use self::digest::Digest;
pub use self::error::Error;
use self::error::{Envelope, ErrorCode};
use self::manifest::{Descriptor, Manifest};
pub use self::platform::Platform;
pub use self::reference::{Reference, Repository};
use crate::credentials::{Credentials, Secret};
use crate::metrics::{Kind, Metrics};

/// Size caps and retry policy (registry-protocol.md §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest or index body.
    pub max_manifest_bytes: usize,
    /// Largest config blob.
    pub max_config_bytes: usize,
    /// Retries after the first attempt, for temporary failures.
    pub retries: u32,
    /// First backoff; doubles per retry.
    pub backoff: Duration,
    /// The longest `Retry-After` we wait for ourselves; longer ones are passed up.
    pub max_retry_after: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_config_bytes: 8 * 1024 * 1024,
            retries: 2,
            backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
        }
    }
}

/// Token responses are a few KB; this bounds a hostile one.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// We keep only an excerpt of error bodies.
const MAX_ERROR_BYTES: usize = 64 * 1024;
/// Redirect hops we follow.
const MAX_REDIRECTS: usize = 5;

/// Where and how to reach a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL; requests go to `<address>/v2/…` (a path prefix is kept).
    pub address: Url,
    /// Accept invalid TLS certificates from this registry.
    pub insecure: bool,
    /// Bound on each upstream request (`clientTimeoutMillis`).
    pub timeout: Duration,
}

/// The names Docker Hub's registry answers under.
pub const DOCKER_HUB_HOSTS: [&str; 4] = [
    "index.docker.io",
    "registry-1.docker.io",
    "docker.io",
    "registry.hub.docker.com",
];

impl Endpoint {
    /// Docker Hub, where a one-segment repository means `library/<name>`.
    pub fn is_docker_hub(&self) -> bool {
        self.address
            .host_str()
            .is_some_and(|h| DOCKER_HUB_HOSTS.contains(&h))
    }

    /// The repository as this registry names it (Docker Hub's `library/` rule).
    pub fn repository(&self, name: &Repository) -> Repository {
        if self.is_docker_hub() {
            name.with_library_prefix()
        } else {
            name.clone()
        }
    }
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Digest of the bytes (signed schema1: of the canonical payload).
    pub digest: Digest,
    /// The bytes as the registry sent them.
    pub bytes: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
}

impl Fetched {
    /// A manifest of `media_type` whose content matches `digest` (content kept earlier, read
    /// back); `None` when it does not parse or does not match.
    pub fn verified(media_type: &str, bytes: Vec<u8>, digest: &Digest) -> Option<Fetched> {
        let manifest = Manifest::parse(Some(media_type), &bytes).ok()?;
        let payload = digested_payload(&manifest, &bytes);
        digest
            .verifies(payload.as_deref().unwrap_or(&bytes))
            .then(|| Fetched {
                digest: digest.clone(),
                bytes,
                manifest,
            })
    }
}

/// What a manifest's digest covers when it is not the body itself: signed schema1's digest
/// covers the canonical payload.
fn digested_payload(manifest: &Manifest, body: &[u8]) -> Option<Vec<u8>> {
    match manifest.media_type() {
        manifest::DOCKER_SCHEMA1_SIGNED => digest::schema1_canonical_payload(body),
        _ => None,
    }
}

/// A registry client for one account.
#[derive(Debug)]
pub struct Client {
    /// The account name, for metrics.
    account: String,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    endpoint: Endpoint,
    /// `host[:port]`, for messages.
    host: String,
    credentials: Credentials,
    auth: AuthCache,
    limits: Limits,
}

/// A successful answer.
struct Answer {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Client {
    /// A client for `account` at `endpoint` with its own connection pool, counting its requests
    /// in `metrics`.
    pub fn new(
        account: &str,
        endpoint: Endpoint,
        credentials: Credentials,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Result<Client, String> {
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt
                .previous()
                .last()
                .is_some_and(|p| p.scheme() == "https")
                && attempt.url().scheme() != "https";
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if downgrade {
                attempt.error("refusing a redirect from https to http")
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("dimsum/", env!("CARGO_PKG_VERSION")))
            .redirect(redirects)
            .timeout(endpoint.timeout)
            .connect_timeout(endpoint.timeout.min(Duration::from_secs(10)))
            .tls_danger_accept_invalid_certs(endpoint.insecure)
            .pool_idle_timeout(Duration::from_secs(90));
        if !endpoint.insecure {
            let tls = tls::client_config().map_err(|e| format!("cannot configure TLS: {e}"))?;
            builder = builder.tls_backend_preconfigured(tls);
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build HTTP client: {}", chain(&e)))?;
        let host = match endpoint.address.port() {
            Some(p) => format!("{}:{p}", endpoint.address.host_str().unwrap_or("")),
            None => endpoint.address.host_str().unwrap_or("").to_owned(),
        };
        Ok(Client {
            account: account.to_owned(),
            metrics,
            http,
            endpoint,
            host,
            credentials,
            auth: AuthCache::default(),
            limits,
        })
    }

    /// The repository as this registry names it (Docker Hub's `library/` rule).
    pub fn repository(&self, name: &Repository) -> Repository {
        self.endpoint.repository(name)
    }

    /// The child of an index for `platform` (or distribution's default, linux/amd64).
    pub fn choose_child(
        &self,
        repo: &Repository,
        reference: &Reference,
        manifests: &[Descriptor],
        platform: Option<&Platform>,
    ) -> Result<Digest, Error> {
        let what = self.what_manifest(repo, reference);
        let child = platform::choose(manifests, platform).map_err(|available| {
            Error::NoMatchingPlatform {
                what: what.clone(),
                wanted: platform.map_or_else(|| "linux/amd64".to_owned(), Platform::to_string),
                available,
            }
        })?;
        Digest::parse(&child.digest).ok_or_else(|| {
            bad(
                &what,
                format!("index entry has an invalid digest {:?}", child.digest),
            )
        })
    }

    /// Fetches one manifest by tag or digest and checks its digest.
    pub async fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<Fetched, Error> {
        let what = self.what_manifest(repo, reference);
        let url = self.url(&format!("{repo}/manifests/{reference}"));
        let answer = self
            .request(
                &what,
                Kind::manifest_get,
                Method::GET,
                url,
                repo,
                Some(manifest::ACCEPT),
                self.limits.max_manifest_bytes,
            )
            .await?;
        let content_type = answer
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let manifest = Manifest::parse(content_type, &answer.body).map_err(|e| match e {
            manifest::ManifestError::Unsupported(media_type) => Error::Unsupported {
                what: what.clone(),
                media_type,
            },
            other => bad(&what, other.to_string()),
        })?;
        let payload = digested_payload(&manifest, &answer.body);
        let hashed = payload.as_deref().unwrap_or(&answer.body);
        let digest = match reference {
            Reference::Digest(wanted) => {
                if !wanted.verifies(hashed) {
                    return Err(bad(
                        &what,
                        format!("content does not match digest {wanted}"),
                    ));
                }
                wanted.clone()
            }
            Reference::Tag(_) => {
                let computed = Digest::sha256(hashed);
                let header = answer
                    .headers
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok());
                if let Some(claimed) = header.and_then(Digest::parse) {
                    if !claimed.verifies(hashed) {
                        return Err(bad(
                            &what,
                            format!(
                                "Docker-Content-Digest {claimed} does not match the content ({computed})"
                            ),
                        ));
                    }
                }
                computed
            }
        };
        Ok(Fetched {
            digest,
            bytes: answer.body,
            manifest,
        })
    }

    /// The digest a tag points to, from a `HEAD` (which Docker Hub does not count as a pull);
    /// `None` when the registry does not say, and the caller must `GET`.
    pub async fn head_manifest(
        &self,
        repo: &Repository,
        tag: &Reference,
    ) -> Result<Option<Digest>, Error> {
        let what = self.what_manifest(repo, tag);
        let url = self.url(&format!("{repo}/manifests/{tag}"));
        let answer = self
            .request(
                &what,
                Kind::manifest_head,
                Method::HEAD,
                url,
                repo,
                Some(manifest::ACCEPT),
                0,
            )
            .await?;
        let header = answer
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        Ok(header.and_then(Digest::parse))
    }

    /// Whether a manifest with `digest` is in `repo`: one `HEAD`. Distribution 2.8 answers a
    /// digest it holds only as a blob (an image config) with 500 `UNKNOWN` where other registries
    /// say 404; after the retries, both mean no.
    pub async fn has_manifest(&self, repo: &Repository, digest: &Digest) -> Result<bool, Error> {
        let reference = Reference::Digest(digest.clone());
        let what = self.what_manifest(repo, &reference);
        let url = self.url(&format!("{repo}/manifests/{digest}"));
        let head = Method::HEAD;
        let accept = Some(manifest::ACCEPT);
        match self
            .request(&what, Kind::manifest_head, head, url, repo, accept, 0)
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. })
            | Err(Error::Unavailable {
                status: Some(500), ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Fetches a blob, checking its size and digest against the descriptor.
    pub async fn blob(&self, repo: &Repository, descriptor: &Descriptor) -> Result<Vec<u8>, Error> {
        let what = format!("blob {repo}@{} from {}", descriptor.digest, self.host);
        let digest = Digest::parse(&descriptor.digest)
            .ok_or_else(|| bad(&what, format!("invalid digest {:?}", descriptor.digest)))?;
        let max = self.limits.max_config_bytes;
        if descriptor.size > max as u64 {
            return Err(bad(
                &what,
                format!(
                    "config of {} bytes exceeds the limit of {max} bytes",
                    descriptor.size
                ),
            ));
        }
        // Stop reading past the declared size (0 means the writer did not say).
        let limit = if descriptor.size > 0 {
            descriptor.size as usize
        } else {
            max
        };
        let url = self.url(&format!("{repo}/blobs/{digest}"));
        let answer = self
            .request(&what, Kind::blob, Method::GET, url, repo, None, limit)
            .await?;
        if descriptor.size > 0 && answer.body.len() as u64 != descriptor.size {
            return Err(bad(
                &what,
                format!(
                    "got {} bytes, descriptor says {}",
                    answer.body.len(),
                    descriptor.size
                ),
            ));
        }
        if !digest.verifies(&answer.body) {
            return Err(bad(
                &what,
                format!("content does not match digest {digest}"),
            ));
        }
        Ok(answer.body)
    }

    fn what_manifest(&self, repo: &Repository, reference: &Reference) -> String {
        let sep = if matches!(reference, Reference::Digest(_)) {
            '@'
        } else {
            ':'
        };
        format!("manifest {repo}{sep}{reference} from {}", self.host)
    }

    fn url(&self, tail: &str) -> Url {
        let mut url = self.endpoint.address.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/v2/{tail}"));
        url
    }

    /// One logical request: retried on temporary failures within the limits.
    #[allow(clippy::too_many_arguments)]
    async fn request(
        &self,
        what: &str,
        kind: Kind,
        method: Method,
        url: Url,
        repo: &Repository,
        accept: Option<&str>,
        limit: usize,
    ) -> Result<Answer, Error> {
        let mut attempt = 0;
        loop {
            // Boxed once per attempt: the auth state machine's future is large.
            let result =
                Box::pin(self.authenticated(what, kind, method.clone(), &url, repo, accept, limit))
                    .await;
            let err = match result {
                Err(e) if e.is_temporary() && attempt < self.limits.retries => e,
                other => return other,
            };
            let delay = match &err {
                Error::RateLimited {
                    retry_after: Some(s),
                    ..
                } => {
                    let wait = Duration::from_secs(*s);
                    if wait > self.limits.max_retry_after {
                        return Err(err);
                    }
                    wait
                }
                _ => self.limits.backoff * 2u32.pow(attempt),
            };
            tracing::debug!(error = %err, ?delay, attempt, "retrying registry request");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One attempt through the auth state machine (see [`auth`]).
    #[allow(clippy::too_many_arguments)]
    async fn authenticated(
        &self,
        what: &str,
        kind: Kind,
        method: Method,
        url: &Url,
        repo: &Repository,
        accept: Option<&str>,
        limit: usize,
    ) -> Result<Answer, Error> {
        let first = match self.auth.get(repo.as_str()) {
            Cached::None => None,
            Cached::Bearer(token) => Some(Secret::new(format!("Bearer {}", token.expose()))),
            Cached::Basic(basic) => Some(basic),
        };
        let mut resp = self
            .send(
                what,
                kind,
                method.clone(),
                url.clone(),
                accept,
                first.as_ref(),
            )
            .await?;
        let status = resp.status();
        let challenged = status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::BAD_REQUEST && resp.headers().contains_key(WWW_AUTHENTICATE));
        if challenged {
            let values = resp.headers().get_all(WWW_AUTHENTICATE);
            let challenge = auth::parse_challenges(values.iter().filter_map(|v| v.to_str().ok()));
            let retry_with = match challenge {
                Some(Challenge::Bearer {
                    realm,
                    service,
                    scopes,
                }) => {
                    if first
                        .as_ref()
                        .is_some_and(|s| s.expose().starts_with("Bearer "))
                    {
                        // The registry refused the token we hold: exchange a new one.
                        self.auth.refused(repo.as_str()).await;
                    }
                    let scopes = if scopes.is_empty() {
                        vec![format!("repository:{repo}:pull")]
                    } else {
                        scopes
                    };
                    let fetch = self.fetch_token(what, &realm, service.as_deref(), &scopes);
                    let (token, lifetime) = self
                        .auth
                        .exchange(repo.as_str(), fetch)
                        .await
                        .map_err(Arc::unwrap_or_clone)?;
                    self.auth.put_token(repo.as_str(), token.clone(), lifetime);
                    Secret::new(format!("Bearer {}", token.expose()))
                }
                Some(Challenge::Basic) => match self.fresh_basic(what).await? {
                    Some(basic) => {
                        self.auth.put_basic(Some(basic.clone()));
                        basic
                    }
                    None => return Err(denied(what, status, &self.error_body(resp).await)),
                },
                None => return Err(denied(what, status, &self.error_body(resp).await)),
            };
            resp = self
                .send(what, kind, method, url.clone(), accept, Some(&retry_with))
                .await?;
        }
        self.answer(what, resp, limit).await
    }

    async fn fresh_basic(&self, what: &str) -> Result<Option<Secret>, Error> {
        self.credentials
            .basic()
            .await
            .map_err(|source| Error::Credentials {
                what: what.to_owned(),
                source,
            })
    }

    /// Exchanges credentials (if allowed to go there) for a token at `realm`.
    async fn fetch_token(
        &self,
        what: &str,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(Secret, Duration), Error> {
        let what = format!("{what} (token from {})", realm.host_str().unwrap_or(""));
        let basic = if auth::may_send_credentials(&self.endpoint.address, realm) {
            self.fresh_basic(&what).await?
        } else {
            if !self.credentials.is_anonymous() {
                tracing::warn!(realm = %realm.host_str().unwrap_or(""), "withholding credentials from a plain-HTTP token realm on another host");
            }
            None
        };
        let url = auth::token_url(realm, service, scopes);
        let resp = self
            .send(&what, Kind::token, Method::GET, url, None, basic.as_ref())
            .await?;
        let answer = self.answer(&what, resp, MAX_TOKEN_BYTES).await?;
        let parsed: auth::TokenResponse = serde_json::from_slice(&answer.body)
            .map_err(|e| bad(&what, format!("token response is not JSON: {e}")))?;
        parsed
            .into_token()
            .ok_or_else(|| bad(&what, "token response has no token".to_owned()))
    }

    async fn send(
        &self,
        what: &str,
        kind: Kind,
        method: Method,
        url: Url,
        accept: Option<&str>,
        authorization: Option<&Secret>,
    ) -> Result<reqwest::Response, Error> {
        let mut req = self.http.request(method, url);
        if let Some(accept) = accept {
            req = req.header(ACCEPT, accept);
        }
        if let Some(secret) = authorization {
            let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
                bad(
                    what,
                    "credentials contain characters not allowed in a header".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let result = req.send().await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        self.metrics.upstream(&self.account, kind, status);
        result.map_err(|e| transport(what, &e, self.endpoint.timeout))
    }

    /// Maps a status to success or an error, reading the body within `limit`.
    async fn answer(
        &self,
        what: &str,
        mut resp: reqwest::Response,
        limit: usize,
    ) -> Result<Answer, Error> {
        let status = resp.status();
        if status.is_success() {
            let body = read_body(&mut resp, limit)
                .await
                .map_err(|e| e.into_error(what, self.endpoint.timeout))?;
            // Taken, not cloned: the response is done with them.
            let headers = std::mem::take(resp.headers_mut());
            return Ok(Answer { headers, body });
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let envelope = self.error_body(resp).await;
        let what = what.to_owned();
        let detail = envelope.message.clone();
        Err(match (status.as_u16(), envelope.code) {
            (401 | 403, _) | (_, Some(ErrorCode::Unauthorized | ErrorCode::Denied)) => {
                Error::Denied {
                    what,
                    status: status.as_u16(),
                    detail,
                }
            }
            (429, _) | (_, Some(ErrorCode::TooManyRequests)) => {
                Error::RateLimited { what, retry_after }
            }
            (404, _)
            | (
                _,
                Some(ErrorCode::ManifestUnknown | ErrorCode::NameUnknown | ErrorCode::BlobUnknown),
            ) => Error::NotFound { what, detail },
            (s, _) if s >= 500 => Error::Unavailable {
                what,
                status: Some(s),
                detail: format!("HTTP {s}{}", suffix(&detail)),
            },
            (s, Some(ErrorCode::Unavailable)) => Error::Unavailable {
                what,
                status: Some(s),
                detail,
            },
            (s, _) => Error::BadResponse {
                what,
                detail: format!("unexpected HTTP {s}{}", suffix(&detail)),
            },
        })
    }

    async fn error_body(&self, mut resp: reqwest::Response) -> Envelope {
        // An unreadable or oversized error body still leaves us the status.
        let body = read_body(&mut resp, MAX_ERROR_BYTES)
            .await
            .unwrap_or_default();
        Envelope::parse(&body)
    }
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn bad(what: &str, detail: String) -> Error {
    Error::BadResponse {
        what: what.to_owned(),
        detail,
    }
}

fn denied(what: &str, status: StatusCode, envelope: &Envelope) -> Error {
    Error::Denied {
        what: what.to_owned(),
        status: status.as_u16(),
        detail: envelope.message.clone(),
    }
}

fn transport(what: &str, e: &reqwest::Error, timeout: Duration) -> Error {
    let what = what.to_owned();
    if e.is_timeout() {
        Error::Timeout {
            what,
            after: timeout,
        }
    } else if e.is_redirect() {
        Error::BadResponse {
            what,
            detail: chain(e),
        }
    } else {
        Error::Unavailable {
            what,
            status: None,
            detail: chain(e),
        }
    }
}

/// An error and its sources on one line, without the URL (ours carry no secrets, but the
/// message reads better without repeating it).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

enum BodyError {
    TooLarge(usize),
    Read(reqwest::Error),
}

impl BodyError {
    fn into_error(self, what: &str, timeout: Duration) -> Error {
        match self {
            BodyError::TooLarge(limit) => bad(what, format!("response larger than {limit} bytes")),
            BodyError::Read(e) if e.is_timeout() => Error::Timeout {
                what: what.to_owned(),
                after: timeout,
            },
            BodyError::Read(e) => bad(what, format!("reading body: {}", chain(&e))),
        }
    }
}

/// Reads a body, refusing to buffer more than `limit` bytes.
async fn read_body(resp: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::with_capacity(resp.content_length().map_or(8192, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
