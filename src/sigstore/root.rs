//! The pinned trust root: Sigstore's `trusted_root.json` (keyless.md §3), read once.
//!
//! Only what an offline verifier uses is kept: the transparency logs' and CT logs' keys with
//! their ids and validity windows, and the Fulcio CA chains with theirs. Timestamp authorities
//! are counted, not used: dimsum does not verify RFC 3161 tokens, so a Rekor v2 entry (which has
//! no signed entry timestamp) is refused rather than trusted on its word.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::history::gotime::GoTime;

/// The public-good instance's root, as sigstore-python 4.5.1 ships it (identical to
/// sigstore/root-signing `targets/trusted_root.json` @60cf2ce8; keyless.md §3).
pub const PUBLIC_GOOD: &[u8] = include_bytes!("trusted_root.json");

/// Where [`PUBLIC_GOOD`] comes from, for `config check`.
pub const PUBLIC_GOOD_NAME: &str = "built-in public-good Sigstore root (root-signing @60cf2ce8)";

/// An inclusive window of Unix seconds; `end: None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First second of validity.
    pub start: i64,
    /// Last second of validity, if it ends.
    pub end: Option<i64>,
}

impl Window {
    /// Whether `t` lies inside.
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && self.end.is_none_or(|end| t <= end)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = |t: i64| super::rfc3339(t).chars().take(10).collect::<String>();
        match self.end {
            Some(end) => write!(f, "{} → {}", day(self.start), day(end)),
            None => write!(f, "{} →", day(self.start)),
        }
    }
}

/// A transparency or CT log.
#[derive(Clone)]
pub struct Log {
    /// Its `baseUrl`.
    pub url: String,
    /// `logId.keyId`: sha256 of the key's DER SubjectPublicKeyInfo for Rekor v1 and CT logs.
    pub id: Vec<u8>,
    /// The key, when it is ECDSA P-256 (every Rekor v1 and CT log so far).
    pub key: Option<VerifyingKey>,
    /// `keyDetails` as written, to explain a key dimsum cannot use.
    pub key_details: String,
    /// When the key may be used.
    pub valid: Window,
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("url", &self.url)
            .field("id", &hex::encode(&self.id))
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

/// A Fulcio certificate authority: its chain, issuing CA first and trust anchor last.
#[derive(Debug, Clone)]
pub struct Authority {
    /// Its `uri`.
    pub uri: String,
    /// DER certificates.
    pub chain: Vec<Vec<u8>>,
    /// When it may have issued certificates.
    pub valid: Window,
}

/// A parsed `trusted_root.json`.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// Where it was read from (a path, or [`PUBLIC_GOOD_NAME`]).
    pub source: String,
    /// Rekor logs.
    pub tlogs: Vec<Log>,
    /// Fulcio CAs.
    pub authorities: Vec<Authority>,
    /// Certificate Transparency logs (for the leaf's SCTs).
    pub ctlogs: Vec<Log>,
    /// How many timestamp authorities the file lists (not used; see the module doc).
    pub timestamp_authorities: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: Option<String>,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    timestamp_authorities: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    base_url: String,
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: Option<String>,
    #[serde(default)]
    key_details: String,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawWindow {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    #[serde(default)]
    uri: String,
    cert_chain: RawChain,
    valid_for: Option<RawWindow>,
}

#[derive(Deserialize)]
struct RawChain {
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    raw_bytes: String,
}

impl TrustedRoot {
    /// The built-in public-good root.
    pub fn public_good() -> TrustedRoot {
        TrustedRoot::parse(PUBLIC_GOOD, PUBLIC_GOOD_NAME).expect("the shipped root parses")
    }

