//! Registry notifications → what they say about tags, for `POST /events`. Pure: parsing only.
//!
//! Formats (facts and captures in `shared/docs/events.md`):
//! - **Distribution** (Docker Distribution 2.x, GitLab's registry): an envelope
//!   `{"events":[…]}`; **ACR** posts one such event without the envelope. A manifest `push` with a
//!   `tag` moves the tag to `target.digest`; `delete` names a tag or a manifest digest. Pulls,
//!   blob pushes and pushes by digest alone (an index's children) change nothing: dimsum's own
//!   fetches cause pull events, and reacting to them would loop.
//! - **Harbor** 2.x, default payload (`type: PUSH_ARTIFACT`, `event_data`) and CloudEvents
//!   (`specversion`, `type: harbor.artifact.pushed`, `data`).
//! - **Quay** "Push to Repository": `repository`, `docker_url` and `updated_tags`, without
//!   digests, so each tag is only known to have moved.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::registry::manifest;

/// Which payload shape a body had (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Docker Distribution's envelope, or one event of that shape (ACR).
    Distribution,
    /// Harbor's default payload.
    Harbor,
    /// Harbor's CloudEvents payload.
    CloudEvents,
    /// Quay's repository push notification.
    Quay,
}

impl Format {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Format::Distribution => "distribution",
            Format::Harbor => "harbor",
            Format::CloudEvents => "cloudevents",
            Format::Quay => "quay",
        }
    }
}

/// One thing a registry said about one repository. Serialised to pass it on to other replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The registry host the event names (`host[:port]`, as the pusher used it), to find the
    /// account when the URL names none.
    pub host: Option<String>,
    /// The repository, without the host.
    pub repository: String,
    /// What happened.
    pub change: Change,
}

/// What happened to the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A manifest was pushed under `tag`; `digest` is the manifest's, when the registry says.
    Pushed {
        /// The tag.
        tag: String,
        /// `sha256:…` of the pushed manifest (Quay gives none).
        digest: Option<String>,
    },
    /// The tag was deleted.
    TagDeleted {
        /// The tag.
        tag: String,
    },
    /// The manifest with this digest was deleted (and with it, every tag naming it).
    ManifestDeleted {
        /// `sha256:…`.
        digest: String,
    },
    /// Nothing dimsum keeps changed.
    Ignored(Ignored),
}

/// Why an event changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ignored {
    /// A pull (dimsum's own fetches cause these).
    Pull,
    /// A blob, or a manifest that is not an image, index or schema1 manifest.
    NotAManifest,
    /// A manifest pushed by digest alone: content, not a tag.
    Untagged,
    /// Another kind of event (scans, quotas, replication…).
    Other,
}

impl Change {
    /// The metrics label for the action.
    pub fn label(&self) -> &'static str {
        match self {
            Change::Pushed { .. } => "push",
            Change::TagDeleted { .. } | Change::ManifestDeleted { .. } => "delete",
            Change::Ignored(Ignored::Pull) => "pull",
            Change::Ignored(Ignored::NotAManifest) => "blob",
            Change::Ignored(Ignored::Untagged) => "untagged",
            Change::Ignored(Ignored::Other) => "other",
        }
    }
}

/// Why a body is not a notification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but none of the formats dimsum knows.
    #[error(
        "not a registry notification dimsum knows (Distribution, ACR, Harbor, Harbor CloudEvents or Quay)"
    )]
    Unknown,
    /// A known format with a field of the wrong shape.
    #[error("malformed {format} notification: {detail}")]
    Malformed {
        /// The format's label.
        format: &'static str,
        /// serde's message.
        detail: String,
    },
}

/// Parses one request body.
pub fn parse(body: &[u8]) -> Result<(Format, Vec<Notice>), Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::NotJson(e.to_string()))?;
    let has = |key: &str| value.get(key).is_some();
    let format = if has("events") {
        Format::Distribution
    } else if has("target") && has("action") {
        // ACR: one Distribution event, no envelope.
        let event = typed::<DistributionEvent>(Format::Distribution, value)?;
        return Ok((Format::Distribution, vec![event.notice()]));
    } else if has("specversion") {
        Format::CloudEvents
    } else if has("event_data") {
        Format::Harbor
    } else if has("updated_tags") {
        Format::Quay
    } else {
        return Err(Error::Unknown);
    };
    let notices = match format {
        Format::Distribution => typed::<Envelope>(format, value)?
            .events
            .iter()
            .map(DistributionEvent::notice)
            .collect(),
        Format::Harbor => {
            let h = typed::<HarborDefault>(format, value)?;
            h.event_data.notices(harbor_kind(&h.kind))
        }
        Format::CloudEvents => {
            let c = typed::<CloudEvent>(format, value)?;
            c.data.notices(harbor_kind(&c.kind))
        }
        Format::Quay => typed::<Quay>(format, value)?.notices(),
    };
    Ok((format, notices))
}

