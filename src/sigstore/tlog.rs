//! The Rekor entry that proves a signature was logged, and when (keyless.md §1–§2).
//!
//! - The signed entry timestamp (SET): the log's ECDSA signature over the canonical JSON of
//!   `{body, integratedTime, logID, logIndex}`. Without it there is no trusted time, and so no
//!   offline verification at all (cosign `--offline` fails the same way).
//! - The inclusion proof, when present: the RFC 6962 audit path to `rootHash`, and the
//!   checkpoint (a signed note) that commits the log to that root at that size.
//! - The body: it must be about this very signature (payload hash, signature, certificate).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::Signature as EcdsaSignature;
use p256::ecdsa::signature::Verifier as _;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::root::{Log, TrustedRoot};

/// One log entry, from a cosign `bundle` annotation or a Sigstore bundle's `tlogEntries[0]`.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry body, base64 as given (the SET signs this text).
    pub body_b64: String,
    /// When the log integrated it (Unix seconds), as claimed until the SET verifies.
    pub integrated_time: i64,
    /// Its index in the log.
    pub log_index: i64,
    /// The log's id (sha256 of its key).
    pub log_id: Vec<u8>,
    /// The signed entry timestamp (DER ECDSA), if any.
    pub set: Option<Vec<u8>>,
    /// The inclusion proof, if any.
    pub proof: Option<Proof>,
}

/// An RFC 6962 inclusion proof with its checkpoint.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The leaf's index in the tree the proof is for.
    pub index: u64,
    /// That tree's size.
    pub tree_size: u64,
    /// Its root hash.
    pub root_hash: Vec<u8>,
    /// The audit path.
    pub hashes: Vec<Vec<u8>>,
    /// The signed note committing to the root, if any.
    pub checkpoint: Option<String>,
}

/// What the answer says of the log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tlog {
    /// The entry's index.
    pub log_index: i64,
    /// The log's id, lower-case hex.
    pub log_id: String,
}

/// What the body must bind.
#[derive(Debug)]
pub struct Binding<'a> {
    /// The signed bytes' payload (the simple-signing JSON, or the DSSE payload).
    pub payload: &'a [u8],
    /// The signature bytes.
    pub signature: &'a [u8],
    /// The leaf's DER.
    pub certificate: &'a [u8],
}

impl Entry {
    /// The `bundle` annotation of a cosign `.sig`/`.att` layer.
    pub fn from_cosign_bundle(text: &str) -> Result<Entry, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| format!("the Rekor bundle annotation is not JSON: {e}"))?;
        let p = &v["Payload"];
        let unreadable = || "the Rekor bundle annotation lacks a field".to_owned();
        Ok(Entry {
            body_b64: p["body"].as_str().ok_or_else(unreadable)?.to_owned(),
            integrated_time: p["integratedTime"].as_i64().ok_or_else(unreadable)?,
            log_index: p["logIndex"].as_i64().ok_or_else(unreadable)?,
            log_id: hex::decode(p["logID"].as_str().ok_or_else(unreadable)?)
                .map_err(|_| "the bundle's logID is not hex".to_owned())?,
            set: Some(b64(v["SignedEntryTimestamp"]
                .as_str()
                .ok_or_else(unreadable)?)?),
            proof: None,
        })
    }

    /// What the answer shows.
    pub fn tlog(&self) -> Tlog {
        Tlog {
            log_index: self.log_index,
            log_id: hex::encode(&self.log_id),
        }
    }

    /// Verifies the entry against `root` and `binding`; gives the verified integrated time.
    pub fn verify(&self, root: &TrustedRoot, binding: &Binding<'_>) -> Result<i64, String> {
        let log = root.tlog(&self.log_id).ok_or_else(|| {
            format!(
                "the transparency log {} is not in the trust root",
                hex::encode(&self.log_id)
            )
        })?;
        let key = log.key.as_ref().ok_or_else(|| {
            format!(
                "the log {} ({}) gives no signed entry timestamp; RFC 3161 timestamps are not verified",
                log.url, log.key_details
            )
        })?;
        let set = self.set.as_ref().ok_or_else(|| {
            "no signed entry timestamp: nothing proves when it was logged".to_owned()
        })?;
        if !self
            .body_b64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        {
            return Err("the log entry body is not base64".to_owned());
        }
        // RFC 8785 of four ASCII/integer fields, keys sorted: a fixed format is canonical.
        let canonical = format!(
            r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
            self.body_b64,
            self.integrated_time,
            hex::encode(&self.log_id),
            self.log_index
        );
        let signed = EcdsaSignature::from_der(set)
            .is_ok_and(|sig| key.verify(canonical.as_bytes(), &sig).is_ok());
        if !signed {
            return Err(format!(
                "the signed entry timestamp does not verify with the key of {}",
                log.url
            ));
        }
        if !log.valid.contains(self.integrated_time) {
            return Err(format!(
                "the log key of {} was not valid at {}",
                log.url,
                super::rfc3339(self.integrated_time)
            ));
        }
        let body = b64(&self.body_b64)?;
        if let Some(proof) = &self.proof {
            proof.verify(log, &body)?;
        }
        bind(&body, binding)?;
        Ok(self.integrated_time)
    }
}

impl Proof {
    fn verify(&self, log: &Log, body: &[u8]) -> Result<(), String> {
        let mut leaf = Sha256::new();
        leaf.update([0u8]);
        leaf.update(body);
        let root = root_from_path(
            self.index,
            self.tree_size,
            leaf.finalize().into(),
            &self.hashes,
        )
        .ok_or_else(|| "the inclusion proof is malformed".to_owned())?;
        if root.as_slice() != self.root_hash.as_slice() {
            return Err("the inclusion proof does not lead to its root hash".to_owned());
        }
        let Some(note) = &self.checkpoint else {
            return Ok(());
        };
        let (size, hash) = checkpoint(note, log)?;
        if size != self.tree_size || hash != self.root_hash {
            return Err("the checkpoint does not commit to the proof's root".to_owned());
        }
        Ok(())
    }
}

