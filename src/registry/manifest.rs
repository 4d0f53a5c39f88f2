//! Manifest media types, the one `Accept` list, and telling manifest kinds apart
//! (registry-protocol.md §1–§2).

use serde::Deserialize;

use super::digest::Digest;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema2 image manifest.
pub const DOCKER_SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema1, signed.
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema1, unsigned.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Every manifest type we read, on one line without q-values: GCR once matched the header
/// literally, and listing schema2/OCI is what stops a registry from converting to schema1.
/// Distribution compares these case-sensitively, so their case must never change.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.v1+prettyjws,application/vnd.docker.distribution.manifest.v1+json";

/// The manifest types of [`ACCEPT`], one by one (registry events are filtered by them).
pub const ACCEPTED: [&str; 6] = [
    OCI_INDEX,
    DOCKER_LIST,
    OCI_MANIFEST,
    DOCKER_SCHEMA2,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Content digest (validated after parsing).
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Platform, for index entries.
    #[serde(default)]
    pub platform: Option<PlatformSpec>,
}

/// An index entry's platform as written.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlatformSpec {
    /// e.g. `linux`.
    #[serde(default)]
    pub os: String,
    /// e.g. `amd64`.
    #[serde(default)]
    pub architecture: String,
    /// e.g. `v8`.
    #[serde(default)]
    pub variant: Option<String>,
}

/// The shape every manifest kind shares, enough to classify and use it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    schema_version: Option<i64>,
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    history: Option<Vec<V1History>>,
    signatures: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1History {
    v1_compatibility: String,
}

/// A parsed manifest.
#[derive(Debug, Clone)]
pub enum Manifest {
    /// OCI index or Docker manifest list.
    Index {
        /// The media type.
        media_type: &'static str,
        /// Its entries, in index order.
        manifests: Vec<Descriptor>,
    },
    /// OCI or Docker schema2 image manifest.
    Image {
        /// The media type.
        media_type: &'static str,
        /// The config descriptor.
        config: Descriptor,
        /// Layer digests in manifest order (validated).
        layers: Vec<String>,
    },
    /// Docker schema1 (signed or not): the history is already there.
    Schema1 {
        /// The media type.
        media_type: &'static str,
        /// `history[].v1Compatibility`, verbatim.
        history: Vec<String>,
    },
}

/// Why manifest bytes are not a manifest we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the expected shape.
    #[error("manifest is not valid JSON: {0}")]
    Invalid(String),
    /// `mediaType` in the body disagrees with `Content-Type`.
    #[error("manifest mediaType {body:?} disagrees with Content-Type {header:?}")]
    MediaTypeMismatch {
        /// From the body.
        body: String,
        /// From the header.
        header: String,
    },
    /// A media type or shape we do not read.
    #[error("unsupported manifest media type {0:?}")]
    Unsupported(String),
}

/// The media type of a `Content-Type` value, parameters dropped.
pub fn content_type_essence(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

fn known(media_type: &str) -> Option<&'static str> {
    ACCEPTED.into_iter().find(|m| *m == media_type)
}

impl Manifest {
    /// Classifies by `Content-Type` first; with `application/json`, none, or a type we do not know,
    /// by the body's own `mediaType`, then by its shape.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, ManifestError> {
        let probe: Probe =
            serde_json::from_slice(body).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        let header = content_type
            .map(content_type_essence)
            .filter(|c| !c.is_empty());
        let header_known = header.and_then(known);
        if let (Some(h), Some(b)) = (header_known, probe.media_type.as_deref()) {
            // Schema1 bodies carry no mediaType; for the others a disagreement is suspicious.
            if h != b {
                return Err(ManifestError::MediaTypeMismatch {
                    body: b.to_owned(),
                    header: h.to_owned(),
                });
            }
        }
        let media_type = match header_known.or_else(|| probe.media_type.as_deref().and_then(known))
        {
            Some(m) => m,
            None => match (&probe, probe.media_type.as_deref(), header) {
                (_, Some(other), _) => return Err(ManifestError::Unsupported(other.to_owned())),
                (p, None, _) if p.schema_version == Some(1) => {
                    if p.signatures.is_some() {
                        DOCKER_SCHEMA1_SIGNED
                    } else {
                        DOCKER_SCHEMA1
                    }
                }
                (p, None, _) if p.schema_version == Some(2) && p.manifests.is_some() => OCI_INDEX,
                (p, None, _) if p.schema_version == Some(2) && p.config.is_some() => OCI_MANIFEST,
                (_, None, h) => {
                    return Err(ManifestError::Unsupported(
                        h.unwrap_or("unknown").to_owned(),
                    ));
                }
            },
        };
        let missing = |what: &str| ManifestError::Invalid(format!("{media_type} without {what}"));
        Ok(match media_type {
            OCI_INDEX | DOCKER_LIST => Manifest::Index {
                media_type,
                manifests: probe.manifests.ok_or_else(|| missing("manifests"))?,
            },
            OCI_MANIFEST | DOCKER_SCHEMA2 => {
                let config = probe.config.ok_or_else(|| missing("config"))?;
                valid_digest(&config.digest)?;
                let layers = probe.layers.unwrap_or_default();
                for layer in &layers {
                    valid_digest(&layer.digest)?;
                }
                Manifest::Image {
                    media_type,
                    config,
                    layers: layers.into_iter().map(|l| l.digest).collect(),
                }
            }
            _ => {
                let history = probe.history.ok_or_else(|| missing("history"))?;
                Manifest::Schema1 {
                    media_type,
                    history: history.into_iter().map(|h| h.v1_compatibility).collect(),
                }
            }
        })
    }

    /// The media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            Manifest::Index { media_type, .. }
            | Manifest::Image { media_type, .. }
            | Manifest::Schema1 { media_type, .. } => media_type,
        }
    }
}

