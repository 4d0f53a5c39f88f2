//! A pull-only Docker/OCI registry client for one account. It knows nothing of RPC or history.
//!
//! # Layout
//!
//! - [`challenge`]: `WWW-Authenticate` parsing, in every shape registries send.
//! - [`token`]: token exchange answers and lifetimes, and the credentials held between requests.
//! - `session`: the request loop: retries, the auth state machine, redirects, error bodies and
//!   rate-limit headers. Its module doc lists each registry's bends and what we do about them.
//! - `fetch`: manifests, tag digests and blobs, each checked against its digest.
//! - [`manifest`], [`digest`], [`platform`], [`reference`]: the content model.
//! - [`error`]: registry errors, and the registry's own reason whatever the shape of its body.
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
//! Every request is bounded in size ([`Limits`]) and time (`clientTimeoutMillis`), and is retried a
//! bounded number of times with backoff on connection errors, 5xx and 429 (honouring a short
//! `Retry-After`). Redirects are followed up to five hops; reqwest drops `Authorization` when the
//! host, port or scheme changes, and we refuse a downgrade from `https` to `http`.

pub mod challenge;
pub mod digest;
pub mod error;
mod fetch;
pub mod manifest;
pub mod platform;
pub mod reference;
mod session;
mod tls;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

pub use self::digest::Digest;
pub use self::error::Error;
use self::manifest::{Descriptor, Manifest};
pub use self::platform::Platform;
pub use self::reference::{Reference, Repository};
use self::token::AuthCache;
use crate::credentials::Credentials;
use crate::metrics::Metrics;

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
    /// `host[:port]` as the address names it: how messages and `docker/image` artifacts name
    /// the registry.
    pub fn host(&self) -> String {
        let host = self.address.host_str().unwrap_or("");
        match self.address.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

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
        let host = endpoint.host();
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
}

fn bad(what: &str, detail: String) -> Error {
    Error::BadResponse {
        what: what.to_owned(),
        detail,
    }
}

/// An error and its sources on one line, without repeating a source the message already holds.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
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
