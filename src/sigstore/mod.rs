//! Keyless Sigstore signatures and attestations, verified offline against a pinned trust root
//! (keyless.md). Pure: bytes in, a verdict out; the service fetches and caches.
//!
//! - [`root`]: the `trusted_root.json` (the public-good one is built in).
//! - [`form`]: cosign's `.sig`/`.att` layers and Sigstore bundles, read into one [`form::Keyless`].
//! - [`tlog`]: the Rekor entry: signed entry timestamp, inclusion proof, checkpoint, binding.
//! - [`cert`]: the Fulcio leaf: identity, chain at the log's time, SCTs, signatures.
//!
//! [`check`] runs every step keyless.md §1–§5 lists and says which failed; [`Trust::signers`]
//! then names the configured identities a certificate satisfies. Authentic and wanted are two
//! questions: the answer reports both.

pub mod cert;
pub mod form;
pub mod root;
pub mod tlog;

use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde_json::Value;

use self::cert::{Identity, Leaf};
use self::form::{Content, Keyless};
use self::root::TrustedRoot;
use self::tlog::{Binding, Tlog};

/// The in-toto payload type.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// cosign 3's predicate for an image signature made as a DSSE statement (keyless.md §2).
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// `dimsum.trust.sigstore` and `dimsum.trust.identities`.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The root keyless signatures chain and log to.
    pub root: Arc<TrustedRoot>,
    /// Whether the leaf must carry a verified SCT.
    pub require_sct: bool,
    /// Who may sign.
    pub identities: Vec<IdentityPolicy>,
}

impl Default for Trust {
    fn default() -> Trust {
        // Parsed once: every configuration load starts from it.
        static PUBLIC_GOOD: LazyLock<Arc<TrustedRoot>> =
            LazyLock::new(|| Arc::new(TrustedRoot::public_good()));
        Trust {
            root: PUBLIC_GOOD.clone(),
            require_sct: true,
            identities: Vec::new(),
        }
    }
}

impl Trust {
    /// The configured identities `identity` satisfies.
    pub fn signers(&self, identity: &Identity) -> Vec<String> {
        self.identities
            .iter()
            .filter(|p| p.matches(identity))
            .map(|p| p.name.clone())
            .collect()
    }
}

/// An issuer or subject criterion.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to.
    Exact(String),
    /// Matched whole by (the pattern is anchored here; cosign's are not: keyless.md §4).
    Pattern(Regex),
}

impl Matcher {
    /// An anchored pattern.
    pub fn pattern(text: &str) -> Result<Matcher, regex::Error> {
        Regex::new(&format!("^(?:{text})$")).map(Matcher::Pattern)
    }

    fn matches(&self, value: Option<&str>) -> bool {
        match (self, value) {
            (Matcher::Exact(e), Some(v)) => e == v,
            (Matcher::Pattern(r), Some(v)) => r.is_match(v),
            (_, None) => false,
        }
    }
}

/// One `dimsum.trust.identities` entry.
#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    /// The name `signedBy` uses.
    pub name: String,
    /// The OIDC issuer.
    pub issuer: Matcher,
    /// The SAN.
    pub subject: Matcher,
    /// Fulcio claims that must be exactly these values.
    pub claims: Vec<(&'static str, String)>,
}

impl IdentityPolicy {
    fn matches(&self, id: &Identity) -> bool {
        self.issuer.matches(id.issuer.as_deref())
            && self.subject.matches(id.subject.as_deref())
            && self
                .claims
                .iter()
                .all(|(name, want)| id.claims.get(name) == Some(want))
    }
}

/// What [`check`] found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Who the certificate names, when it could be read.
    pub identity: Option<Identity>,
    /// The log's verified integrated time (Unix seconds).
    pub signed_at: Option<i64>,
    /// The log entry, when there is one.
    pub tlog: Option<Tlog>,
    /// The DSSE statement's predicate type.
    pub predicate_type: Option<String>,
    /// The in-toto statement, once authentic (for provenance).
    pub statement: Option<Value>,
    /// `Ok` when every check passed; else the first that failed, for a person to act on.
    pub authentic: Result<(), String>,
}

