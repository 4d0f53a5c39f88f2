//! The request loop: one logical request to a registry, through retries, authentication and
//! redirects, to an answer or a classified [`Error`].
//!
//! Authentication is a small state machine (registry-protocol.md §5.4). The request goes out with
//! what the account holds for the repository: a Bearer token still alive, the Basic value if this
//! registry asked for Basic, else nothing. Then, each recovery at most once per request (so a
//! request costs at most four sends and never loops):
//!
//! 1. **Bearer challenge** (401, or 400 with `WWW-Authenticate`, which Clouddriver also honours):
//!    forget a token that was refused, exchange a fresh one at the challenge's realm for its
//!    service and scopes (credentials re-read now), retry.
//! 2. **Basic challenge**: send the account's Basic credentials (re-read now). ECR and Nexus ask
//!    for Basic only; Harbor switches to `Basic realm="harbor"` when a request already carried a
//!    token (expired, or with too little scope) and then accepts Basic directly.
//! 3. **Refused without a challenge after credentials were sent** (403, or 400 `DENIED`): the
//!    credential died. ECR answers an expired password with 403 and no challenge, ECR Public an
//!    expired token with 400 `DENIED`, GHCR a token it dislikes with `DENIED`. The password file or
//!    command is re-read (a side process may have rotated it) and the request retried once: with a
//!    new token for the last challenge of this repository, or with the new Basic value.
//!
//! Whatever is still refused is final. A 401 to a token fresh from a successful exchange means
//! the token service granted nothing for the repository: Docker Hub answers a missing repository
//! this way and Quay down-scopes silently, so it is reported as "not found, or no access", not as
//! bad credentials.
//!
//! Credentials go only to the registry and to the token realm it names ([`token`]); redirects
//! are followed by reqwest, which drops `Authorization` whenever the host, port or scheme changes,
//! so a presigned object-store URL (S3, R2, GCS, Azure Blob all refuse a second auth mechanism
//! with 400) never sees them. Error bodies are read within a cap, the registry's reason kept
//! ([`Envelope`]) with anything we sent scrubbed from it, and every `ratelimit-*` header is
//! recorded (Docker Hub sends them on manifest GETs and HEADs).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use url::Url;

use super::challenge::{Challenge, parse_challenges};
use super::error::{Envelope, ErrorCode};
use super::token::{self, Cached, TokenResponse};
use super::{Client, Error, Repository, bad, chain};
use crate::credentials::Secret;
use crate::metrics::Kind;

/// Token responses are a few KB; this bounds a hostile one.
const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// We keep only an excerpt of error bodies.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// A successful answer.
pub(super) struct Answer {
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

/// What one request is, for messages and metrics.
pub(super) struct Call<'a> {
    /// e.g. `manifest team/app:v1 from registry.example`.
    pub(super) what: &'a str,
    pub(super) kind: Kind,
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) accept: Option<&'a str>,
    /// The most body bytes we read on success.
    pub(super) limit: usize,
}

