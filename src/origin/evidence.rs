//! Candidates for each origin field, where they were found, and which one wins.
//!
//! The most specific to this build wins (provenance.md): the manifest's annotations, then the
//! index descriptor's, then BuildKit provenance (a verified git-context `configSource` before the
//! unverified `vcs` hint), then the index's annotations, then config labels — OCI keys, then Label
//! Schema, then spellings seen in real images. Labels come last because they are inherited from
//! the base image: a `revision` label can describe somebody else's build. Annotations are not
//! inherited.

use std::collections::BTreeMap;

use serde::Serialize;

/// Where a candidate was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum From {
    /// A SLSA provenance attestation a configured identity signed.
    SignedProvenance,
    /// The Fulcio certificate of a signature a configured identity made.
    Certificate,
    /// `manifest.annotations`.
    ManifestAnnotation,
    /// `index.manifests[i].annotations` of the chosen entry.
    DescriptorAnnotation,
    /// The BuildKit attestation's SLSA predicate.
    Provenance,
    /// `index.annotations`.
    IndexAnnotation,
    /// The config's `config.Labels`.
    Label,
    /// The config's own top-level field (`created`): what the builder recorded, the last resort.
    Config,
}

/// One candidate value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// `revision`, `source`, `created`, `version`, `url`, `baseName` or `baseDigest`.
    pub field: &'static str,
    /// The value as found.
    pub value: String,
    /// Where.
    pub from: From,
    /// The annotation or label key, the predicate path, or the certificate claim.
    pub key: String,
    /// Whether a configured key or identity vouches for it (a verified attestation or
    /// certificate).
    pub verified: bool,
    /// The configured name that does.
    pub by: Option<String>,
}

/// A field and the keys that carry it, best first.
struct Field {
    name: &'static str,
    /// `org.opencontainers.image.*` and `org.label-schema.*` keys (annotations and labels).
    standard: &'static [&'static str],
    /// Spellings seen in real images' labels, read only when the standard keys are absent.
    common: &'static [&'static str],
}

const FIELDS: [Field; 7] = [
    Field {
        name: "revision",
        standard: &[
            "org.opencontainers.image.revision",
            "org.label-schema.vcs-ref",
        ],
        common: &[
            "vcs-ref",
            "git-commit",
            "git_commit",
            "GIT_COMMIT",
            "gitCommit",
            "commit",
            "revision",
            "io.openshift.build.commit.id",
        ],
    },
    Field {
        name: "source",
        standard: &[
            "org.opencontainers.image.source",
            "org.label-schema.vcs-url",
        ],
        common: &[
            "vcs-url",
            "git-url",
            "source",
            "io.openshift.build.source-location",
        ],
    },
    Field {
        name: "created",
        standard: &[
            "org.opencontainers.image.created",
            "org.label-schema.build-date",
        ],
        common: &["build-date", "created"],
    },
    Field {
        name: "version",
        standard: &[
            "org.opencontainers.image.version",
            "org.label-schema.version",
        ],
        common: &["version"],
    },
    Field {
        name: "url",
        standard: &["org.opencontainers.image.url", "org.label-schema.url"],
        common: &["url"],
    },
    Field {
        name: "baseName",
        standard: &["org.opencontainers.image.base.name"],
        common: &[],
    },
    Field {
        name: "baseDigest",
        standard: &["org.opencontainers.image.base.digest"],
        common: &[],
    },
];

/// The field names, in the answer's order.
pub const FIELD_NAMES: [&str; 7] = [
    "revision",
    "source",
    "created",
    "version",
    "url",
    "baseName",
    "baseDigest",
];

/// What each place holds, for [`collect`].
#[derive(Debug, Default)]
pub struct Places<'a> {
    /// The image manifest's annotations.
    pub manifest: Option<&'a BTreeMap<String, String>>,
    /// The chosen index entry's annotations.
    pub descriptor: Option<&'a BTreeMap<String, String>>,
    /// Candidates from provenance, already ranked (`configSource` first).
    pub provenance: Vec<Evidence>,
    /// The index's annotations.
    pub index: Option<&'a BTreeMap<String, String>>,
    /// The config's labels (string values only).
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// The config's top-level `created`.
    pub config_created: Option<&'a str>,
}

/// Every candidate, best first for each field.
pub fn collect(places: &Places<'_>) -> Vec<Evidence> {
    let mut out = Vec::new();
    for field in &FIELDS {
        let from_map = |out: &mut Vec<Evidence>,
                        map: Option<&BTreeMap<String, String>>,
                        from: From,
                        keys: &[&str]| {
            let Some(map) = map else { return };
            for key in keys {
                if let Some(value) = map.get(*key).filter(|v| !v.trim().is_empty()) {
                    out.push(Evidence {
                        field: field.name,
                        value: value.clone(),
                        from,
                        key: (*key).to_owned(),
                        verified: false,
                        by: None,
                    });
                }
            }
        };
        from_map(
            &mut out,
            places.manifest,
            From::ManifestAnnotation,
            field.standard,
        );
        from_map(
            &mut out,
            places.descriptor,
            From::DescriptorAnnotation,
            field.standard,
        );
        out.extend(
            places
                .provenance
                .iter()
                .filter(|e| e.field == field.name)
                .cloned(),
        );
        from_map(
            &mut out,
            places.index,
            From::IndexAnnotation,
            field.standard,
        );
        from_map(&mut out, places.labels, From::Label, field.standard);
        from_map(&mut out, places.labels, From::Label, field.common);
    }
    // Go's zero time is what a builder writes when it records no time at all.
    let created = places
        .config_created
        .filter(|c| !c.trim().is_empty() && !c.starts_with("0001-01-01"));
    if let Some(created) = created {
        let at = out
            .iter()
            .rposition(|e| evidence_order(e.field) <= evidence_order("created"))
            .map_or(0, |i| i + 1);
        out.insert(
            at,
            Evidence {
                field: "created",
                value: created.to_owned(),
                from: From::Config,
                key: "created".to_owned(),
                verified: false,
                by: None,
            },
        );
    }
    out
}