/// Runs every offline check of a keyless signature of `digest` (`sha256:…`).
pub fn check(trust: &Trust, sig: &Keyless, digest: &str) -> Checked {
    let predicate_type = statement(&sig.content).and_then(|s| {
        s.get("predicateType")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let mut out = Checked {
        identity: None,
        signed_at: None,
        tlog: sig.entry.as_ref().map(tlog::Entry::tlog),
        predicate_type,
        statement: None,
        authentic: Ok(()),
    };
    let leaf = match Leaf::from_der(sig.certificate.clone()) {
        Ok(leaf) => leaf,
        Err(e) => {
            out.authentic = Err(e);
            return out;
        }
    };
    out.identity = Some(leaf.identity.clone());
    match authentic(trust, sig, &leaf, digest) {
        Ok(time) => {
            out.signed_at = Some(time);
            out.statement = statement(&sig.content);
        }
        Err(e) => out.authentic = Err(e),
    }
    out
}

fn authentic(trust: &Trust, sig: &Keyless, leaf: &Leaf, digest: &str) -> Result<i64, String> {
    let entry = sig.entry.as_ref().ok_or_else(|| {
        "no transparency log entry: nothing proves when it was signed, so its short-lived certificate cannot be checked offline".to_owned()
    })?;
    let time = entry.verify(
        &trust.root,
        &Binding {
            payload: sig.content.payload(),
            signature: sig.content.signature(),
            certificate: leaf.der(),
        },
    )?;
    leaf.verify(&sig.content.signed(), sig.content.signature())?;
    let ca = leaf.chain(&trust.root, time)?;
    if trust.require_sct {
        leaf.check_sct(&trust.root, ca)
            .map_err(|e| format!("{e} (dimsum.trust.sigstore.requireSct)"))?;
    }
    names(&sig.content, digest)?;
    Ok(time)
}

/// The payload must be about `digest`.
pub(crate) fn names(content: &Content, digest: &str) -> Result<(), String> {
    match content {
        Content::Message { payload, .. } => {
            let named = serde_json::from_slice::<Value>(payload).ok().and_then(|p| {
                p.pointer("/critical/image/docker-manifest-digest")?
                    .as_str()
                    .map(str::to_owned)
            });
            match named {
                Some(n) if n == digest => Ok(()),
                Some(n) => Err(format!("the signed payload names another image ({n})")),
                None => Err("the signed payload names no image".to_owned()),
            }
        }
        Content::Dsse { payload_type, .. } => {
            if payload_type != IN_TOTO {
                return Err(format!(
                    "the DSSE payload type {payload_type:?} is not in-toto"
                ));
            }
            let statement = statement(content)
                .ok_or_else(|| "the DSSE payload is not an in-toto statement".to_owned())?;
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            let subjects = statement["subject"].as_array().cloned().unwrap_or_default();
            if subjects.iter().any(|s| s["digest"]["sha256"] == hex) {
                Ok(())
            } else {
                Err("the in-toto statement's subject is another artifact".to_owned())
            }
        }
    }
}

/// The in-toto statement of a DSSE content, if it is one.
pub(crate) fn statement(content: &Content) -> Option<Value> {
    match content {
        Content::Dsse {
            payload_type,
            payload,
            ..
        } if payload_type == IN_TOTO => serde_json::from_slice(payload).ok(),
        _ => None,
    }
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(t: i64) -> String {
    u64::try_from(t)
        .ok()
        .and_then(|s| {
            x509_cert::der::DateTime::from_unix_duration(std::time::Duration::from_secs(s)).ok()
        })
        .map_or_else(|| t.to_string(), |d| d.to_string())
}

#[cfg(test)]
mod tests;
