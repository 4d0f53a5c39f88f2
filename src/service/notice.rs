//! Registry events applied to the caches, and how long a tag may be trusted.
//!
//! A push by tag sets tag → digest at once and forgets the repository's not-found answers; a
//! delete forgets the tag, or the manifest and every tag naming it. What an event says is also
//! kept for a while as *announced*, so a `HEAD` sent before the event cannot put the older
//! digest back when its answer arrives after it.
//!
//! **Freshness.** A tag is trusted for `cache.tagTtlSeconds` (default 1 s) from when the registry
//! was asked. With events configured, that trust holds only for accounts whose registry has sent
//! this process an event (any event: dimsum's own fetches cause pull events) within
//! `events.quietSeconds`; a registry that has gone quiet may have stopped notifying, so its
//! accounts fall back to live revalidation (1 s) until it is heard again. With a shared tier
//! that carries events (Redis), an event received by any replica is applied by all, and a replica
//! that cannot hear them (Redis down) falls back to live revalidation too.

use std::time::{Duration, Instant};

use super::Dimsum;
use crate::cache::{ANNOUNCED_FOR, Dated, LIVE, TagKey};
use crate::error::Error;
use crate::events::{Change, Notice};
use crate::registry::{DOCKER_HUB_HOSTS, Digest, Reference, Repository};

/// What applying one notice did (a metrics label, and whether to pre-fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The tag moved (or may have): pre-fetch `repository:tag`.
    Pushed {
        /// The repository as the registry names it.
        repository: String,
        /// The tag.
        tag: String,
    },
    /// A tag or manifest was forgotten.
    Deleted,
    /// Nothing changed (pulls, blobs, pushes by digest, other event types).
    Ignored,
    /// The event named a repository, tag or digest that is not well formed.
    Invalid,
}

impl Applied {
    /// The metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Applied::Pushed { .. } | Applied::Deleted => "applied",
            Applied::Ignored => "ignored",
            Applied::Invalid => "invalid",
        }
    }
}

/// Why an event's account cannot be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountMatch {
    /// `?account=` names no account.
    #[error("unknown account {0:?}")]
    Unknown(String),
    /// No account's address has the event's host.
    #[error("no account has the registry host {host:?} (addresses: {})", .addresses.join(", "))]
    NoHost {
        /// The event's host.
        host: String,
        /// The configured addresses.
        addresses: Vec<String>,
    },
    /// Several accounts have the event's host.
    #[error("several accounts have the registry host {host:?} ({}): name one with ?account=", .accounts.join(", "))]
    Ambiguous {
        /// The event's host.
        host: String,
        /// The candidates.
        accounts: Vec<String>,
    },
    /// Neither `?account=` nor a host in the event.
    #[error("the event names no registry host: name the account with ?account=")]
    NoHostInEvent,
}

/// The names a registry host goes by: `host:port` with the scheme's default port made explicit.
fn host_port(host: &str, default_port: u16) -> String {
    let host = host.to_ascii_lowercase();
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if has_port {
        host
    } else {
        format!("{host}:{default_port}")
    }
}

/// How often, at most, events that change nothing are passed on to the other replicas.
const PASS_ON_HEARD: Duration = Duration::from_secs(1);

impl Dimsum {
    /// How long a tag of `account` looked up now may be trusted.
    pub(super) fn tag_ttl(&self, account: &str) -> Duration {
        let ttl = self.cache_settings.tag_ttl;
        let deaf = self.shared().and_then(|s| s.hearing()) == Some(false);
        let quiet = self
            .events_quiet
            .is_some_and(|quiet| !self.caches.heard_within(account, quiet));
        if deaf || quiet { ttl.min(LIVE) } else { ttl }
    }

