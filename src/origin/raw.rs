//! The parts of a manifest or index that say where an image came from and what refers to it,
//! read leniently from the registry's bytes (which stay opaque everywhere else): annotations,
//! descriptors with theirs, `artifactType`, the config's media type.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A descriptor with what origin reads of it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// OCI 1.1: the artifact's type (referrers list it).
    pub artifact_type: Option<String>,
    /// Annotations (string values only; others are skipped).
    #[serde(deserialize_with = "strings")]
    pub annotations: BTreeMap<String, String>,
}

/// A manifest or index.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Raw {
    /// The manifest's or index's own annotations.
    #[serde(deserialize_with = "strings")]
    pub annotations: BTreeMap<String, String>,
    /// An index's entries.
    pub manifests: Vec<Descriptor>,
    /// An image manifest's layers.
    pub layers: Vec<Descriptor>,
    /// An image manifest's config.
    pub config: Option<Descriptor>,
    /// OCI 1.1 `artifactType`.
    pub artifact_type: Option<String>,
}

impl Raw {
    /// Reads what it can; anything unreadable is empty.
    pub fn parse(bytes: &[u8]) -> Raw {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// What kind of artifact this is: `artifactType`, else the config's media type.
    pub fn kind(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or(self.config.as_ref().map(|c| c.media_type.as_str()))
    }
}

/// A map whose non-string values are dropped rather than failing the whole manifest.
fn strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient() {
        let raw = Raw::parse(
            br#"{"annotations":{"a":"1","n":2},"artifactType":"x","layers":[{"digest":"d","annotations":null}],"config":{"mediaType":"c"}}"#,
        );
        assert_eq!(raw.annotations.len(), 1);
        assert_eq!(raw.kind(), Some("x"));
        assert_eq!(raw.layers[0].digest, "d");
        assert!(Raw::parse(b"not json").manifests.is_empty());
        assert_eq!(
            Raw::parse(br#"{"config":{"mediaType":"c"}}"#).kind(),
            Some("c")
        );
    }
}
