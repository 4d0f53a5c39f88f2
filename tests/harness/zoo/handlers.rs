//! What the zoo's hosts answer: the token realm, the registry API in front of Distribution, and
//! the object store.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::profile::{
    Auth, Blobs, Head, RealmHost, Refusal, Store, Throttle, TokenRefusal, TokenShape,
};
use super::{Grant, Host, Seen, ZooState};

/// Every manifest type, as a client that wants no conversion offers them.
const ALL_TYPES: &str = "application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.v1+prettyjws,application/vnd.docker.distribution.manifest.v1+json";

type Zoo = (Arc<ZooState>, Host);

/// Every request to every zoo host.
pub async fn handle(State((zoo, host)): State<Zoo>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers = req.headers().clone();
    let resp = match host {
        Host::Store => zoo.store(&headers, &path).await,
        Host::Auth if zoo.realm_is(RealmHost::Auth, &path) => zoo.token(&headers, &path).await,
        Host::Auth => (StatusCode::NOT_FOUND, "not a realm").into_response(),
        Host::Registry if zoo.realm_is(RealmHost::Registry, &path) => {
            zoo.token(&headers, &path).await
        }
        Host::Registry => zoo.registry(&method, &headers, &path).await,
    };
    zoo.seen.lock().unwrap().push(Seen {
        host,
        method: method.to_string(),
        path,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status: resp.status().as_u16(),
    });
    resp
}

