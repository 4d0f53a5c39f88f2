//! Registry authentication, a small state machine (registry-protocol.md §5.4):
//!
//! 1. Send the request with the cached credential for this repository: a Bearer token that is
//!    still valid, or the Basic value if this registry is known to use Basic. Otherwise anonymous.
//! 2. On `401` (or a `400` carrying `WWW-Authenticate`, which some registries send for an expired
//!    token), read the challenge **of that request**:
//!    - Bearer: fetch a token from its realm for its service and scopes (credentials re-read now),
//!      cache it, retry once;
//!    - Basic: re-read the credentials, cache the value, retry once (if there are any).
//! 3. A second `401`/`403` is final: the registry denied access. Never loop.
//!
//! Tokens expire `expires_in` seconds (default and floor 60, as the token spec says) after we
//! received them, minus a margin for clock skew and request time. We count from receipt rather
//! than `issued_at` so a registry whose clock is off cannot make us hold a dead token.
//! Credentials go to the registry and to the realm it names, and to a realm over plain HTTP only
//! when that realm is the registry's own host and the registry itself is plain HTTP.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::credentials::Secret;

/// The token spec's default and minimum lifetime.
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Treat tokens as expired this long before they are.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        /// Absolute token endpoint URL.
        realm: Url,
        /// `service`, if given (OpenShift omits it).
        service: Option<String>,
        /// Space-separated scopes, if given.
        scopes: Vec<String>,
    },
    /// `Basic realm=…`.
    Basic,
}

/// The first usable challenge among `WWW-Authenticate` header values; Bearer preferred.
pub fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for value in values {
        let Ok(challenges) = http_auth::parse_challenges(value) else {
            continue;
        };
        for c in challenges {
            if c.scheme.eq_ignore_ascii_case("basic") {
                basic = true;
            } else if c.scheme.eq_ignore_ascii_case("bearer") {
                let param = |name: &str| {
                    c.params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.to_unescaped())
                };
                let Some(realm) = param("realm").and_then(|r| Url::parse(&r).ok()) else {
                    continue;
                };
                if !matches!(realm.scheme(), "http" | "https") {
                    continue;
                }
                let scopes = param("scope")
                    .map(|s| {
                        s.split(' ')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(Challenge::Bearer {
                    realm,
                    service: param("service"),
                    scopes,
                });
            }
        }
    }
    basic.then_some(Challenge::Basic)
}

/// The token request URL: the realm with its own query kept, plus `service` and one `scope` each.
pub(crate) fn token_url(realm: &Url, service: Option<&str>, scopes: &[String]) -> Url {
    let mut url = realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for s in scopes {
            q.append_pair("scope", s);
        }
    }
    url
}

/// Whether Basic credentials may be sent to `realm` for a registry at `registry`.
pub(crate) fn may_send_credentials(registry: &Url, realm: &Url) -> bool {
    realm.scheme() == "https"
        || (registry.scheme() == "http" && realm.host_str() == registry.host_str())
}

/// A token endpoint's answer.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
}

impl TokenResponse {
    /// The token (`access_token` preferred, as Docker's client does) and its lifetime.
    pub(crate) fn into_token(self) -> Option<(Secret, Duration)> {
        let value = self
            .access_token
            .filter(|t| !t.is_empty())
            .or(self.token)
            .filter(|t| !t.is_empty())?;
        let secs = self.expires_in.filter(|s| *s > 0).map_or(0, |s| s as u64);
        Some((
            Secret::new(value),
            Duration::from_secs(secs).max(MIN_TOKEN_LIFETIME),
        ))
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// How long a fetched token is handed to callers that were already waiting for one: concurrent
/// 401s for a repository share one token exchange (single flight).
const FLIGHT: Duration = Duration::from_secs(10);

/// Cached credentials for one account.
#[derive(Debug)]
pub(crate) struct AuthCache {
    /// Token exchanges in flight or just finished, by repository.
    flights: moka::future::Cache<String, (Secret, Duration)>,
    /// Bearer tokens by repository. A std `Mutex`: held only for map operations, never across
    /// an `.await`.
    tokens: Mutex<HashMap<String, (Secret, Instant)>>,
    /// The Basic value, once the registry has asked for Basic.
    basic: Mutex<Option<Secret>>,
}

/// The credential to send first.
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    /// Nothing cached: go anonymous and let the challenge tell us.
    None,
    /// A valid Bearer token.
    Bearer(Secret),
    /// The registry uses Basic.
    Basic(Secret),
}

impl Default for AuthCache {
    fn default() -> AuthCache {
        AuthCache {
            flights: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(FLIGHT)
                .build(),
            tokens: Mutex::default(),
            basic: Mutex::default(),
        }
    }
}

impl AuthCache {
    /// Runs `fetch` for `repository` unless an exchange for it is running or just finished, in
    /// which case its token is shared.
    pub(crate) async fn exchange<E: Send + Sync + 'static>(
        &self,
        repository: &str,
        fetch: impl std::future::Future<Output = Result<(Secret, Duration), E>>,
    ) -> Result<(Secret, Duration), std::sync::Arc<E>> {
        self.flights
            .try_get_with(repository.to_owned(), Box::pin(fetch))
            .await
    }

