//! BuildKit provenance: which index entry attests which image, which of its layers is SLSA
//! provenance, and where revision and source sit in SLSA v0.2 and v1 (provenance.md).

use serde::Serialize;
use serde_json::Value;

use super::evidence::{Evidence, From};
use super::raw::{Descriptor, Raw};

/// BuildKit's attestation entries say which manifest they attest under one of these keys.
const REFERENCE_DIGEST: [&str; 2] = ["vnd.docker.reference.digest", "com.docker.reference.digest"];
/// The in-toto layer annotation naming its predicate.
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
/// SLSA provenance predicates (v0.2, v1, and what comes after) start with this.
const SLSA: &str = "https://slsa.dev/provenance/";
/// Where BuildKit's v0.2 metadata keeps the `vcs` hint.
const BUILDKIT_METADATA: &str = "https://mobyproject.org/buildkit@v1#metadata";

/// The provenance of one platform's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// `https://slsa.dev/provenance/v0.2` or `/v1`.
    pub predicate_type: String,
    /// The builder's id (build-push-action: the workflow run URL).
    pub builder_id: Option<String>,
    /// The revision: the verified `configSource` digest, else the `vcs` hint.
    pub revision: Option<String>,
    /// The source: the `configSource` URI, else the `vcs` hint.
    pub source: Option<String>,
    /// A git-context build's `configSource`, verified by BuildKit.
    pub config_source: Option<ConfigSource>,
}

/// `configSource`: where BuildKit fetched the build definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigSource {
    /// The repository URL.
    pub uri: Option<String>,
    /// The commit (`digest.sha1`).
    pub digest: Option<String>,
}

/// The attestation manifest of `image` listed in `index`, if any.
pub fn attestation_for<'a>(index: &'a Raw, image: &str) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| {
        d.annotations
            .get("vnd.docker.reference.type")
            .map(String::as_str)
            == Some("attestation-manifest")
            && REFERENCE_DIGEST
                .iter()
                .any(|k| d.annotations.get(*k).map(String::as_str) == Some(image))
    })
}