impl Client {
    /// One logical request: retried on temporary failures within the limits.
    pub(super) async fn request(
        &self,
        call: &Call<'_>,
        repo: &Repository,
    ) -> Result<Answer, Error> {
        let mut attempt = 0;
        loop {
            // Boxed once per attempt: the auth state machine's future is large.
            let err = match Box::pin(self.authenticated(call, repo)).await {
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

    /// One attempt through the auth state machine (module doc).
    async fn authenticated(&self, call: &Call<'_>, repo: &Repository) -> Result<Answer, Error> {
        let key = repo.as_str();
        let mut sent = match self.auth.get(key) {
            Cached::None => None,
            Cached::Bearer(token) => Some(bearer(&token)),
            Cached::Basic(basic) => Some(basic),
        };
        let mut resp = self.send(call, sent.as_ref()).await?;
        let (mut exchanged, mut basic_tried, mut refreshed) = (false, false, false);
        loop {
            let status = resp.status();
            let values = resp.headers().get_all(WWW_AUTHENTICATE);
            let challenge = parse_challenges(values.iter().filter_map(|v| v.to_str().ok()));
            let challenged = status == StatusCode::UNAUTHORIZED
                || (status == StatusCode::BAD_REQUEST && challenge.is_some());
            let sent_bearer = sent.as_ref().is_some_and(is_bearer);
            let next = match challenge {
                Some(ch @ Challenge::Bearer { .. }) if challenged && !exchanged => {
                    exchanged = true;
                    if sent_bearer {
                        self.auth.refused(key).await;
                    }
                    self.auth.put_challenge(key, &ch);
                    Some(self.bearer_for(call.what, repo, &ch).await?)
                }
                Some(Challenge::Basic) if challenged && !basic_tried => {
                    basic_tried = true;
                    if sent_bearer {
                        // Harbor's switch: the token it was shown is done with.
                        self.auth.refused(key).await;
                    }
                    match self.fresh_basic(call.what).await? {
                        Some(basic) if sent.as_ref() != Some(&basic) => {
                            self.auth.put_basic(Some(basic.clone()));
                            Some(basic)
                        }
                        // Anonymous, or these very credentials were just refused.
                        _ => None,
                    }
                }
                None if matches!(status.as_u16(), 400 | 403) && sent.is_some() && !refreshed => {
                    let envelope = self.error_body(resp, sent.as_ref()).await;
                    let about_credentials = status == StatusCode::FORBIDDEN
                        || matches!(
                            envelope.code,
                            None | Some(ErrorCode::Denied | ErrorCode::Unauthorized)
                        );
                    let renewed = if about_credentials {
                        refreshed = true;
                        self.renew(call.what, repo, sent.as_ref()).await?
                    } else {
                        None
                    };
                    // The body is read: send again here (the response is gone) or refuse.
                    let Some(credential) = renewed else {
                        return Err(refusal(call.what, status, false, envelope, None));
                    };
                    exchanged |= is_bearer(&credential);
                    sent = Some(credential);
                    resp = self.send(call, sent.as_ref()).await?;
                    continue;
                }
                _ => None,
            };
            match next {
                Some(credential) => {
                    sent = Some(credential);
                    resp = self.send(call, sent.as_ref()).await?;
                }
                None => break,
            }
        }
        // A token the service issued without our credentials (withheld from a plain-HTTP realm
        // on another host) says nothing about what those credentials may read.
        let fresh_token =
            exchanged && sent.as_ref().is_some_and(is_bearer) && !self.withheld_from(key);
        self.answer(call, resp, sent.as_ref(), fresh_token).await
    }

    /// Whether the token realm of `repository`'s last challenge does not get our credentials.
    fn withheld_from(&self, repository: &str) -> bool {
        match self.auth.challenge(repository) {
            Some(Challenge::Bearer { realm, .. }) => {
                !self.credentials.is_anonymous()
                    && !token::may_send_credentials(&self.endpoint.address, &realm)
            }
            _ => false,
        }
    }

    /// A new credential after a refusal without a challenge: a token for the repository's last
    /// challenge, or the Basic value re-read. `None` when there is nothing new to try.
    async fn renew(
        &self,
        what: &str,
        repo: &Repository,
        sent: Option<&Secret>,
    ) -> Result<Option<Secret>, Error> {
        let key = repo.as_str();
        if sent.is_some_and(is_bearer) {
            self.auth.refused(key).await;
            return match self.auth.challenge(key) {
                Some(ch) => Ok(Some(self.bearer_for(what, repo, &ch).await?)),
                None => Ok(None),
            };
        }
        match self.fresh_basic(what).await? {
            Some(basic) if sent != Some(&basic) => {
                tracing::info!(account = %self.account, "registry refused our credentials without a challenge; retrying with the password read again");
                self.auth.put_basic(Some(basic.clone()));
                Ok(Some(basic))
            }
            _ => Ok(None),
        }
    }

    /// A token for `challenge`, exchanged once for concurrent callers, cached for its life.
    async fn bearer_for(
        &self,
        what: &str,
        repo: &Repository,
        challenge: &Challenge,
    ) -> Result<Secret, Error> {
        let Challenge::Bearer {
            realm,
            service,
            scopes,
            ..
        } = challenge
        else {
            unreachable!("bearer_for is only called with a Bearer challenge");
        };
        let key = repo.as_str();
        let scopes = if scopes.is_empty() {
            vec![format!("repository:{repo}:pull")]
        } else {
            scopes.clone()
        };
        let fetch = self.fetch_token(what, realm, service.as_deref(), &scopes);
        let (token, lifetime) = self
            .auth
            .exchange(key, fetch)
            .await
            .map_err(Arc::unwrap_or_clone)?;
        self.auth.put_token(key, token.clone(), lifetime);
        Ok(bearer(&token))
    }

    pub(super) async fn fresh_basic(&self, what: &str) -> Result<Option<Secret>, Error> {
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
        let basic = if token::may_send_credentials(&self.endpoint.address, realm) {
            self.fresh_basic(&what).await?
        } else {
            if !self.credentials.is_anonymous() {
                tracing::warn!(realm = %realm.host_str().unwrap_or(""), "withholding credentials from a plain-HTTP token realm on another host");
            }
            None
        };
        let call = Call {
            what: &what,
            kind: Kind::token,
            method: Method::GET,
            url: token::token_url(realm, service, scopes),
            accept: None,
            limit: MAX_TOKEN_BYTES,
        };
        let resp = self.send(&call, basic.as_ref()).await?;
        let answer = self.answer(&call, resp, basic.as_ref(), false).await?;
        let parsed: TokenResponse = serde_json::from_slice(&answer.body)
            .map_err(|e| bad(&what, format!("token response is not JSON: {e}")))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        parsed
            .into_token(now)
            .ok_or_else(|| bad(&what, "token response has no token".to_owned()))
    }

    async fn send(
        &self,
        call: &Call<'_>,
        authorization: Option<&Secret>,
    ) -> Result<reqwest::Response, Error> {
        let mut req = self.http.request(call.method.clone(), call.url.clone());
        if let Some(accept) = call.accept {
            req = req.header(ACCEPT, accept);
        }
        if let Some(secret) = authorization {
            let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| {
                bad(
                    call.what,
                    "credentials contain characters not allowed in a header".to_owned(),
                )
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let started = std::time::Instant::now();
        let result = req.send().await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        self.metrics.upstream(&self.account, call.kind, status);
        // One line per registry request at debug. The query is left out: a presigned URL's holds
        // its signature.
        tracing::debug!(
            account = %self.account,
            method = %call.method,
            url = %without_query(&call.url),
            status,
            bytes = result.as_ref().ok().and_then(reqwest::Response::content_length),
            ms = crate::metrics::millis(started.elapsed()),
            "registry request"
        );
        let resp = result.map_err(|e| transport(call.what, &e, self.endpoint.timeout))?;
        let (limit, remaining) = (
            ratelimit(resp.headers(), "ratelimit-limit"),
            ratelimit(resp.headers(), "ratelimit-remaining"),
        );
        if limit.is_some() || remaining.is_some() {
            self.metrics.ratelimit(&self.account, limit, remaining);
        }
        Ok(resp)
    }

    /// Maps a final response to success or an error, reading the body within `call.limit`.
    /// `fresh_token`: the request carried a token exchanged for it just now.
    async fn answer(
        &self,
        call: &Call<'_>,
        mut resp: reqwest::Response,
        sent: Option<&Secret>,
        fresh_token: bool,
    ) -> Result<Answer, Error> {
        let status = resp.status();
        if status.is_success() {
            let body = read_body(&mut resp, call.limit)
                .await
                .map_err(|e| e.into_error(call.what, self.endpoint.timeout))?;
            // Taken, not cloned: the response is done with them.
            let headers = std::mem::take(resp.headers_mut());
            return Ok(Answer { headers, body });
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let envelope = self.error_body(resp, sent).await;
        let no_access = fresh_token && status == StatusCode::UNAUTHORIZED;
        Err(refusal(call.what, status, no_access, envelope, retry_after))
    }

    /// The registry's reason, with whatever we sent scrubbed out of it.
    async fn error_body(&self, mut resp: reqwest::Response, sent: Option<&Secret>) -> Envelope {
        // An unreadable or oversized error body still leaves us the status.
        let body = read_body(&mut resp, MAX_ERROR_BYTES)
            .await
            .unwrap_or_default();
        let mut envelope = Envelope::parse(&body);
        if let Some(secret) = sent {
            let value = secret.expose();
            envelope.scrub(value);
            if let Some((_, credential)) = value.split_once(' ') {
                envelope.scrub(credential);
            }
        }
        envelope
    }
}

/// Classifies a refusal. `no_access`: a 401 to a fresh token (see the module doc).
fn refusal(
    what: &str,
    status: StatusCode,
    no_access: bool,
    envelope: Envelope,
    retry_after: Option<u64>,
) -> Error {
    let what = what.to_owned();
    let detail = envelope.message;
    match (status.as_u16(), envelope.code) {
        (429, _) | (_, Some(ErrorCode::TooManyRequests)) => Error::RateLimited {
            what,
            detail,
            retry_after,
        },
        (401, _) if no_access => Error::NotFoundOrNoAccess { what, detail },
        (401 | 403, _) | (_, Some(ErrorCode::Unauthorized | ErrorCode::Denied)) => Error::Denied {
            what,
            status: status.as_u16(),
            detail,
        },
        (404, _)
        | (_, Some(ErrorCode::ManifestUnknown | ErrorCode::NameUnknown | ErrorCode::BlobUnknown)) => {
            Error::NotFound { what, detail }
        }
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
    }
}

fn bearer(token: &Secret) -> Secret {
    Secret::new(format!("Bearer {}", token.expose()))
}

fn is_bearer(credential: &Secret) -> bool {
    credential.expose().starts_with("Bearer ")
}

/// The count in a `ratelimit-limit` / `ratelimit-remaining` header: `100;w=21600` → 100
/// (draft-ietf-httpapi-ratelimit-headers; Docker Hub's numbers change, so they are read, not
/// assumed).
fn ratelimit(headers: &HeaderMap, name: &str) -> Option<u64> {
    let value = headers.get(name)?.to_str().ok()?;
    value.split([';', ',']).next()?.trim().parse().ok()
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
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

/// `url` with neither query nor fragment, for logs.
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

enum BodyError {
    TooLarge(usize),
    Read(reqwest::Error),
}

impl BodyError {
    fn into_error(self, what: &str, timeout: Duration) -> Error {
        match self {
            BodyError::TooLarge(limit) => Error::TooLarge {
                what: what.to_owned(),
                limit,
            },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratelimit_headers() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-limit", "100;w=21600".parse().unwrap());
        h.insert("ratelimit-remaining", " 97 ; w=21600".parse().unwrap());
        assert_eq!(ratelimit(&h, "ratelimit-limit"), Some(100));
        assert_eq!(ratelimit(&h, "ratelimit-remaining"), Some(97));
        h.insert("ratelimit-remaining", "lots".parse().unwrap());
        assert_eq!(ratelimit(&h, "ratelimit-remaining"), None);
        assert_eq!(ratelimit(&h, "ratelimit-reset"), None);
    }

    #[test]
    fn refusals_are_classified_with_the_registrys_reason() {
        let e = |status: u16, body: &str, no_access: bool| {
            refusal(
                "m",
                StatusCode::from_u16(status).unwrap(),
                no_access,
                Envelope::parse(body.as_bytes()),
                Some(3),
            )
            .to_string()
        };
        assert_eq!(
            e(429, "Too Many Requests (HAP429).", false),
            "m: rate limited by the registry (Too Many Requests (HAP429).) (retry after 3s)"
        );
        assert_eq!(
            e(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"insufficient_scope"}]}"#,
                true
            ),
            "m: not found, or no access with these credentials (insufficient_scope)"
        );
        assert_eq!(
            e(
                403,
                "denied: Your authorization token has expired. Reauthenticate and try again.",
                false
            ),
            "m: access denied (HTTP 403) (denied: Your authorization token has expired. Reauthenticate and try again.)"
        );
        assert_eq!(
            e(
                400,
                r#"{"errors":[{"code":"DENIED","message":"Your Authorization Token is invalid."}]}"#,
                false
            ),
            "m: access denied (HTTP 400) (Your Authorization Token is invalid.)"
        );
        assert_eq!(
            e(
                404,
                r#"{"errors":[{"code":"NOT_FOUND","message":"artifact not found"}]}"#,
                false
            ),
            "m: not found (artifact not found)"
        );
        assert_eq!(
            e(
                400,
                "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>",
                false
            ),
            "m: bad response from registry: unexpected HTTP 400: InvalidArgument: Only one auth mechanism allowed"
        );
    }
}