/// A field's place in [`FIELD_NAMES`], which is the order evidence is listed in.
fn evidence_order(field: &str) -> usize {
    FIELD_NAMES
        .iter()
        .position(|f| *f == field)
        .unwrap_or(usize::MAX)
}

/// The winning value of `field`.
pub fn winner<'a>(evidence: &'a [Evidence], field: &str) -> Option<&'a str> {
    evidence
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.value.as_str())
}

/// Whether the `revision` candidates disagree. A short SHA agrees with the full one it begins,
/// and Flux's `<branch>@sha1:<sha>` with its SHA.
pub fn revisions_conflict(evidence: &[Evidence]) -> bool {
    let normal = |v: &str| {
        let v = v.rsplit_once("@sha1:").map_or(v, |(_, sha)| sha);
        v.trim().to_ascii_lowercase()
    };
    let revisions: Vec<String> = evidence
        .iter()
        .filter(|e| e.field == "revision")
        .map(|e| normal(&e.value))
        .collect();
    let agree = |a: &str, b: &str| {
        a == b || (a.len().min(b.len()) >= 7 && (a.starts_with(b) || b.starts_with(a)))
    };
    revisions
        .iter()
        .any(|a| revisions.iter().any(|b| !agree(a, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_most_specific_place_wins_and_labels_come_last() {
        let manifest = map(&[("org.opencontainers.image.source", "https://git/m")]);
        let descriptor = map(&[("org.opencontainers.image.revision", "d".repeat(40).as_str())]);
        let index = map(&[
            ("org.opencontainers.image.revision", "i".repeat(40).as_str()),
            ("org.opencontainers.image.version", "1.2.3"),
        ]);
        let labels = map(&[
            ("org.label-schema.vcs-ref", "labelschema"),
            ("git-commit", "common"),
            ("org.opencontainers.image.revision", "oci-label"),
            ("org.opencontainers.image.created", "2026-01-01T00:00:00Z"),
            ("unrelated", "x"),
        ]);
        let provenance = vec![Evidence {
            field: "revision",
            value: "p".repeat(40),
            from: From::Provenance,
            key: "predicate.invocation.configSource.digest.sha1".into(),
            verified: false,
            by: None,
        }];
        let evidence = collect(&Places {
            manifest: Some(&manifest),
            descriptor: Some(&descriptor),
            provenance,
            index: Some(&index),
            labels: Some(&labels),
            config_created: Some("2020-02-02T00:00:00Z"),
        });
        let revisions: Vec<(From, &str)> = evidence
            .iter()
            .filter(|e| e.field == "revision")
            .map(|e| (e.from, e.key.as_str()))
            .collect();
        assert_eq!(
            revisions,
            [
                (
                    From::DescriptorAnnotation,
                    "org.opencontainers.image.revision"
                ),
                (
                    From::Provenance,
                    "predicate.invocation.configSource.digest.sha1"
                ),
                (From::IndexAnnotation, "org.opencontainers.image.revision"),
                (From::Label, "org.opencontainers.image.revision"),
                (From::Label, "org.label-schema.vcs-ref"),
                (From::Label, "git-commit"),
            ]
        );
        assert_eq!(winner(&evidence, "revision"), Some("d".repeat(40).as_str()));
        assert_eq!(winner(&evidence, "source"), Some("https://git/m"));
        assert_eq!(winner(&evidence, "version"), Some("1.2.3"));
        assert_eq!(winner(&evidence, "created"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(winner(&evidence, "baseName"), None);
        assert!(revisions_conflict(&evidence));
        let created: Vec<From> = evidence
            .iter()
            .filter(|e| e.field == "created")
            .map(|e| e.from)
            .collect();
        assert_eq!(
            created,
            [From::Label, From::Config],
            "the config's own time comes last"
        );
    }

    #[test]
    fn the_config_created_is_the_fallback() {
        let none = BTreeMap::new();
        let places = |created| Places {
            labels: Some(&none),
            config_created: created,
            ..Places::default()
        };
        let evidence = collect(&places(Some("2015-03-01T10:00:00.123Z")));
        assert_eq!(
            winner(&evidence, "created"),
            Some("2015-03-01T10:00:00.123Z")
        );
        assert_eq!(evidence[0].from, From::Config);
        let zero = collect(&places(Some("0001-01-01T00:00:00Z")));
        assert_eq!(winner(&zero, "created"), None, "Go's zero time is no time");
        assert!(collect(&places(None)).is_empty());
    }

    #[test]
    fn agreeing_revisions_are_no_conflict() {
        let e = |v: &str| Evidence {
            field: "revision",
            value: v.into(),
            from: From::Label,
            key: "k".into(),
            verified: false,
            by: None,
        };
        let full = "0123456789abcdef0123456789abcdef01234567";
        assert!(!revisions_conflict(&[
            e(full),
            e("0123456"),
            e(&format!("main@sha1:{full}"))
        ]));
        assert!(!revisions_conflict(&[e(full)]));
        assert!(!revisions_conflict(&[]));
        assert!(revisions_conflict(&[e(full), e("fedcba9")]));
        // Too short to be a SHA prefix: only equal values agree.
        assert!(revisions_conflict(&[e("v1"), e("v12")]));
    }
}