    /// Reads a `trusted_root.json`. Anything it cannot use exactly is an error naming the entry:
    /// a root read half-way would verify against less than the operator meant.
    pub fn parse(bytes: &[u8], source: &str) -> Result<TrustedRoot, String> {
        let raw: RawRoot =
            serde_json::from_slice(bytes).map_err(|e| format!("not a trusted_root.json: {e}"))?;
        if let Some(media_type) = &raw.media_type
            && !media_type.starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(format!(
                "mediaType {media_type:?} is not a Sigstore trusted root"
            ));
        }
        let logs = |raw: Vec<RawLog>, what: &str| -> Result<Vec<Log>, String> {
            raw.into_iter()
                .enumerate()
                .map(|(i, l)| log(l).map_err(|e| format!("{what}[{i}]: {e}")))
                .collect()
        };
        let tlogs = logs(raw.tlogs, "tlogs")?;
        let ctlogs = logs(raw.ctlogs, "ctlogs")?;
        let authorities = raw
            .certificate_authorities
            .into_iter()
            .enumerate()
            .map(|(i, a)| authority(a).map_err(|e| format!("certificateAuthorities[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if tlogs.is_empty() || authorities.is_empty() {
            return Err("it lists no transparency log or no certificate authority".to_owned());
        }
        Ok(TrustedRoot {
            source: source.to_owned(),
            tlogs,
            authorities,
            ctlogs,
            timestamp_authorities: raw.timestamp_authorities.len(),
        })
    }

    /// The transparency log with this id.
    pub fn tlog(&self, id: &[u8]) -> Option<&Log> {
        self.tlogs.iter().find(|l| l.id == id)
    }

    /// A line per log and CA with its validity, for `config check`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!("sigstore root: {}", self.source)];
        for l in &self.tlogs {
            lines.push(format!("  tlog {} ({}) {}", l.url, l.key_details, l.valid));
        }
        for a in &self.authorities {
            lines.push(format!(
                "  ca {} ({} certificates) {}",
                a.uri,
                a.chain.len(),
                a.valid
            ));
        }
        for l in &self.ctlogs {
            lines.push(format!("  ctlog {} {}", l.url, l.valid));
        }
        if self.timestamp_authorities > 0 {
            lines.push(format!(
                "  {} timestamp authorities (not used: RFC 3161 tokens are not verified)",
                self.timestamp_authorities
            ));
        }
        lines
    }
}

fn log(raw: RawLog) -> Result<Log, String> {
    let id = STANDARD
        .decode(&raw.log_id.key_id)
        .map_err(|_| "logId.keyId is not base64".to_owned())?;
    let der = raw
        .public_key
        .raw_bytes
        .as_deref()
        .map(|b| STANDARD.decode(b))
        .transpose()
        .map_err(|_| "publicKey.rawBytes is not base64".to_owned())?;
    let key = match (raw.public_key.key_details.as_str(), der) {
        ("PKIX_ECDSA_P256_SHA_256", Some(der)) => {
            let key = VerifyingKey::from_public_key_der(&der)
                .map_err(|e| format!("publicKey is not an ECDSA P-256 key: {e}"))?;
            // A Rekor v1 or CT log id is the hash of its key: a mismatch is a corrupt file.
            if Sha256::digest(&der)[..] != id[..] {
                return Err("logId.keyId is not the sha256 of its publicKey".to_owned());
            }
            Some(key)
        }
        _ => None,
    };
    Ok(Log {
        url: raw.base_url,
        id,
        key,
        key_details: raw.public_key.key_details,
        valid: window(raw.public_key.valid_for)?,
    })
}

fn authority(raw: RawAuthority) -> Result<Authority, String> {
    let chain = raw
        .cert_chain
        .certificates
        .iter()
        .map(|c| STANDARD.decode(&c.raw_bytes))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "a certificate's rawBytes is not base64".to_owned())?;
    if chain.is_empty() {
        return Err("certChain is empty".to_owned());
    }
    Ok(Authority {
        uri: raw.uri,
        chain,
        valid: window(raw.valid_for)?,
    })
}

fn window(raw: Option<RawWindow>) -> Result<Window, String> {
    let time = |t: &str| {
        GoTime::parse(t)
            .map(|t| t.unix_seconds())
            .map_err(|_| format!("validFor time {t:?} is not RFC 3339"))
    };
    let Some(raw) = raw else {
        // protobuf-specs: a missing validFor is "valid since ever"; no end is "still valid".
        return Ok(Window {
            start: i64::MIN,
            end: None,
        });
    };
    Ok(Window {
        start: raw
            .start
            .as_deref()
            .map(time)
            .transpose()?
            .unwrap_or(i64::MIN),
        end: raw.end.as_deref().map(time).transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_root() {
        let root = TrustedRoot::public_good();
        assert_eq!(root.tlogs.len(), 2);
        let rekor = &root.tlogs[0];
        assert_eq!(
            hex::encode(&rekor.id),
            "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
        );
        assert!(rekor.key.is_some());
        // Rekor v2's Ed25519 key is listed but not usable without RFC 3161 timestamps.
        assert!(root.tlogs[1].key.is_none());
        assert_eq!(root.authorities.len(), 2);
        assert_eq!(root.authorities[1].chain.len(), 2);
        // CA 1 ends on 2022-12-31 23:59:59.999: the fraction is dropped, the second included.
        assert_eq!(root.authorities[0].valid.end, Some(1_672_531_199));
        assert!(root.authorities[0].valid.contains(1_634_714_717));
        assert!(!root.authorities[0].valid.contains(1_672_531_200));
        assert_eq!(root.ctlogs.len(), 2);
        let described = root.describe().join("\n");
        assert!(
            described
                .contains("tlog https://rekor.sigstore.dev (PKIX_ECDSA_P256_SHA_256) 2021-01-12 →")
        );
        assert!(described.contains("2021-03-07 → 2022-12-31"), "{described}");
    }

    #[test]
    fn bad_roots_are_refused_whole() {
        let good: serde_json::Value = serde_json::from_slice(PUBLIC_GOOD).unwrap();
        let mut wrong_id = good.clone();
        wrong_id["tlogs"][0]["logId"]["keyId"] = "AAAA".into();
        let e = TrustedRoot::parse(&serde_json::to_vec(&wrong_id).unwrap(), "x").unwrap_err();
        assert!(e.contains("tlogs[0]") && e.contains("sha256"), "{e}");
        let mut no_cas = good.clone();
        no_cas["certificateAuthorities"] = serde_json::json!([]);
        assert!(TrustedRoot::parse(&serde_json::to_vec(&no_cas).unwrap(), "x").is_err());
        let mut bad_time = good;
        bad_time["ctlogs"][0]["publicKey"]["validFor"]["start"] = "yesterday".into();
        let e = TrustedRoot::parse(&serde_json::to_vec(&bad_time).unwrap(), "x").unwrap_err();
        assert!(e.contains("ctlogs[0]") && e.contains("yesterday"), "{e}");
        assert!(TrustedRoot::parse(b"{}", "x").is_err());
    }
}
