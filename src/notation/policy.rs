//! Notation's own configuration files, read as `notation verify` reads them (notation.md §7):
//! `trustpolicy.json` (version 1.0) and the trust store directory
//! `x509/{ca,signingAuthority,tsa}/<name>/*` (PEM, several per file, or DER). Invalid policies are
//! configuration errors naming the file and the policy.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// How a failed check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The signature does not verify.
    Enforce,
    /// It still verifies; the failure is reported.
    Log,
    /// Not checked.
    Skip,
}

/// The checks a level sets (integrity is always enforced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Trust store membership and trusted identity.
    pub authenticity: Action,
    /// The chain valid at an authentic time (now, without one).
    pub authentic_timestamp: Action,
    /// The signature's own expiry.
    pub expiry: Action,
    /// Revocation, which cannot be checked offline.
    pub revocation: Action,
}

/// A trust store's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StoreType {
    /// `ca`.
    Ca,
    /// `signingAuthority`.
    SigningAuthority,
    /// `tsa`.
    Tsa,
}

/// One trust policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name: what `signedBy` names.
    pub name: String,
    /// `registry/repository` scopes, or `*`.
    pub scopes: Vec<String>,
    /// `None` for the `skip` level.
    pub checks: Option<Checks>,
    /// `verifyTimestamp: afterCertExpiry` (else `always`).
    pub timestamp_after_expiry: bool,
    /// The trust stores named, with their certificates (DER).
    pub stores: Vec<(StoreType, String, Vec<Vec<u8>>)>,
    /// `None` for `*`; else the RDN sets, any of which the leaf's subject must include.
    pub identities: Option<Vec<Vec<(String, String)>>>,
}

/// `dimsum.trust.notation`, loaded.
#[derive(Debug, Clone, Default)]
pub struct Notation {
    /// The policies, in file order.
    pub policies: Vec<Policy>,
}

impl Notation {
    /// The one policy for `scope` (`registry/repository`): the exact scope, else `*`.
    pub fn policy_for(&self, scope: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .find(|p| p.scopes.iter().any(|s| s == scope))
            .or_else(|| {
                self.policies
                    .iter()
                    .find(|p| p.scopes.iter().any(|s| s == "*"))
            })
    }

