//! Token exchange (registry-protocol.md §5.2) and the credentials an account holds between
//! requests: Bearer tokens per repository, the last challenge per repository, and the Basic value
//! for registries that want Basic.
//!
//! Token answers differ by registry, and each shape is read here:
//! - `{"token","access_token"}` with the same value (Docker Hub), `{"token"}` only (GHCR, Quay,
//!   GitLab, ECR Public), `{"access_token"}` only (ACR: clients that require `token` fail on it);
//! - `expires_in` absent (Quay, although its tokens last an hour): the spec's default of 60 s;
//! - `issued_at` with nanoseconds (Docker Hub) or absent.
//!
//! A token is kept no longer than it lives: counted from when we received it, or from
//! `issued_at` when that says the token was issued earlier (a token service handing out a token
//! it issued before), minus a margin for request time. An `issued_at` that would make the token
//! dead on arrival is a clock that disagrees with ours, and is ignored rather than trusted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::challenge::Challenge;
use crate::credentials::Secret;
use crate::history::gotime::GoTime;

/// The token spec's default lifetime, for answers without `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Treat tokens as expired this long before they are (at most half their life).
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

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

/// Whether Basic credentials may be sent to `realm`, the token endpoint a registry at `registry`
/// named: over HTTPS (the realm may be on another host: Docker Hub, GitLab), or over plain HTTP
/// only to the registry's own host when the registry itself is plain HTTP.
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
    #[serde(default)]
    issued_at: Option<String>,
}

impl TokenResponse {
    /// The token (`access_token` preferred, as Docker's client does) and how long it lives from
    /// now, `now` being the Unix time in seconds.
    pub(crate) fn into_token(self, now: i64) -> Option<(Secret, Duration)> {
        let value = self
            .access_token
            .filter(|t| !t.is_empty())
            .or(self.token)
            .filter(|t| !t.is_empty())?;
        let lifetime = self
            .expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_TOKEN_LIFETIME, |s| Duration::from_secs(s as u64));
        let age = self
            .issued_at
            .as_deref()
            .and_then(|t| GoTime::parse(t).ok())
            .map(|t| now.saturating_sub(t.unix_seconds()))
            .filter(|age| *age > 0)
            .map(|age| Duration::from_secs(age as u64));
        let left = match age {
            Some(age) if age < lifetime => lifetime - age,
            Some(_) => {
                tracing::debug!(
                    "token issued_at is older than its lifetime by our clock; counting from receipt"
                );
                lifetime
            }
            None => lifetime,
        };
        Some((Secret::new(value), left))
    }
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
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
    /// Bearer tokens by repository, with when they stop being sent. A std `Mutex`: held only for
    /// map operations, never across an `.await`.
    tokens: Mutex<HashMap<String, (Secret, Instant)>>,
    /// The last Bearer challenge per repository, so that a refusal without a challenge (ECR
    /// Public's 400, GHCR's `DENIED`) can be answered with a fresh token at once.
    challenges: Mutex<HashMap<String, Challenge>>,
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
            challenges: Mutex::default(),
            basic: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        lock(&self.tokens).remove(repository);
    }

    /// What to send first for `repository`.
    pub(crate) fn get(&self, repository: &str) -> Cached {
        let now = Instant::now();
        let mut tokens = lock(&self.tokens);
        match tokens.get(repository) {
            Some((token, expires)) if *expires > now => return Cached::Bearer(token.clone()),
            Some(_) => {
                tokens.remove(repository);
            }
            None => {}
        }
        drop(tokens);
        match &*lock(&self.basic) {
            Some(b) => Cached::Basic(b.clone()),
            None => Cached::None,
        }
    }

    /// Keeps `token` for `repository` for `lifetime`, less the margin.
    pub(crate) fn put_token(&self, repository: &str, token: Secret, lifetime: Duration) {
        let margin = EXPIRY_MARGIN.min(lifetime / 2);
        let expires = Instant::now() + lifetime - margin;
        lock(&self.tokens).insert(repository.to_owned(), (token, expires));
    }

    /// Remembers the Bearer challenge `repository` was last answered with.
    pub(crate) fn put_challenge(&self, repository: &str, challenge: &Challenge) {
        lock(&self.challenges).insert(repository.to_owned(), challenge.clone());
    }

    /// The Bearer challenge `repository` was last answered with.
    pub(crate) fn challenge(&self, repository: &str) -> Option<Challenge> {
        lock(&self.challenges).get(repository).cloned()
    }

    /// Sends `value` as Basic from now on (`None`: stop).
    pub(crate) fn put_basic(&self, value: Option<Secret>) {
        *lock(&self.basic) = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn answer(json: &str, now: i64) -> Option<(String, Duration)> {
        let t: TokenResponse = serde_json::from_str(json).unwrap();
        t.into_token(now).map(|(s, d)| (s.expose().to_owned(), d))
    }

    #[test]
    fn token_answers_of_every_shape() {
        let now = 1_796_140_647; // 2026-12-01T15:57:27Z
        // Docker Hub: both fields, 300 s, issued_at with nanoseconds, just now.
        assert_eq!(
            answer(
                r#"{"token":"t","access_token":"t","expires_in":300,"issued_at":"2026-12-01T15:57:27.123456789Z"}"#,
                now
            ),
            Some(("t".into(), Duration::from_secs(300)))
        );
        // Issued 250 s ago: 50 s left, not 300.
        assert_eq!(
            answer(
                r#"{"token":"t","expires_in":300,"issued_at":"2026-12-01T15:53:17Z"}"#,
                now
            ),
            Some(("t".into(), Duration::from_secs(50)))
        );
        // Dead on arrival by our clock: a clock that disagrees, counted from receipt.
        assert_eq!(
            answer(
                r#"{"token":"t","expires_in":300,"issued_at":"2026-12-01T10:00:00Z"}"#,
                now
            ),
            Some(("t".into(), Duration::from_secs(300)))
        );
        // Quay and GHCR: `token` only, no lifetime: the spec's 60 s.
        assert_eq!(
            answer(r#"{"token":"q"}"#, now),
            Some(("q".into(), DEFAULT_TOKEN_LIFETIME))
        );
        // ACR: `access_token` only.
        assert_eq!(
            answer(r#"{"access_token":"a","expires_in":4500}"#, now),
            Some(("a".into(), Duration::from_secs(4500)))
        );
        // A short life is kept short: never longer than the token lives.
        assert_eq!(
            answer(r#"{"token":"a","access_token":"b","expires_in":5}"#, now),
            Some(("b".into(), Duration::from_secs(5)))
        );
        assert_eq!(answer(r#"{"token":""}"#, now), None);
        assert_eq!(answer(r#"{"details":"no"}"#, now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_expire_early() {
        let cache = AuthCache::default();
        cache.put_token("a", Secret::new("t"), Duration::from_secs(60));
        assert!(matches!(cache.get("a"), Cached::Bearer(_)));
        tokio::time::advance(Duration::from_secs(51)).await;
        assert!(matches!(cache.get("a"), Cached::None));
        // A 5 s token is sent for 2.5 s.
        cache.put_token("b", Secret::new("t"), Duration::from_secs(5));
        tokio::time::advance(Duration::from_millis(2400)).await;
        assert!(matches!(cache.get("b"), Cached::Bearer(_)));
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(matches!(cache.get("b"), Cached::None));
        cache.put_basic(Some(Secret::new("Basic x")));
        assert!(matches!(cache.get("a"), Cached::Basic(_)));
    }
}