fn json(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

fn errors(status: u16, code: &str, message: &str) -> Response {
    json(
        status,
        serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string(),
    )
}

fn query_values(path: &str, name: &str) -> Vec<String> {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn basic_pair(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

impl ZooState {
    fn realm_is(&self, host: RealmHost, path: &str) -> bool {
        match &self.profile.auth {
            Auth::Bearer {
                host: h, path: p, ..
            } => *h == host && path.split('?').next() == Some(*p),
            Auth::Basic { .. } => false,
        }
    }

    fn fill(&self, template: &str) -> String {
        template.replace("{registry}", &self.registry_host)
    }

    fn valid(&self, user: &str, password: &str) -> bool {
        user == self.profile.user && password == *self.password.lock().unwrap()
    }

    fn may_read(user: Option<&str>, repository: &str) -> bool {
        repository.starts_with("public/")
            || (user.is_some() && !repository.starts_with("forbidden/"))
    }

    async fn exists(&self, repository: &str) -> bool {
        let url = format!("{}/v2/{repository}/tags/list", self.backing);
        self.http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// The profile's challenge for `repository`, with `error` when given.
    fn challenge(&self, repository: Option<&str>, error: Option<&str>) -> String {
        match &self.profile.auth {
            Auth::Basic { challenge } => self.fill(challenge),
            Auth::Bearer {
                host,
                path,
                service,
                scope,
                ..
            } => {
                let realm_host = match host {
                    RealmHost::Registry => &self.registry_host,
                    RealmHost::Auth => &self.auth_host,
                };
                let mut c = format!(r#"Bearer realm="https://{realm_host}{path}""#);
                // Artifact Registry's challenge on /v2/ names no service.
                let ping = repository.is_none();
                if let Some(s) =
                    service.filter(|_| !(ping && self.profile.name == "artifact-registry"))
                {
                    c.push_str(&format!(",service={}", self.fill(s)));
                }
                match (scope, repository) {
                    (Some(""), _) | (None, None) => {}
                    (Some(fixed), _) => c.push_str(&format!(r#",scope="{fixed}""#)),
                    (None, Some(repo)) => {
                        c.push_str(&format!(r#",scope="repository:{repo}:pull""#))
                    }
                }
                if let Some(e) = error {
                    c.push_str(&format!(r#",error="{e}""#));
                }
                c
            }
        }
    }

    /// A refusal of the profile's kind.
    fn refuse(&self, refusal: Refusal, repository: &str, shown: Option<&str>) -> Response {
        let echo = match shown {
            Some(s) if self.echo_credentials.load(Ordering::SeqCst) => format!(" (presented: {s})"),
            _ => String::new(),
        };
        let with_challenge = |status: u16, challenge: String, body: Response| {
            let mut resp = body;
            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
            resp.headers_mut()
                .insert("www-authenticate", challenge.parse().unwrap());
            resp
        };
        match refusal {
            Refusal::Challenge => {
                let error = (shown.is_some_and(|s| s.starts_with("Bearer "))
                    && matches!(self.profile.auth, Auth::Bearer { error_param: true, .. }))
                .then_some("invalid_token");
                with_challenge(
                    401,
                    self.challenge(Some(repository), error),
                    errors(401, "UNAUTHORIZED", &format!("authentication required{echo}")),
                )
            }
            Refusal::InsufficientScope => with_challenge(
                401,
                self.challenge(Some(repository), Some("insufficient_scope")),
                json(
                    401,
                    serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": format!("authentication required{echo}"),
                        "detail": [{"Type": "repository", "Class": "", "Name": repository, "Action": "pull"}]}]})
                    .to_string(),
                ),
            ),
            Refusal::Forbidden => {
                let message = if self.profile.name == "ecr" {
                    "Your authorization token has expired. Reauthenticate and try again."
                } else {
                    "requested access to the resource is denied"
                };
                errors(403, "DENIED", &format!("{message}{echo}"))
            }
            Refusal::BadRequest => errors(400, "DENIED", &format!("Your Authorization Token is invalid.{echo}")),
            Refusal::HarborBasic => with_challenge(
                401,
                r#"Basic realm="harbor""#.to_owned(),
                errors(401, "UNAUTHORIZED", &format!("unauthorized: authentication required{echo}")),
            ),
        }
    }

    /// Whether this request may read `repository`; the refusal to send when not.
    #[allow(clippy::result_large_err)]
    fn authorize(&self, headers: &HeaderMap, repository: &str) -> Result<(), Response> {
        let shown = headers.get("authorization").and_then(|v| v.to_str().ok());
        let p = &self.profile;
        match (&p.auth, shown) {
            (_, None)
                if repository.starts_with("public/") && matches!(p.auth, Auth::Basic { .. }) =>
            {
                Ok(())
            }
            (_, None) => Err(self.refuse(Refusal::Challenge, repository, None)),
            (Auth::Basic { .. }, Some(h)) => match basic_pair(h) {
                Some((u, pw)) if self.valid(&u, &pw) && Self::may_read(Some(&u), repository) => {
                    Ok(())
                }
                Some((u, pw)) if self.valid(&u, &pw) => {
                    Err(errors(403, "DENIED", "not authorized"))
                }
                _ => Err(self.refuse(p.expired, repository, shown)),
            },
            (Auth::Bearer { .. }, Some(h)) if h.starts_with("Basic ") => {
                match p.basic_on_registry {
                    // Harbor takes Basic directly.
                    None => match basic_pair(h) {
                        Some((u, pw))
                            if self.valid(&u, &pw) && Self::may_read(Some(&u), repository) =>
                        {
                            Ok(())
                        }
                        _ => Err(self.refuse(Refusal::HarborBasic, repository, shown)),
                    },
                    Some(refusal) => Err(self.refuse(refusal, repository, shown)),
                }
            }
            (Auth::Bearer { .. }, Some(h)) => {
                let token = h.strip_prefix("Bearer ").unwrap_or("");
                let tokens = self.tokens.lock().unwrap();
                match tokens.get(token) {
                    Some(g) if g.generation == self.generation.load(Ordering::SeqCst) => {
                        if g.all || g.repositories.iter().any(|r| r == repository) {
                            Ok(())
                        } else {
                            Err(self.refuse(p.no_scope, repository, shown))
                        }
                    }
                    _ => Err(self.refuse(p.expired, repository, shown)),
                }
            }
        }
    }

    /// The token realm.
    async fn token(&self, headers: &HeaderMap, path: &str) -> Response {
        let p = &self.profile;
        let Auth::Bearer { service, scope, .. } = &p.auth else {
            unreachable!()
        };
        let expected = service.map(|s| self.fill(s).trim_matches('"').to_owned());
        if let Some(expected) = &expected {
            if query_values(path, "service").first() != Some(expected) {
                return json(400, r#"{"details":"invalid service"}"#.to_owned());
            }
        }
        let scopes = query_values(path, "scope");
        let user = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            None => None,
            Some(h) => match basic_pair(h) {
                Some((u, pw)) if self.valid(&u, &pw) => Some(u),
                _ => match p.wrong_credentials {
                    TokenRefusal::Status(status, body) => {
                        return (StatusCode::from_u16(status).unwrap(), body).into_response();
                    }
                    TokenRefusal::EmptyToken => return self.issue(false, Vec::new()),
                },
            },
        };
        // repository:<name>:<actions> (the name may hold no colon here).
        let wanted: Vec<String> = scopes
            .iter()
            .filter_map(|s| {
                let rest = s.strip_prefix("repository:")?;
                let (name, actions) = rest.rsplit_once(':')?;
                actions
                    .split(',')
                    .any(|a| a == "pull")
                    .then(|| name.to_owned())
            })
            .collect();
        if user.is_none() {
            if let Some(TokenRefusal::Status(status, body)) = p.anonymous {
                if wanted.iter().any(|r| !r.starts_with("public/")) {
                    return (StatusCode::from_u16(status).unwrap(), body).into_response();
                }
            }
        }
        if let Some(fixed) = scope.filter(|s| !s.is_empty()) {
            // ECR Public grants for its own scope, and nothing for a scope it did not ask for.
            return self.issue(scopes.iter().any(|s| s == fixed), Vec::new());
        }
        let mut granted = Vec::new();
        for repo in wanted {
            if Self::may_read(user.as_deref(), &repo)
                && (!p.grants_need_existence || self.exists(&repo).await)
            {
                granted.push(repo);
            }
        }
        self.issue(false, granted)
    }

    fn issue(&self, all: bool, repositories: Vec<String>) -> Response {
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        let token = format!("zoo.{}.{n}.{:x}", self.profile.name, rand_u64());
        self.tokens.lock().unwrap().insert(
            token.clone(),
            Grant {
                all,
                repositories,
                generation: self.generation.load(Ordering::SeqCst),
            },
        );
        let p = &self.profile;
        let mut body = serde_json::Map::new();
        if matches!(p.token, TokenShape::Token | TokenShape::Both) {
            body.insert("token".into(), token.clone().into());
        }
        if matches!(p.token, TokenShape::AccessToken | TokenShape::Both) {
            body.insert("access_token".into(), token.into());
        }
        if let Some(e) = p.expires_in {
            body.insert("expires_in".into(), e.into());
        }
        if p.issued_at {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            body.insert("issued_at".into(), rfc3339(now).into());
        }
        json(200, serde_json::Value::Object(body).to_string())
    }

    /// The registry API.
    async fn registry(&self, method: &Method, headers: &HeaderMap, path: &str) -> Response {
        let bare = path.split('?').next().unwrap_or(path);
        if bare == "/v2/" || bare == "/v2" {
            return match headers.get("authorization") {
                None => {
                    let mut r = errors(401, "UNAUTHORIZED", "authentication required");
                    r.headers_mut().insert(
                        "www-authenticate",
                        self.challenge(None, None).parse().unwrap(),
                    );
                    r
                }
                Some(_) => json(200, "{}".into()),
            };
        }
        if let Some(rest) = bare.strip_prefix("/artifacts-downloads/") {
            // Artifact Registry's relative redirect target, on the registry's own host.
            let (repo, digest) = rest.rsplit_once('/').unwrap_or(("", rest));
            return self.presigned_blob(path, repo, digest).await;
        }
        let Some(rest) = bare.strip_prefix("/v2/") else {
            return errors(404, "NOT_FOUND", "no such endpoint");
        };
        if let Some((repo, digest)) = rest.rsplit_once("/referrers/") {
            if let Err(refusal) = self.authorize(headers, repo) {
                return refusal;
            }
            return self.referrers(repo, digest).await;
        }
        let (repo, kind, reference) = match rest.rsplit_once("/manifests/") {
            Some((repo, r)) => (repo, "manifests", r),
            None => match rest.rsplit_once("/blobs/") {
                Some((repo, r)) => (repo, "blobs", r),
                None => return errors(404, "NOT_FOUND", "no such endpoint"),
            },
        };
        if let Err(refusal) = self.authorize(headers, repo) {
            return refusal;
        }
        if kind == "manifests" {
            if self
                .throttled
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return self.throttled();
            }
            return self.manifest(method, headers, repo, reference).await;
        }
        match self.profile.blobs {
            Blobs::Direct => self.backing_blob(repo, reference).await,
            Blobs::Store { status, html } => {
                let sig = self.presign();
                let location = format!(
                    "https://{}/bucket/{repo}/{reference}?X-Amz-Expires=600&X-Amz-Signature={sig}",
                    self.store_host
                );
                let body = if html {
                    format!("<a href=\"{location}\">Found</a>.\n")
                } else {
                    String::new()
                };
                let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
                r.headers_mut()
                    .insert("location", location.parse().unwrap());
                if html {
                    r.headers_mut()
                        .insert("content-type", "text/html; charset=utf-8".parse().unwrap());
                    r.headers_mut()
                        .insert("cache-control", "max-age=31536000".parse().unwrap());
                }
                r
            }
            Blobs::Relative => {
                let sig = self.presign();
                let location = format!("/artifacts-downloads/{repo}/{reference}?token={sig}");
                let mut r = (StatusCode::FOUND, "").into_response();
                r.headers_mut()
                    .insert("location", location.parse().unwrap());
                r
            }
        }
    }

    /// The referrers API where the profile has one, answered from the fallback tag the
    /// backing registry holds (an empty index when there is none).
    async fn referrers(&self, repo: &str, digest: &str) -> Response {
        let Some(content_type) = self.profile.referrers else {
            return errors(404, "NOT_FOUND", "404 page not found");
        };
        let tag = digest.replacen(':', "-", 1);
        let url = format!("{}/v2/{repo}/manifests/{tag}", self.backing);
        let listed = match self.http.get(url).header("accept", ALL_TYPES).send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.unwrap_or_default().to_vec(),
            _ => br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec(),
        };
        ([("content-type", content_type)], listed).into_response()
    }

    fn throttled(&self) -> Response {
        match self.profile.throttle {
            Throttle::Json(retry_after) => {
                let mut r = errors(
                    429,
                    "TOOMANYREQUESTS",
                    "You have reached your pull rate limit. Rate exceeded",
                );
                if let Some(s) = retry_after {
                    r.headers_mut()
                        .insert("retry-after", s.to_string().parse().unwrap());
                }
                r
            }
            Throttle::Text => (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests (HAP429).\n").into_response(),
            Throttle::Html => (
                StatusCode::TOO_MANY_REQUESTS,
                [("content-type", "text/html")],
                "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx/1.20.1</center>\r\n</body>\r\n</html>\r\n",
            )
                .into_response(),
        }
    }

    async fn manifest(
        &self,
        method: &Method,
        headers: &HeaderMap,
        repo: &str,
        reference: &str,
    ) -> Response {
        let p = &self.profile;
        let offered = headers
            .get("accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        // Quay lets the stored type be converted to what was asked for (Distribution does the
        // converting); everyone else is asked for everything and refuses what was not offered.
        let ask = if p.strict_accept {
            ALL_TYPES
        } else {
            offered.as_str()
        };
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.backing);
        let Ok(resp) = self.http.get(url).header("accept", ask).send().await else {
            return errors(503, "UNAVAILABLE", "backing registry down");
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.unwrap_or_default();
        if status == 404 {
            if *method == Method::HEAD {
                return StatusCode::NOT_FOUND.into_response();
            }
            return errors(
                404,
                p.not_found_code,
                &format!("manifest {repo}:{reference} not found"),
            );
        }
        if status != 200 {
            return (StatusCode::from_u16(status).unwrap(), body).into_response();
        }
        if p.strict_accept && !offered.split(',').any(|t| t.trim() == content_type) {
            return errors(
                404,
                "MANIFEST_UNKNOWN",
                &format!("{content_type} found, but accept header does not support it"),
            );
        }
        let mut r = Response::builder().header("content-type", &content_type);
        if p.ratelimit_headers {
            let remaining = if *method == Method::GET {
                self.ratelimit_remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .map_or(0, |n| n - 1)
            } else {
                self.ratelimit_remaining.load(Ordering::SeqCst)
            };
            r = r
                .header("ratelimit-limit", "100;w=21600")
                .header("ratelimit-remaining", format!("{remaining};w=21600"))
                .header("docker-ratelimit-source", "127.0.0.1");
        }
        if *method == Method::HEAD {
            return match p.head {
                Head::Refused(status) => StatusCode::from_u16(status).unwrap().into_response(),
                Head::NoDigest => r
                    .header("content-length", body.len())
                    .body(Body::empty())
                    .unwrap(),
                Head::Normal => {
                    if let Some(d) = &digest {
                        r = r.header("docker-content-digest", d);
                    }
                    r.header("content-length", body.len())
                        .body(Body::empty())
                        .unwrap()
                }
            };
        }
        if p.get_digest {
            if let Some(d) = &digest {
                r = r.header("docker-content-digest", d);
            }
        }
        r.body(Body::from(body)).unwrap()
    }

    async fn backing_blob(&self, repo: &str, digest: &str) -> Response {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.backing);
        match self.http.get(url).send().await {
            Ok(r) if r.status().is_success() => {
                let bytes = r.bytes().await.unwrap_or_default();
                ([("content-type", "application/octet-stream")], bytes).into_response()
            }
            Ok(r) => errors(
                r.status().as_u16(),
                "BLOB_UNKNOWN",
                "blob unknown to registry",
            ),
            Err(_) => errors(503, "UNAVAILABLE", "backing registry down"),
        }
    }

    fn presign(&self) -> String {
        let sig = format!("{:016x}", rand_u64());
        self.presigned.lock().unwrap().insert(sig.clone());
        sig
    }

    /// A presigned download: good once.
    async fn presigned_blob(&self, path: &str, repo: &str, digest: &str) -> Response {
        let sig = query_values(path, "X-Amz-Signature")
            .into_iter()
            .chain(query_values(path, "token"))
            .next()
            .unwrap_or_default();
        if !self.presigned.lock().unwrap().remove(&sig) {
            return (
                StatusCode::FORBIDDEN,
                [("content-type", "application/xml")],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            )
                .into_response();
        }
        self.backing_blob(repo, digest).await
    }

    /// The object store: refuses a forwarded `Authorization` as S3 and Azure Blob do.
    async fn store(&self, headers: &HeaderMap, path: &str) -> Response {
        if headers.contains_key("authorization") {
            let body = match self.profile.store {
                Store::S3 => "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message><ArgumentName>Authorization</ArgumentName></Error>".to_owned(),
                Store::Azure => "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InvalidAuthenticationInfo</Code><Message>Authentication information is not given in the correct format. Check the value of Authorization header.\nRequestId:zoo</Message></Error>".to_owned(),
            };
            return (
                StatusCode::BAD_REQUEST,
                [("content-type", "application/xml")],
                body,
            )
                .into_response();
        }
        let bare = path.split('?').next().unwrap_or(path);
        let Some(rest) = bare.strip_prefix("/bucket/") else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let (repo, digest) = rest.rsplit_once('/').unwrap_or(("", rest));
        self.presigned_blob(path, repo, digest).await
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// RFC 3339 with nanoseconds, as Docker Hub writes `issued_at`.
fn rfc3339(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_nanos()
    )
}
