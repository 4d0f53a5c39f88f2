//! Live configuration: the service behind an atomic pointer, rebuilt from the same files on SIGHUP
//! or when a file changes. A file that does not load keeps the old configuration and logs one
//! error. Caches and counters survive a reload; cached content of accounts whose address or
//! credentials changed (or that were removed) is dropped, and so are their clients, tokens and
//! connections.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use crate::config::{Config, Settings, Who};
use crate::fiat::Caller;
use crate::service::Dimsum;

/// How often the configuration files are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// The current service and where its configuration comes from.
#[derive(Debug)]
pub struct Live {
    current: ArcSwap<Dimsum>,
    /// Who may call, reloaded with the rest.
    gates: ArcSwap<Gates>,
    sources: crate::config::Sources,
    /// `dimsum.triggers` as read at start (a reload does not change where pipelines are started).
    triggers: Option<crate::config::Triggers>,
    /// `services.fiat`, when enabled, as read at start.
    fiat: Option<Arc<crate::fiat::Fiat>>,
}

/// SHA-256 of the tokens callers must send, hashed once here so a check hashes only what the
/// caller sent.
#[derive(Debug, Default)]
struct Gates {
    /// `dimsum.auth.tokenFile`: callers of `serve`, `anonymous` to Fiat.
    api: Option<[u8; 32]>,
    /// `dimsum.auth.tokens`: callers who say who they are.
    callers: Vec<([u8; 32], Who)>,
    /// `dimsum.events.tokenFile`: registries posting to `/events`, and whether to pre-fetch.
    events: Option<([u8; 32], bool)>,
}

impl Gates {
    fn of(settings: &Settings) -> Gates {
        Gates {
            api: settings
                .api_token
                .as_ref()
                .map(|t| token_digest(t.expose())),
            callers: settings
                .callers
                .iter()
                .map(|c| (token_digest(c.token.expose()), c.who.clone()))
                .collect(),
            events: settings
                .events
                .as_ref()
                .map(|e| (token_digest(e.token.expose()), e.prefetch)),
        }
    }
}

/// What `POST /events` may do for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsAccess {
    /// Events are not configured: there is no such endpoint.
    Off,
    /// Configured, and the caller's token is missing or wrong.
    Denied,
    /// The caller may post events; pushed tags are pre-fetched if `prefetch`.
    Allowed {
        /// `events.prefetch`.
        prefetch: bool,
    },
}

impl Live {
    /// Serves `service` for the callers `settings` admit (its API and events tokens); `sources`
    /// are re-read on reload (none: the built-in default, fixed).
    pub fn new(
        service: Dimsum,
        settings: &Settings,
        sources: impl Into<crate::config::Sources>,
    ) -> Live {
        Live {
            current: ArcSwap::from_pointee(service),
            gates: ArcSwap::from_pointee(Gates::of(settings)),
            sources: sources.into(),
            triggers: settings.triggers.clone(),
            fiat: None,
        }
    }

    /// Checks account permissions with `fiat` from now on.
    pub fn with_fiat(mut self, fiat: Option<Arc<crate::fiat::Fiat>>) -> Live {
        self.fiat = fiat;
        self
    }

    /// Fiat, when `services.fiat.enabled`.
    pub fn fiat(&self) -> Option<&Arc<crate::fiat::Fiat>> {
        self.fiat.as_ref()
    }

    /// Who calls with `bearer` (the token after `Bearer `), `user` being `X-Dimsum-User`; `None`
    /// when the token is missing or wrong. With no token configured everyone is `anonymous`.
    /// A delegate token's caller is whoever `user` names (`anonymous` when it names nobody, or
    /// holds an unresolved `${…}`); any other token ignores `user`, and says so in the log.
    pub fn caller(&self, bearer: Option<&str>, user: Option<&str>) -> Option<Caller> {
        let gates = self.gates.load();
        let named = user
            .map(str::trim)
            .filter(|u| !u.is_empty() && !u.contains("${"));
        let ignoring = || {
            if user.is_some() {
                tracing::warn!("X-Dimsum-User ignored: only a delegate token may name the user");
            }
        };
        if let Some((_, who)) = gates.callers.iter().find(|(t, _)| matches(bearer, t)) {
            return Some(match who {
                Who::User(u) => {
                    ignoring();
                    Caller { user: u.clone() }
                }
                Who::Delegate => {
                    named.map_or_else(Caller::anonymous, |u| Caller { user: u.to_owned() })
                }
            });
        }
        let open = gates.api.is_none() && gates.callers.is_empty();
        if open || gates.api.as_ref().is_some_and(|t| matches(bearer, t)) {
            ignoring();
            return Some(Caller::anonymous());
        }
        None
    }