/// The SLSA provenance layers of an attestation manifest (SBOMs and other predicates skipped by
/// their annotation, before their blobs are fetched).
pub fn provenance_layers(attestation: &Raw) -> impl Iterator<Item = &Descriptor> {
    attestation.layers.iter().filter(|l| {
        l.annotations
            .get(PREDICATE_TYPE)
            .is_some_and(|t| t.starts_with(SLSA))
    })
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Reads an in-toto statement about `image` (`sha256:…`): the provenance and its candidates
/// (`configSource` before the `vcs` hint). `None` when it is not a SLSA provenance statement, or
/// its `subject` does not name this image: an index may list an attestation of another build,
/// and its revision must not be told as this image's.
pub fn read(statement: &[u8], image: &str) -> Option<(Provenance, Vec<Evidence>)> {
    read_value(&serde_json::from_slice(statement).ok()?, image)
}

/// [`read`] of a statement already parsed (a verified attestation's).
pub fn read_value(v: &Value, image: &str) -> Option<(Provenance, Vec<Evidence>)> {
    let hex = image.strip_prefix("sha256:")?;
    let about_image = v.get("subject")?.as_array()?.iter().any(|s| {
        s.pointer("/digest/sha256")
            .and_then(Value::as_str)
            .is_some_and(|d| d == hex)
    });
    if !about_image {
        return None;
    }
    let predicate_type = text(v, &["predicateType"]).filter(|t| t.starts_with(SLSA))?;
    let predicate = v.get("predicate")?;
    // (path to configSource, path to the vcs object, path to the builder id), by version.
    let (config_path, vcs_path, builder_path): (&[&str], &[&str], &[&str]) =
        if predicate_type.ends_with("/v0.2") {
            (
                &["invocation", "configSource"],
                &["metadata", BUILDKIT_METADATA, "vcs"],
                &["builder", "id"],
            )
        } else {
            (
                &["buildDefinition", "externalParameters", "configSource"],
                &["runDetails", "metadata", "buildkit_metadata", "vcs"],
                &["runDetails", "builder", "id"],
            )
        };
    let at = |path: &[&str], tail: &[&str]| {
        let mut full = path.to_vec();
        full.extend_from_slice(tail);
        (
            text(predicate, &full),
            format!("predicate.{}", full.join(".")),
        )
    };
    let (config_uri, config_uri_key) = at(config_path, &["uri"]);
    let (config_digest, config_digest_key) = at(config_path, &["digest", "sha1"]);
    let (vcs_revision, vcs_revision_key) = at(vcs_path, &["revision"]);
    let (vcs_source, vcs_source_key) = at(vcs_path, &["source"]);
    // GitHub's workflow build type (actions/attest-build-provenance, npm provenance): the
    // checked-out commit is the first resolved dependency, `git+<repo>@<ref>`.
    let dependency = predicate
        .pointer("/buildDefinition/resolvedDependencies/0")
        .filter(|_| !predicate_type.ends_with("/v0.2"));
    let git_commit = dependency
        .and_then(|d| d.pointer("/digest/gitCommit")?.as_str())
        .map(str::to_owned);
    let git_repository = dependency
        .and_then(|d| d.get("uri")?.as_str()?.strip_prefix("git+"))
        .map(|uri| uri.split_once('@').map_or(uri, |(repo, _)| repo).to_owned());
    let dependency_key = "predicate.buildDefinition.resolvedDependencies[0]";
    let mut evidence = Vec::new();
    for (field, value, key) in [
        ("revision", &config_digest, config_digest_key),
        (
            "revision",
            &git_commit,
            format!("{dependency_key}.digest.gitCommit"),
        ),
        ("revision", &vcs_revision, vcs_revision_key),
        ("source", &config_uri, config_uri_key),
        ("source", &git_repository, format!("{dependency_key}.uri")),
        ("source", &vcs_source, vcs_source_key),
    ] {
        if let Some(value) = value {
            evidence.push(Evidence {
                field,
                value: value.clone(),
                from: From::Provenance,
                key,
                verified: false,
                by: None,
            });
        }
    }
    let config_source = (config_uri.is_some() || config_digest.is_some()).then(|| ConfigSource {
        uri: config_uri.clone(),
        digest: config_digest.clone(),
    });
    let provenance = Provenance {
        builder_id: text(predicate, builder_path),
        revision: config_digest.or(git_commit).or(vcs_revision),
        source: config_uri.or(git_repository).or(vcs_source),
        config_source,
        predicate_type,
    };
    Some((provenance, evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slsa_v02_with_a_git_context_and_a_vcs_hint() {
        let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2",
          "subject":[{"name":"x","digest":{"sha256":"00"}}],
          "predicate":{"builder":{"id":"https://github.com/o/r/actions/runs/1"},
            "invocation":{"configSource":{"uri":"https://github.com/o/r.git#refs/heads/main","digest":{"sha1":"1111111111111111111111111111111111111111"},"entryPoint":"Dockerfile"}},
            "metadata":{"https://mobyproject.org/buildkit@v1#metadata":{"vcs":{"revision":"2222222222222222222222222222222222222222","source":"https://github.com/o/r"}}}}}"#;
        let (p, evidence) = read(statement, "sha256:00").unwrap();
        assert_eq!(p.predicate_type, "https://slsa.dev/provenance/v0.2");
        assert_eq!(
            p.builder_id.as_deref(),
            Some("https://github.com/o/r/actions/runs/1")
        );
        assert_eq!(
            p.revision.as_deref(),
            Some("1111111111111111111111111111111111111111")
        );
        assert_eq!(
            p.source.as_deref(),
            Some("https://github.com/o/r.git#refs/heads/main")
        );
        let keys: Vec<&str> = evidence.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "predicate.invocation.configSource.digest.sha1",
                "predicate.metadata.https://mobyproject.org/buildkit@v1#metadata.vcs.revision",
                "predicate.invocation.configSource.uri",
                "predicate.metadata.https://mobyproject.org/buildkit@v1#metadata.vcs.source",
            ]
        );
    }

    #[test]
    fn github_workflow_provenance() {
        // The predicate of a real GitHub Actions provenance (npm's, the same build type as
        // actions/attest-build-provenance), its subject rewritten to an image digest.
        let bundle: Value = serde_json::from_slice(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sigstore/npm_slsa_bundle_v03.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let payload =
            crate::sigstore::tlog::b64(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
                .unwrap();
        let mut statement: Value = serde_json::from_slice(&payload).unwrap();
        statement["subject"] = serde_json::json!([{"digest": {"sha256": "cd"}}]);
        let (p, evidence) = read(&serde_json::to_vec(&statement).unwrap(), "sha256:cd").unwrap();
        assert_eq!(
            p.revision.as_deref(),
            Some("7d2900eca1c22b3f87c13987c8d4b7c9a29b733a")
        );
        assert_eq!(
            p.source.as_deref(),
            Some("https://github.com/sigstore/sigstore-js")
        );
        assert_eq!(
            p.builder_id.as_deref(),
            Some("https://github.com/actions/runner/github-hosted")
        );
        assert_eq!(
            evidence[0].key,
            "predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit"
        );
    }

    #[test]
    fn slsa_v1_with_the_vcs_hint_only() {
        let statement = br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1",
          "subject":[{"name":"x","digest":{"sha256":"ab"}}],
          "predicate":{"buildDefinition":{"externalParameters":{"request":{}}},
            "runDetails":{"builder":{"id":"b"},"metadata":{"buildkit_metadata":{"vcs":{"revision":"abc","source":"https://git/x"}}}}}}"#;
        let (p, evidence) = read(statement, "sha256:ab").unwrap();
        assert_eq!(p.revision.as_deref(), Some("abc"));
        assert_eq!(p.source.as_deref(), Some("https://git/x"));
        assert_eq!(p.config_source, None);
        assert_eq!(p.builder_id.as_deref(), Some("b"));
        assert_eq!(evidence.len(), 2);
        assert_eq!(
            evidence[0].key,
            "predicate.runDetails.metadata.buildkit_metadata.vcs.revision"
        );
        // About another image, an SBOM, or not JSON: no provenance.
        assert!(read(statement, "sha256:cd").is_none());
        assert!(
            read(
                br#"{"predicateType":"https://spdx.dev/Document","subject":[{"digest":{"sha256":"ab"}}],"predicate":{}}"#,
                "sha256:ab"
            )
            .is_none()
        );
        assert!(read(b"garbage", "sha256:ab").is_none());
    }
}