    /// The account an event is for: the one named, or the one whose address has `host`.
    pub fn event_account(
        &self,
        named: Option<&str>,
        host: Option<&str>,
    ) -> Result<String, AccountMatch> {
        if let Some(name) = named {
            return match self.accounts.contains_key(name) {
                true => Ok(name.to_owned()),
                false => Err(AccountMatch::Unknown(name.to_owned())),
            };
        }
        let host = host.ok_or(AccountMatch::NoHostInEvent)?;
        let matching: Vec<&String> = self
            .accounts
            .iter()
            .filter(|(_, a)| {
                let address = &a.spec.endpoint.address;
                // A host without a port in the event means the scheme's default port.
                let default = if address.scheme() == "http" { 80 } else { 443 };
                let port = address.port_or_known_default().unwrap_or(default);
                let theirs = host_port(host, default);
                let names = match a.spec.endpoint.is_docker_hub() {
                    true => DOCKER_HUB_HOSTS.map(|h| host_port(h, port)).to_vec(),
                    false => vec![host_port(address.host_str().unwrap_or(""), port)],
                };
                names.contains(&theirs)
            })
            .map(|(name, _)| name)
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(AccountMatch::NoHost {
                host: host.to_owned(),
                addresses: self
                    .accounts
                    .values()
                    .map(|a| a.spec.endpoint.address.to_string())
                    .collect(),
            }),
            many => Err(AccountMatch::Ambiguous {
                host: host.to_owned(),
                accounts: many.iter().map(|s| (*s).clone()).collect(),
            }),
        }
    }

    /// Applies one notice from `account`'s registry (an account [`Dimsum::event_account`] gave),
    /// here, in the shared tier, and (through it) on every other replica.
    pub async fn apply(&self, account: &str, notice: &Notice) -> Result<Applied, Error> {
        // An ignored event (a pull: one per fetch anybody makes) tells the others only that the
        // registry is heard, which `quietSeconds` measures in minutes: pass on one a second.
        let heard_lately = self.caches.heard_within(account, PASS_ON_HEARD);
        let applied = self.apply_here(account, notice, true).await?;
        let pass_on = match applied {
            Applied::Invalid => false,
            Applied::Ignored => !heard_lately,
            Applied::Pushed { .. } | Applied::Deleted => true,
        };
        if let (Some(shared), true) = (self.shared(), pass_on) {
            let event = serde_json::json!({"account": account, "notice": notice});
            shared.publish(&event.to_string()).await;
        }
        Ok(applied)
    }

    /// Applies an event another replica received and published (see [`Dimsum::apply`]): to this
    /// replica's memory only, the shared tier being up to date already.
    pub async fn apply_from_replica(&self, event: &str) -> Option<(String, Notice, Applied)> {
        #[derive(serde::Deserialize)]
        struct Event {
            account: String,
            notice: Notice,
        }
        let Event { account, notice } = serde_json::from_str(event).ok()?;
        let applied = self.apply_here(&account, &notice, false).await.ok()?;
        Some((account, notice, applied))
    }

    /// Applies one notice to memory and, when it comes from the registry, to the shared tier.
    async fn apply_here(
        &self,
        account: &str,
        notice: &Notice,
        from_registry: bool,
    ) -> Result<Applied, Error> {
        let a = self.account(account)?;
        self.caches.hear(&a.name);
        let Ok(repository) = Repository::parse(&notice.repository) else {
            return Ok(Applied::Invalid);
        };
        let repository = a.spec.endpoint.repository(&repository).to_string();
        let key = |tag: &str| -> Option<TagKey> {
            matches!(Reference::parse(tag), Ok(Reference::Tag(_))).then(|| TagKey {
                account: a.name.clone(),
                repository: repository.clone(),
                reference: tag.to_owned(),
            })
        };
        let now = Instant::now();
        let scope = a.scope(&repository);
        let shared = self.shared().filter(|_| from_registry);
        match &notice.change {
            Change::Pushed { tag, digest } => {
                let Some(key) = key(tag) else {
                    return Ok(Applied::Invalid);
                };
                match digest.as_deref().map(Digest::parse) {
                    Some(None) => return Ok(Applied::Invalid),
                    Some(Some(digest)) => {
                        if let Some(shared) = shared {
                            let ttl = self.tag_ttl(account);
                            shared.put_tag(&scope, tag, &digest, ttl).await;
                        }
                        self.announce(key, Some(digest), now).await;
                    }
                    // Moved, to where it does not say (Quay): the next lookup asks.
                    None => {
                        if let Some(shared) = shared {
                            shared.forget_tag(&scope, tag).await;
                        }
                        self.caches.forget_tags({
                            let key = key.clone();
                            move |k, _| *k == key
                        });
                    }
                }
                if let Some(shared) = shared {
                    shared.forget_not_found(&scope, &format!("{tag} ")).await;
                }
                // Whatever was missing in this repository may exist now.
                let (name, repo) = (a.name.clone(), repository.clone());
                self.caches.forget_tags(move |k, v| {
                    v.is_none() && k.account == name && k.repository == repo
                });
                Ok(Applied::Pushed {
                    repository,
                    tag: tag.clone(),
                })
            }
            Change::TagDeleted { tag } => {
                let Some(key) = key(tag) else {
                    return Ok(Applied::Invalid);
                };
                if let Some(shared) = shared {
                    shared.forget_tag(&scope, tag).await;
                }
                self.announce(key, None, now).await;
                Ok(Applied::Deleted)
            }
            Change::ManifestDeleted { digest } => {
                let Some(digest) = Digest::parse(digest) else {
                    return Ok(Applied::Invalid);
                };
                if let Some(shared) = shared {
                    // The tags this process knows named it; the others expire with their trust.
                    for tag in self.caches.tags_naming(&a.name, &repository, &digest) {
                        shared.forget_tag(&scope, &tag).await;
                    }
                }
                self.caches.forget_manifest(&a.name, &repository, &digest);
                Ok(Applied::Deleted)
            }
            Change::Ignored(_) => Ok(Applied::Ignored),
        }
    }

    /// Records what an event said a tag is now (`None`: deleted).
    async fn announce(&self, key: TagKey, digest: Option<Digest>, now: Instant) {
        let caches = &self.caches;
        caches
            .announced
            .insert(key.clone(), Dated::new(digest.clone(), now, ANNOUNCED_FOR))
            .await;
        match digest {
            Some(digest) => {
                let ttl = self.tag_ttl(&key.account);
                caches.known.insert(key.clone(), digest.clone()).await;
                if let Some(tags) = &caches.tags {
                    tags.insert(key, Dated::new(digest, now, ttl)).await;
                }
            }
            None => {
                caches.known.invalidate(&key).await;
                if let Some(tags) = &caches.tags {
                    tags.invalidate(&key).await;
                }
            }
        }
    }

    /// Fetches a pushed tag's manifest, config and history, so its first lookup asks nothing.
    /// Shares fetches with lookups of the same content (single flight).
    pub async fn prefetch(&self, account: &str, repository: &str, tag: &str) -> Result<(), Error> {
        let req = super::ImageRequest {
            account,
            repository,
            reference: tag,
            platform: None,
            digest: None,
            signed_by: None,
        };
        self.history(req, crate::history::Options::default())
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn service(accounts: &str) -> Dimsum {
        with_settings("", accounts)
    }

    fn with_settings(settings: &str, accounts: &str) -> Dimsum {
        let yaml = format!("{settings}dockerRegistry:\n  accounts:\n{accounts}");
        let layer = crate::config::Layer::from_reader("t.yml", yaml.as_bytes(), &|_| None);
        Dimsum::new(&Config::from_layers(vec![layer.unwrap()]).unwrap())
    }

    #[test]
    fn an_event_finds_its_account_by_host() {
        let s = service(
            "  - {name: corp, address: \"https://Registry.example.com\"}\n  - {name: local, address: \"http://127.0.0.1:5000\"}\n  - {name: hub, address: \"https://index.docker.io\"}\n",
        );
        let found = |host: &str| s.event_account(None, Some(host));
        for host in [
            "registry.example.com",
            "registry.example.com:443",
            "REGISTRY.EXAMPLE.COM",
        ] {
            assert_eq!(found(host), Ok("corp".into()), "{host}");
        }
        assert_eq!(found("127.0.0.1:5000"), Ok("local".into()));
        assert_eq!(found("registry-1.docker.io"), Ok("hub".into()));
        assert_eq!(found("docker.io:443"), Ok("hub".into()));
        assert!(
            matches!(found("127.0.0.1"), Err(AccountMatch::NoHost { .. })),
            "port 80 is not 5000"
        );
        assert!(matches!(
            found("registry.example.com:5000"),
            Err(AccountMatch::NoHost { .. })
        ));
        assert_eq!(
            s.event_account(Some("local"), Some("elsewhere")),
            Ok("local".into())
        );
        assert_eq!(
            s.event_account(Some("nope"), None),
            Err(AccountMatch::Unknown("nope".into()))
        );
        assert_eq!(
            s.event_account(None, None),
            Err(AccountMatch::NoHostInEvent)
        );
    }

    #[test]
    fn two_accounts_on_one_registry_are_ambiguous() {
        let s = service(
            "  - {name: a, address: \"https://r.example.com\", username: x, password: y}\n  - {name: b, address: \"https://r.example.com/\"}\n",
        );
        match s.event_account(None, Some("r.example.com")) {
            Err(AccountMatch::Ambiguous { accounts, .. }) => assert_eq!(accounts, ["a", "b"]),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_long_tag_ttl_holds_only_while_the_registry_is_heard() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "0123456789abcdef0123").unwrap();
        let account = "  - {name: local, address: \"http://127.0.0.1:5000\"}\n";
        let long = "dimsum:\n  cache:\n    tagTtlSeconds: 300\n";
        let events = format!("{long}  events:\n    tokenFile: {}\n", token.display());
        let s = with_settings(&events, account);
        assert_eq!(s.tag_ttl("local"), LIVE, "never heard: live");
        let pull = Notice {
            host: None,
            repository: "team/app".into(),
            change: Change::Ignored(crate::events::Ignored::Pull),
        };
        assert_eq!(s.apply("local", &pull).await.unwrap(), Applied::Ignored);
        assert_eq!(
            s.tag_ttl("local"),
            Duration::from_secs(300),
            "heard: trusted"
        );
        let quiet = format!("{events}    quietSeconds: 0\n");
        let s = with_settings(&quiet, account);
        s.apply("local", &pull).await.unwrap();
        assert_eq!(
            s.tag_ttl("local"),
            LIVE,
            "quiet for longer than quietSeconds"
        );
        let s = with_settings(long, account);
        assert_eq!(
            s.tag_ttl("local"),
            Duration::from_secs(300),
            "no events: as configured"
        );
    }
}