    /// Forgets a token the registry refused, so the next exchange really happens.
    pub(crate) async fn refused(&self, repository: &str) {
        self.flights.invalidate(repository).await;
        self.forget_token(repository);
    }

    pub(crate) fn get(&self, repository: &str) -> Cached {
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        match tokens.get(repository) {
            Some((token, expires)) if *expires > now => return Cached::Bearer(token.clone()),
            Some(_) => {
                tokens.remove(repository);
            }
            None => {}
        }
        drop(tokens);
        match &*self.basic.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(b) => Cached::Basic(b.clone()),
            None => Cached::None,
        }
    }

    pub(crate) fn put_token(&self, repository: &str, token: Secret, lifetime: Duration) {
        let expires = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(repository.to_owned(), (token, expires));
    }

    pub(crate) fn forget_token(&self, repository: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(repository);
    }

    pub(crate) fn put_basic(&self, value: Option<Secret>) {
        *self.basic.lock().unwrap_or_else(|e| e.into_inner()) = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenges(
            [r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c:pull""#].into_iter(),
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: Url::parse("https://auth.example/token").unwrap(),
                service: Some("registry.example".into()),
                scopes: vec![
                    "repository:a/b:pull,push".into(),
                    "repository:c:pull".into()
                ],
            })
        );
        assert_eq!(
            parse_challenges([r#"Basic realm="x""#].into_iter()),
            Some(Challenge::Basic)
        );
        // Several challenges in one header, Bearer preferred; case-insensitive names.
        let c = parse_challenges([r#"Basic realm="x", BEARER REALM="http://h/t""#].into_iter());
        assert!(matches!(c, Some(Challenge::Bearer { service: None, .. })));
        assert_eq!(
            parse_challenges([r#"Bearer realm="/relative""#, "garbage ,,, ="].into_iter()),
            None
        );
        assert_eq!(
            parse_challenges([r#"Bearer realm="file:///etc/passwd""#].into_iter()),
            None
        );
    }

    #[test]
    fn token_urls_and_where_credentials_go() {
        let realm = Url::parse("https://auth.example/token?x=1").unwrap();
        let url = token_url(
            &realm,
            Some("reg"),
            &["repository:a:pull".into(), "repository:b:pull".into()],
        );
        assert_eq!(
            url.as_str(),
            "https://auth.example/token?x=1&service=reg&scope=repository%3Aa%3Apull&scope=repository%3Ab%3Apull"
        );
        let http_reg = Url::parse("http://127.0.0.1:5000").unwrap();
        let https_reg = Url::parse("https://reg.example").unwrap();
        assert!(may_send_credentials(
            &http_reg,
            &Url::parse("http://127.0.0.1:6000/token").unwrap()
        ));
        assert!(!may_send_credentials(
            &http_reg,
            &Url::parse("http://localhost:6000/token").unwrap()
        ));
        assert!(!may_send_credentials(
            &https_reg,
            &Url::parse("http://reg.example/token").unwrap()
        ));
        assert!(may_send_credentials(
            &https_reg,
            &Url::parse("https://auth.example/token").unwrap()
        ));
    }

    #[test]
    fn token_responses() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"a","access_token":"b","expires_in":5}"#).unwrap();
        let (secret, life) = t.into_token().unwrap();
        assert_eq!((secret.expose(), life), ("b", MIN_TOKEN_LIFETIME));
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token().unwrap().1, Duration::from_secs(300));
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(t.into_token().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_expire_early() {
        let cache = AuthCache::default();
        cache.put_token("a", Secret::new("t"), Duration::from_secs(60));
        assert!(matches!(cache.get("a"), Cached::Bearer(_)));
        tokio::time::advance(Duration::from_secs(51)).await;
        assert!(matches!(cache.get("a"), Cached::None));
        cache.put_basic(Some(Secret::new("Basic x")));
        assert!(matches!(cache.get("a"), Cached::Basic(_)));
    }
}
