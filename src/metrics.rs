//! Counters of what dimsum asks registries and how its caches answer, kept in a Prometheus
//! registry so tests can read them and `/metrics` can expose them.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// What an upstream request was for.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Kind {
    /// A token exchange at the realm.
    token,
    /// `GET` of a manifest.
    manifest_get,
    /// `HEAD` of a manifest (tag revalidation).
    manifest_head,
    /// `GET` of a blob.
    blob,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Upstream {
    account: String,
    kind: Kind,
    /// HTTP status, or `error` when no response came.
    status: String,
}

/// Which cache answered.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CacheName {
    /// tag → digest.
    tag,
    /// Manifests, configs and histories by digest.
    content,
    /// Recent not-found answers.
    negative,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLookup {
    cache: CacheName,
    result: &'static str,
}

/// The counters. Cheap to update from any task.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    upstream: Family<Upstream, Counter>,
    cache: Family<CacheLookup, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("dimsum");
        let upstream = Family::<Upstream, Counter>::default();
        registry.register(
            "upstream_requests",
            "Requests dimsum sent to registries",
            upstream.clone(),
        );
        let cache = Family::<CacheLookup, Counter>::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by cache and result (hit or miss)",
            cache.clone(),
        );
        Metrics {
            registry,
            upstream,
            cache,
        }
    }
}

impl Metrics {
    /// Counts one upstream request.
    pub fn upstream(&self, account: &str, kind: Kind, status: Option<u16>) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.upstream
            .get_or_create(&Upstream {
                account: account.to_owned(),
                kind,
                status,
            })
            .inc();
    }

    /// Upstream requests of `kind` for `account`, all statuses.
    pub fn upstream_count(&self, account: &str, kind: Kind) -> u64 {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        // Sum over statuses from the exposition itself, so what tests read is what /metrics shows.
        let needle = format!("account=\"{account}\",kind=\"{kind:?}\"");
        text.lines()
            .filter(|l| l.starts_with("dimsum_upstream_requests_total{") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Counts one cache lookup.
    pub fn cache(&self, cache: CacheName, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .get_or_create(&CacheLookup { cache, result })
            .inc();
    }

    /// Hits or misses of a cache so far.
    pub fn cache_count(&self, cache: CacheName, hit: bool) -> u64 {
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .get(&CacheLookup { cache, result })
            .map_or(0, |c| c.get())
    }

    /// The registry, for registering more metrics and for exposition.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