    /// Reads `trustpolicy.json` and the stores it names under `store_dir`; every problem, each
    /// naming the file and policy.
    pub fn load(policy_file: &Path, store_dir: &Path) -> Result<Notation, Vec<String>> {
        let at = policy_file.display();
        let bytes = std::fs::read(policy_file)
            .map_err(|e| vec![format!("{at}: {}", crate::config::io_message(&e))])?;
        let raw: RawFile = serde_json::from_slice(&bytes)
            .map_err(|e| vec![format!("{at}: not a trust policy document: {e}")])?;
        let mut problems = Vec::new();
        if raw.version != "1.0" {
            problems.push(format!("{at}: version {:?} is not 1.0", raw.version));
        }
        let mut policies: Vec<Policy> = Vec::new();
        let mut scopes: BTreeMap<String, String> = BTreeMap::new();
        for p in raw.trust_policies {
            let name = p.name.clone();
            let mut fail = |why: String| problems.push(format!("{at}: policy {name:?}: {why}"));
            if name.is_empty() || policies.iter().any(|q| q.name == name) {
                fail("the name must be non-empty and unique".to_owned());
                continue;
            }
            if p.registry_scopes.is_empty() {
                fail("registryScopes is empty".to_owned());
            }
            if p.registry_scopes.len() > 1 && p.registry_scopes.iter().any(|s| s == "*") {
                fail("\"*\" must be the only scope of its policy".to_owned());
            }
            for scope in &p.registry_scopes {
                if scope != "*" && (!scope.contains('/') || scope.contains('@')) {
                    fail(format!("scope {scope:?} is not registry/repository"));
                }
                if let Some(other) = scopes.insert(scope.clone(), name.clone()) {
                    fail(format!("scope {scope:?} is also in policy {other:?}"));
                }
            }
            match policy(p, store_dir) {
                Ok(policy) => policies.push(policy),
                Err(why) => fail(why),
            }
        }
        if problems.is_empty() {
            Ok(Notation { policies })
        } else {
            Err(problems)
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFile {
    version: String,
    trust_policies: Vec<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPolicy {
    name: String,
    #[serde(default)]
    registry_scopes: Vec<String>,
    signature_verification: RawVerification,
    #[serde(default)]
    trust_stores: Vec<String>,
    #[serde(default)]
    trusted_identities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVerification {
    level: String,
    #[serde(default)]
    r#override: BTreeMap<String, String>,
    verify_timestamp: Option<String>,
}

fn policy(p: RawPolicy, store_dir: &Path) -> Result<Policy, String> {
    use Action::{Enforce, Log, Skip};
    let v = &p.signature_verification;
    let level = match v.level.as_str() {
        "strict" => Some((Enforce, Enforce, Enforce, Enforce)),
        "permissive" => Some((Enforce, Log, Log, Log)),
        "audit" => Some((Log, Log, Log, Log)),
        "skip" => None,
        other => {
            return Err(format!(
                "level {other:?} is not strict, permissive, audit or skip"
            ));
        }
    };
    let Some((authenticity, authentic_timestamp, expiry, revocation)) = level else {
        if !p.trust_stores.is_empty() || !p.trusted_identities.is_empty() {
            return Err("a skip policy takes no trustStores or trustedIdentities".to_owned());
        }
        return Ok(Policy {
            name: p.name,
            scopes: p.registry_scopes,
            checks: None,
            timestamp_after_expiry: false,
            stores: Vec::new(),
            identities: None,
        });
    };
    let mut checks = Checks {
        authenticity,
        authentic_timestamp,
        expiry,
        revocation,
    };
    for (check, action) in &v.r#override {
        let action = match action.as_str() {
            "enforce" => Enforce,
            "log" => Log,
            "skip" => Skip,
            other => {
                return Err(format!(
                    "override {check}: {other:?} is not enforce, log or skip"
                ));
            }
        };
        match check.as_str() {
            "authenticity" => checks.authenticity = action,
            "authenticTimestamp" => checks.authentic_timestamp = action,
            "expiry" => checks.expiry = action,
            "revocation" => checks.revocation = action,
            "integrity" => return Err("integrity cannot be overridden".to_owned()),
            other => return Err(format!("override {other:?} is not a verification check")),
        }
    }
    let timestamp_after_expiry = match v.verify_timestamp.as_deref() {
        None | Some("always") => false,
        Some("afterCertExpiry") => true,
        Some(other) => {
            return Err(format!(
                "verifyTimestamp {other:?} is not always or afterCertExpiry"
            ));
        }
    };
    if p.trust_stores.is_empty() {
        return Err("trustStores is empty".to_owned());
    }
    let mut stores = Vec::new();
    for named in &p.trust_stores {
        let (kind, name) = named
            .split_once(':')
            .ok_or_else(|| format!("trust store {named:?} is not type:name"))?;
        let (kind, dir) = match kind {
            "ca" => (StoreType::Ca, "ca"),
            "signingAuthority" => (StoreType::SigningAuthority, "signingAuthority"),
            "tsa" => (StoreType::Tsa, "tsa"),
            other => {
                return Err(format!(
                    "trust store type {other:?} is not ca, signingAuthority or tsa"
                ));
            }
        };
        let path = store_dir.join("x509").join(dir).join(name);
        let certs = store(&path).map_err(|e| format!("trust store {named}: {e}"))?;
        stores.push((kind, name.to_owned(), certs));
    }
    let identities = if p.trusted_identities == ["*"] {
        None
    } else if p.trusted_identities.is_empty() {
        return Err("trustedIdentities is empty".to_owned());
    } else {
        let mut sets = Vec::new();
        for identity in &p.trusted_identities {
            let dn = identity.strip_prefix("x509.subject:").ok_or_else(|| {
                format!("trusted identity {identity:?} is neither \"*\" nor x509.subject: …")
            })?;
            let rdns = dn_pairs(dn).ok_or_else(|| {
                format!("trusted identity {identity:?} is not a distinguished name")
            })?;
            for required in ["C", "ST", "O"] {
                if !rdns.iter().any(|(k, _)| k == required) {
                    return Err(format!("trusted identity {identity:?} lacks {required}"));
                }
            }
            sets.push(rdns);
        }
        Some(sets)
    };
    Ok(Policy {
        name: p.name,
        scopes: p.registry_scopes,
        checks: Some(checks),
        timestamp_after_expiry,
        stores,
        identities,
    })
}

/// The certificates of one store directory: every file, PEM (several blocks) or DER.
fn store(dir: &Path) -> Result<Vec<Vec<u8>>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {}", dir.display(), crate::config::io_message(&e)))?;
    let mut certs = Vec::new();
    let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for file in files.iter().filter(|f| f.is_file()) {
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        if bytes.starts_with(b"-----BEGIN") {
            let text = String::from_utf8_lossy(&bytes);
            let blocks = text
                .split("-----END CERTIFICATE-----")
                .filter(|b| b.contains("-----BEGIN CERTIFICATE-----"));
            for block in blocks {
                let pem = format!("{block}-----END CERTIFICATE-----\n");
                certs.push(
                    crate::sigstore::cert::pem_der(pem.as_bytes())
                        .map_err(|e| format!("{}: {e}", file.display()))?,
                );
            }
        } else {
            certs.push(bytes);
        }
    }
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", dir.display()));
    }
    Ok(certs)
}

/// `CN=e2e, O=Notary,L=Seattle` → pairs, keys upper-cased; `\,` escapes a comma.
pub fn dn_pairs(dn: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut part = String::new();
    let mut chars = dn.trim().chars().peekable();
    let mut push = |part: &mut String| -> Option<()> {
        let (k, v) = part.split_once('=')?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return None;
        }
        pairs.push((k.to_ascii_uppercase(), v.to_owned()));
        part.clear();
        Some(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => part.extend(chars.next()),
            ',' | '+' => push(&mut part)?,
            c => part.push(c),
        }
    }
    push(&mut part)?;
    Some(pairs)
}