fn valid_digest(d: &str) -> Result<Digest, ManifestError> {
    Digest::parse(d).ok_or_else(|| ManifestError::Invalid(format!("invalid digest {d:?}")))
}

/// The config type Docker clients before 1.11 wrote; Distribution converts such images, so
/// their config is read when its bytes are an image config ([`is_image_config`]).
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Whether a config of `media_type` with these bytes is an image config (anything else is an
/// artifact we refuse). An empty type is accepted: old schema2 writers omitted it. An
/// `application/octet-stream` one must say so itself: a JSON object with `rootfs.type` `layers`,
/// which every image config has and no artifact's config does.
pub fn is_image_config(media_type: &str, bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    match media_type {
        DOCKER_CONFIG | OCI_CONFIG | "" => true,
        OCTET_STREAM => {
            serde_json::from_slice::<Config>(bytes).is_ok_and(|c| c.rootfs.kind == "layers")
        }
        _ => false,
    }
}

/// Whether a config of `media_type` may be an image config, so its bytes are worth fetching.
pub fn may_be_image_config(media_type: &str) -> bool {
    matches!(media_type, DOCKER_CONFIG | OCI_CONFIG | "" | OCTET_STREAM)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = include_bytes!("../../tests/fixtures/vectors/a.manifest.json");

    #[test]
    fn an_octet_stream_config_must_be_an_image_config() {
        let old = br#"{"architecture":"amd64","config":{},"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert!(is_image_config(OCTET_STREAM, old));
        assert!(!is_image_config(OCTET_STREAM, b"{}"));
        assert!(!is_image_config(OCTET_STREAM, b"\x1f\x8b binary"));
        assert!(!is_image_config(
            OCTET_STREAM,
            br#"{"rootfs":{"type":"other"}}"#
        ));
        assert!(is_image_config(
            DOCKER_CONFIG,
            b"anything: the type says so"
        ));
        assert!(!is_image_config(
            "application/vnd.cncf.helm.config.v1+json",
            old
        ));
    }

    #[test]
    fn accept_lists_the_accepted_types() {
        assert_eq!(ACCEPT, ACCEPTED.join(","));
    }

    #[test]
    fn classify_by_header_then_body_then_shape() {
        let m = Manifest::parse(
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=x"),
            A,
        )
        .unwrap();
        assert!(
            matches!(m, Manifest::Image { media_type: DOCKER_SCHEMA2, ref layers, .. } if layers.len() == 1)
        );
        assert!(matches!(
            Manifest::parse(Some("application/json"), A),
            Ok(Manifest::Image {
                media_type: DOCKER_SCHEMA2,
                ..
            })
        ));
        assert_eq!(
            Manifest::parse(Some(OCI_MANIFEST), A).unwrap_err(),
            ManifestError::MediaTypeMismatch {
                body: DOCKER_SCHEMA2.into(),
                header: OCI_MANIFEST.into()
            }
        );
        let index = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:x","platform":{"os":"linux","architecture":"amd64"}}]}"#;
        assert!(matches!(
            Manifest::parse(None, index),
            Ok(Manifest::Index {
                media_type: OCI_INDEX,
                ..
            })
        ));
        let v1 = br#"{"schemaVersion":1,"history":[{"v1Compatibility":"{\"id\":\"x\"}"}],"signatures":[]}"#;
        match Manifest::parse(None, v1).unwrap() {
            Manifest::Schema1 {
                media_type,
                history,
            } => {
                assert_eq!(media_type, DOCKER_SCHEMA1_SIGNED);
                assert_eq!(history, [r#"{"id":"x"}"#]);
            }
            other => panic!("{other:?}"),
        }
        let helm = br#"{"schemaVersion":2,"mediaType":"application/vnd.cncf.helm.chart.v1+json"}"#;
        assert!(matches!(
            Manifest::parse(None, helm),
            Err(ManifestError::Unsupported(_))
        ));
        assert!(matches!(
            Manifest::parse(None, b"<html>"),
            Err(ManifestError::Invalid(_))
        ));
        let bad_layer = br#"{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"layers":[{"digest":"nope"}]}"#;
        assert!(matches!(
            Manifest::parse(None, bad_layer),
            Err(ManifestError::Invalid(_))
        ));
    }
}
