//! Fetching content: manifests by tag or digest, the digest a tag points to, and config blobs,
//! each checked against its digest (registry-protocol.md §3–4).
//!
//! Where registries leave the digest out, it is computed:
//! - ECR and ECR Public send no `Docker-Content-Digest` on a manifest GET: the digest is that of
//!   the bytes (for signed schema1, of the canonical payload). When the header is present it must
//!   agree with the bytes, or the answer is refused.
//! - registry.redhat.io and some Nexus setups send no `Docker-Content-Digest` on HEAD, and Nexus
//!   and some Harbor setups refuse HEAD outright (404/405) while GET works: the tag is then read
//!   with one GET.

use reqwest::Method;

use super::manifest::{self, Descriptor, Manifest};
use super::session::Call;
use super::{Client, Digest, Error, Fetched, Reference, Repository, bad, digested_payload};
use crate::metrics::Kind;

impl Client {
    /// Fetches one manifest by tag or digest and checks its digest.
    pub async fn manifest(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<Fetched, Error> {
        let what = self.what_manifest(repo, reference);
        let call = Call {
            what: &what,
            kind: Kind::manifest_get,
            method: Method::GET,
            url: self.url(&format!("{repo}/manifests/{reference}")),
            accept: Some(manifest::ACCEPT),
            limit: self.limits.max_manifest_bytes,
        };
        let answer = self.request(&call, repo).await?;
        let content_type = answer
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let manifest = Manifest::parse(content_type, &answer.body).map_err(|e| match e {
            manifest::ManifestError::Unsupported(media_type) => Error::Unsupported {
                what: what.clone(),
                media_type,
            },
            other => bad(&what, other.to_string()),
        })?;
        let payload = digested_payload(&manifest, &answer.body);
        let hashed = payload.as_deref().unwrap_or(&answer.body);
        let digest = match reference {
            Reference::Digest(wanted) => {
                if !wanted.verifies(hashed) {
                    return Err(bad(
                        &what,
                        format!("content does not match digest {wanted}"),
                    ));
                }
                wanted.clone()
            }
            Reference::Tag(_) => {
                let computed = Digest::sha256(hashed);
                let header = answer
                    .headers
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok());
                if let Some(claimed) = header.and_then(Digest::parse) {
                    if !claimed.verifies(hashed) {
                        return Err(bad(
                            &what,
                            format!(
                                "Docker-Content-Digest {claimed} does not match the content ({computed})"
                            ),
                        ));
                    }
                }
                computed
            }
        };
        Ok(Fetched {
            digest,
            bytes: answer.body,
            manifest,
        })
    }

    /// The digest a tag points to, from a `HEAD` (which Docker Hub does not count as a pull);
    /// `None` when the registry does not say or refuses HEAD, and the caller must `GET`.
    pub async fn head_manifest(
        &self,
        repo: &Repository,
        tag: &Reference,
    ) -> Result<Option<Digest>, Error> {
        match self.head(repo, tag).await {
            Ok(digest) => Ok(digest),
            // Nexus answers HEAD with 404 for tags it serves, others with 405: the GET decides
            // (and says "not found" itself when the tag really is gone).
            Err(Error::NotFound { .. } | Error::BadResponse { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether a manifest with `digest` is in `repo`: one `HEAD`, or one `GET` where HEAD is
    /// refused. Distribution 2.8 answers a digest it holds only as a blob (an image config) with
    /// 500 `UNKNOWN` where other registries say 404; after the retries, both mean no.
    pub async fn has_manifest(&self, repo: &Repository, digest: &Digest) -> Result<bool, Error> {
        let reference = Reference::Digest(digest.clone());
        let absent = |e: &Error| {
            matches!(
                e,
                Error::NotFound { .. }
                    | Error::Unavailable {
                        status: Some(500),
                        ..
                    }
            )
        };
        match self.head(repo, &reference).await {
            Ok(_) => Ok(true),
            Err(Error::Unavailable {
                status: Some(500), ..
            }) => Ok(false),
            // A 404 from a registry that refuses HEAD (Nexus) proves nothing: ask with GET.
            Err(Error::NotFound { .. } | Error::BadResponse { .. }) => {
                match self.manifest(repo, &reference).await {
                    Ok(_) => Ok(true),
                    Err(e) if absent(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The OCI 1.1 referrers of `digest`: the index the registry answers, or `None` where it has
    /// no referrers API (404, 400, 405, 406, or an answer that is not an index: GHCR redirects
    /// to its web UI). Harbor before 2.11 labels the index `application/json`.
    pub async fn referrers(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, Error> {
        let what = format!("referrers of {repo}@{digest} from {}", self.host);
        let call = Call {
            what: &what,
            kind: Kind::referrers,
            method: Method::GET,
            url: self.url(&format!("{repo}/referrers/{digest}")),
            accept: Some(manifest::OCI_INDEX),
            limit: self.limits.max_manifest_bytes,
        };
        match self.request(&call, repo).await {
            Ok(answer) => {
                let index = matches!(
                    Manifest::parse(None, &answer.body),
                    Ok(Manifest::Index { .. })
                );
                Ok(index.then_some(answer.body))
            }
            // A list past maxManifestBytes is read as none, as before it had its own error: the
            // signatures in it count for nothing, so `signedBy` refuses rather than passes.
            Err(Error::NotFound { .. } | Error::BadResponse { .. } | Error::TooLarge { .. }) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// One `HEAD` of a manifest: the `Docker-Content-Digest` it announced, if any.
    async fn head(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<Option<Digest>, Error> {
        let what = self.what_manifest(repo, reference);
        let call = Call {
            what: &what,
            kind: Kind::manifest_head,
            method: Method::HEAD,
            url: self.url(&format!("{repo}/manifests/{reference}")),
            accept: Some(manifest::ACCEPT),
            limit: 0,
        };
        let answer = self.request(&call, repo).await?;
        let header = answer
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok());
        Ok(header.and_then(Digest::parse))
    }

    /// Fetches a blob, checking its size and digest against the descriptor. Registries backed by
    /// object stores redirect to a presigned URL on another host; reqwest follows and drops our
    /// `Authorization` there, and the URL is never remembered (it expires in minutes).
    pub async fn blob(&self, repo: &Repository, descriptor: &Descriptor) -> Result<Vec<u8>, Error> {
        let what = format!("blob {repo}@{} from {}", descriptor.digest, self.host);
        let digest = Digest::parse(&descriptor.digest)
            .ok_or_else(|| bad(&what, format!("invalid digest {:?}", descriptor.digest)))?;
        let max = self.limits.max_config_bytes;
        if descriptor.size > max as u64 {
            return Err(bad(
                &what,
                format!(
                    "config of {} bytes exceeds the limit of {max} bytes",
                    descriptor.size
                ),
            ));
        }
        // Stop reading past the declared size (0 means the writer did not say).
        let limit = if descriptor.size > 0 {
            descriptor.size as usize
        } else {
            max
        };
        let call = Call {
            what: &what,
            kind: Kind::blob,
            method: Method::GET,
            url: self.url(&format!("{repo}/blobs/{digest}")),
            accept: None,
            limit,
        };
        let answer = self.request(&call, repo).await?;
        if descriptor.size > 0 && answer.body.len() as u64 != descriptor.size {
            return Err(bad(
                &what,
                format!(
                    "got {} bytes, descriptor says {}",
                    answer.body.len(),
                    descriptor.size
                ),
            ));
        }
        if !digest.verifies(&answer.body) {
            return Err(bad(
                &what,
                format!("content does not match digest {digest}"),
            ));
        }
        Ok(answer.body)
    }
}