/// RFC 9162 §2.1.3.2: the root an audit path leads to, or `None` if it cannot be one.
fn root_from_path(index: u64, size: u64, leaf: [u8; 32], path: &[Vec<u8>]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let node = |left: &[u8], right: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(left);
        h.update(right);
        h.finalize().into()
    };
    let (mut f, mut s) = (index, size - 1);
    let mut r = leaf;
    for p in path {
        if p.len() != 32 || s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

/// Verifies a signed note by `log` and reads its tree size and root hash.
fn checkpoint(note: &str, log: &Log) -> Result<(u64, Vec<u8>), String> {
    let bad = |why: &str| format!("the checkpoint {why}");
    let (text, signatures) = note
        .split_once("\n\n")
        .ok_or_else(|| bad("is not a signed note"))?;
    let body = format!("{text}\n");
    let key = log
        .key
        .as_ref()
        .ok_or_else(|| bad("log has no usable key"))?;
    let signed = signatures.lines().any(|line| {
        let Some(sig) = line
            .strip_prefix("— ")
            .and_then(|rest| rest.rsplit_once(' '))
            .and_then(|(_, b)| STANDARD.decode(b).ok())
        else {
            return false;
        };
        // A 4-byte key hint, then the signature.
        sig.len() > 4
            && sig[..4] == log.id[..4.min(log.id.len())]
            && EcdsaSignature::from_der(&sig[4..])
                .is_ok_and(|s| key.verify(body.as_bytes(), &s).is_ok())
    });
    if !signed {
        return Err(bad("is not signed by the log's key"));
    }
    let mut lines = text.lines().skip(1);
    let size = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| bad("has no tree size"))?;
    let hash = lines
        .next()
        .and_then(|l| STANDARD.decode(l).ok())
        .ok_or_else(|| bad("has no root hash"))?;
    Ok((size, hash))
}

/// The body must be about this signature: kinds `hashedrekord`, `rekord`, `dsse`, `intoto`.
fn bind(body: &[u8], b: &Binding<'_>) -> Result<(), String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| "the log entry body is not JSON".to_owned())?;
    let spec = &v["spec"];
    let payload_hash = hex::encode(Sha256::digest(b.payload));
    let hash_is = |h: &Value| h["algorithm"] == "sha256" && h["value"] == payload_hash.as_str();
    let same_sig = |s: &Value| {
        s.as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .is_some_and(|s| s == b.signature)
    };
    let same_cert = |c: &Value| {
        c.as_str()
            .and_then(|c| STANDARD.decode(c).ok())
            .and_then(|pem| super::cert::pem_der(&pem).ok())
            .is_some_and(|der| der == b.certificate)
    };
    let kind = v["kind"].as_str().unwrap_or_default();
    let bound = match kind {
        "hashedrekord" | "rekord" => {
            hash_is(&spec["data"]["hash"])
                && same_sig(&spec["signature"]["content"])
                && same_cert(&spec["signature"]["publicKey"]["content"])
        }
        "dsse" => {
            hash_is(&spec["payloadHash"])
                && spec["signatures"].as_array().is_some_and(|sigs| {
                    sigs.iter()
                        .any(|s| same_sig(&s["signature"]) && same_cert(&s["verifier"]))
                })
        }
        "intoto" => {
            let content = &spec["content"];
            // 0.0.2 keeps the envelope's signatures (base64 of the base64 text); 0.0.1 only the
            // key, which the signature is then checked with.
            let signed = match content["envelope"]["signatures"].as_array() {
                Some(sigs) => sigs.iter().any(|s| {
                    let inner = s["sig"]
                        .as_str()
                        .and_then(|s| STANDARD.decode(s).ok())
                        .and_then(|s| String::from_utf8(s).ok());
                    inner.is_some_and(|i| same_sig(&Value::String(i))) && same_cert(&s["publicKey"])
                }),
                None => same_cert(&spec["publicKey"]),
            };
            hash_is(&content["payloadHash"]) && signed
        }
        other => return Err(format!("the log entry kind {other:?} is not supported")),
    };
    if bound {
        Ok(())
    } else {
        Err(format!(
            "the {kind} log entry is about another payload, signature or certificate"
        ))
    }
}

/// Standard base64, as every field of these formats is.
pub fn b64(text: &str) -> Result<Vec<u8>, String> {
    STANDARD
        .decode(text.trim())
        .map_err(|_| "a field that should be base64 is not".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_paths() {
        // A tree of three leaves: root = H(H(l0, l1), l2).
        let leaf = |i: u8| -> [u8; 32] { Sha256::digest([0, i]).into() };
        let node = |a: &[u8], b: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update([1]);
            h.update(a);
            h.update(b);
            h.finalize().into()
        };
        let (l0, l1, l2) = (leaf(0), leaf(1), leaf(2));
        let root = node(&node(&l0, &l1), &l2);
        assert_eq!(
            root_from_path(0, 3, l0, &[l1.to_vec(), l2.to_vec()]),
            Some(root)
        );
        assert_eq!(
            root_from_path(2, 3, l2, &[node(&l0, &l1).to_vec()]),
            Some(root)
        );
        // The wrong index, a short path, an index outside the tree: not this root.
        assert_ne!(
            root_from_path(1, 3, l0, &[l1.to_vec(), l2.to_vec()]),
            Some(root)
        );
        assert_eq!(root_from_path(0, 3, l0, &[l1.to_vec()]), None);
        assert_eq!(root_from_path(3, 3, l0, &[]), None);
    }
}