    /// `dimsum.triggers`, as read at start.
    pub fn triggers(&self) -> Option<&crate::config::Triggers> {
        self.triggers.as_ref()
    }

    /// What a registry presenting `token` (from `Authorization: Bearer` or `?token=`) may do at
    /// `/events`. Compared like the API token.
    pub fn events_access(&self, token: Option<&str>) -> EventsAccess {
        match &self.gates.load().events {
            None => EventsAccess::Off,
            Some((expected, prefetch)) if matches(token, expected) => EventsAccess::Allowed {
                prefetch: *prefetch,
            },
            Some(_) => EventsAccess::Denied,
        }
    }

    /// The service now. Cheap: an atomic load.
    pub fn current(&self) -> Arc<Dimsum> {
        self.current.load_full()
    }

    /// Loads the files again and swaps the new service in, or keeps the old one.
    pub fn reload(&self) -> Result<usize, crate::config::Error> {
        let metrics = self.current().metrics().clone();
        let result = Config::from_sources(&self.sources).map(|config| {
            let next = self.current().reconfigured(&config);
            (next, Gates::of(&config.settings))
        });
        match result {
            Ok((next, gates)) => {
                let accounts = next.account_names().len();
                self.current.store(Arc::new(next));
                self.gates.store(Arc::new(gates));
                metrics.reload(true);
                Ok(accounts)
            }
            Err(e) => {
                metrics.reload(false);
                Err(e)
            }
        }
    }

    /// The live service of a long-running transport (`serve`, `stdio`) for `config`: with Redis
    /// behind memory when `dimsum.redis` is set (else `disk`, if any), following the events
    /// other replicas publish. Starts tasks: call it inside the runtime.
    pub fn start(
        config: &Config,
        disk: Option<crate::cache::SharedTier>,
        metrics: Arc<crate::metrics::Metrics>,
        sources: impl Into<crate::config::Sources>,
    ) -> Arc<Live> {
        let shared = match &config.settings.redis {
            Some(redis) => Some(crate::cache::SharedTier::redis(redis, metrics.clone())),
            None => disk,
        };
        let replica_events = shared.as_ref().and_then(|s| s.replica_events());
        let service = Dimsum::with_shared(config, shared, metrics);
        let fiat =
            config.settings.fiat.as_ref().map(|settings| {
                Arc::new(crate::fiat::Fiat::new(settings, service.metrics().clone()))
            });
        let live = Arc::new(Live::new(service, &config.settings, sources).with_fiat(fiat));
        if let Some(events) = replica_events {
            tokio::spawn(live.clone().follow_replicas(events));
        }
        live
    }

    /// Applies the registry events other replicas publish, until the shared tier stops.
    pub async fn follow_replicas(self: Arc<Self>, mut events: tokio::sync::mpsc::Receiver<String>) {
        while let Some(event) = events.recv().await {
            let service = self.current();
            if let Some((account, notice, applied)) = service.apply_from_replica(&event).await {
                let action = notice.change.label();
                service
                    .metrics()
                    .event(&account, "replica", action, applied.label());
            }
        }
    }

    /// Reloads on SIGHUP and whenever a configuration file changes, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        if self.sources.paths.is_empty() {
            return shutdown.await;
        }
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = self.fingerprint();
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tokio::pin!(shutdown);
        loop {
            #[cfg(unix)]
            let hup = async {
                match hangup.as_mut() {
                    Some(s) => s.recv().await.map(|_| ()),
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup = std::future::pending::<Option<()>>();
            let why = tokio::select! {
                () = &mut shutdown => return,
                _ = hup => "SIGHUP",
                _ = tick.tick() => {
                    let now = self.fingerprint();
                    if now == seen { continue }
                    seen = now;
                    "a configuration file changed"
                }
            };
            match self.reload() {
                // Once each, through the log (JSON when the log is).
                Ok(accounts) => {
                    tracing::info!(accounts, "configuration reloaded ({why})");
                }
                Err(e) => {
                    tracing::error!(
                        "configuration not reloaded ({why}); keeping the previous one: {}",
                        one_line(&e)
                    );
                }
            }
        }
    }

    /// Modification time and length of each file (following symlinks, as Kubernetes ConfigMap
    /// updates swap them).
    fn fingerprint(&self) -> Vec<Option<(SystemTime, u64)>> {
        self.sources
            .paths
            .iter()
            .map(|p| {
                std::fs::metadata(p)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())))
            })
            .collect()
    }
}

/// Fixed-length digests compared in constant time leak neither the token's bytes nor its length.
fn matches(given: Option<&str>, expected: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq as _;
    given.is_some_and(|g| bool::from(token_digest(g.trim()).ct_eq(expected)))
}

fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

fn one_line(e: &crate::config::Error) -> String {
    e.to_string().replace('\n', "; ")
}