fn typed<T: for<'de> Deserialize<'de>>(format: Format, value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::Malformed {
        format: format.label(),
        detail: e.to_string(),
    })
}

/// `host[:port]` of `url` (`scheme://host/…` or `host/…`).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_owned())
}

#[derive(Deserialize)]
struct Envelope {
    events: Vec<DistributionEvent>,
}

#[derive(Deserialize)]
struct DistributionEvent {
    action: String,
    target: Target,
    #[serde(default)]
    request: Request,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    digest: Option<String>,
    repository: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Default, Deserialize)]
struct Request {
    #[serde(default)]
    host: Option<String>,
}

impl DistributionEvent {
    fn notice(&self) -> Notice {
        let t = &self.target;
        let host = (self.request.host.clone())
            .filter(|h| !h.is_empty())
            .or_else(|| t.url.as_deref().and_then(host_of));
        let tag = t.tag.clone().filter(|t| !t.is_empty());
        let is_manifest = manifest::ACCEPTED.contains(&t.media_type.as_str());
        let change = match (self.action.as_str(), tag, t.digest.clone()) {
            ("pull", ..) => Change::Ignored(Ignored::Pull),
            // A delete names no media type: a tag, or a manifest by digest (blob deletes are
            // not announced by Distribution).
            ("delete", Some(tag), _) => Change::TagDeleted { tag },
            ("delete", None, Some(digest)) => Change::ManifestDeleted { digest },
            ("push", _, _) if !is_manifest => Change::Ignored(Ignored::NotAManifest),
            ("push", Some(tag), digest) => Change::Pushed { tag, digest },
            ("push", None, _) => Change::Ignored(Ignored::Untagged),
            _ => Change::Ignored(Ignored::Other),
        };
        Notice {
            host,
            repository: t.repository.clone(),
            change,
        }
    }
}

/// What a Harbor event type means for tags.
#[derive(Clone, Copy)]
enum HarborKind {
    Push,
    Delete,
    Pull,
    Other,
}

fn harbor_kind(kind: &str) -> HarborKind {
    match kind {
        "PUSH_ARTIFACT" | "harbor.artifact.pushed" => HarborKind::Push,
        "DELETE_ARTIFACT" | "harbor.artifact.deleted" => HarborKind::Delete,
        "PULL_ARTIFACT" | "harbor.artifact.pulled" => HarborKind::Pull,
        _ => HarborKind::Other,
    }
}

#[derive(Deserialize)]
struct HarborDefault {
    #[serde(rename = "type")]
    kind: String,
    event_data: HarborData,
}

#[derive(Deserialize)]
struct CloudEvent {
    #[serde(rename = "type")]
    kind: String,
    data: HarborData,
}

#[derive(Deserialize)]
struct HarborData {
    #[serde(default)]
    resources: Vec<HarborResource>,
    repository: HarborRepository,
}

#[derive(Deserialize)]
struct HarborResource {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    resource_url: Option<String>,
}

#[derive(Deserialize)]
struct HarborRepository {
    repo_full_name: String,
}

impl HarborData {
    fn notices(&self, kind: HarborKind) -> Vec<Notice> {
        self.resources
            .iter()
            .map(|r| {
                // Harbor names a push by digest with the digest in `tag`.
                let tag = r
                    .tag
                    .clone()
                    .filter(|t| !t.is_empty() && !t.starts_with("sha256:"));
                let change = match (kind, tag, r.digest.clone()) {
                    (HarborKind::Push, Some(tag), digest) => Change::Pushed { tag, digest },
                    (HarborKind::Push, None, _) => Change::Ignored(Ignored::Untagged),
                    (HarborKind::Delete, _, Some(digest)) => Change::ManifestDeleted { digest },
                    (HarborKind::Delete, Some(tag), None) => Change::TagDeleted { tag },
                    (HarborKind::Pull, ..) => Change::Ignored(Ignored::Pull),
                    _ => Change::Ignored(Ignored::Other),
                };
                Notice {
                    host: r.resource_url.as_deref().and_then(host_of),
                    repository: self.repository.repo_full_name.clone(),
                    change,
                }
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct Quay {
    repository: String,
    #[serde(default)]
    docker_url: Option<String>,
    updated_tags: QuayTags,
}

/// A list of tag names; old Quay versions sent an object of tag → image id (not a digest).
#[derive(Deserialize)]
#[serde(untagged)]
enum QuayTags {
    List(Vec<String>),
    Map(serde_json::Map<String, Value>),
}

impl Quay {
    fn notices(&self) -> Vec<Notice> {
        let tags: Vec<String> = match &self.updated_tags {
            QuayTags::List(l) => l.clone(),
            QuayTags::Map(m) => m.keys().cloned().collect(),
        };
        tags.into_iter()
            .map(|tag| Notice {
                host: self.docker_url.as_deref().and_then(host_of),
                repository: self.repository.clone(),
                change: Change::Pushed { tag, digest: None },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
