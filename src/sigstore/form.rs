//! The forms a keyless signature comes in, read into one [`Keyless`] (keyless.md §1–§2):
//! cosign's `.sig` layer (simple signing + annotations), its `.att` layer (a DSSE envelope +
//! the same annotations), and Sigstore bundles v0.1–v0.3.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::tlog::{self, Entry, Proof, b64};

/// cosign's annotations on `.sig` and `.att` layers.
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The leaf certificate (PEM).
pub const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// The Rekor bundle (JSON).
pub const BUNDLE: &str = "dev.sigstore.cosign/bundle";

/// What was signed, and the signature.
#[derive(Debug, Clone)]
pub enum Content {
    /// A signature over the payload's bytes (cosign's simple signing).
    Message {
        /// The signed bytes.
        payload: Vec<u8>,
        /// DER ECDSA.
        signature: Vec<u8>,
    },
    /// A DSSE envelope: the signature is over its PAE.
    Dsse {
        /// `payloadType`.
        payload_type: String,
        /// The decoded payload (an in-toto statement).
        payload: Vec<u8>,
        /// The one signature.
        signature: Vec<u8>,
    },
}

impl Content {
    /// The payload the log entry hashes.
    pub fn payload(&self) -> &[u8] {
        match self {
            Content::Message { payload, .. } | Content::Dsse { payload, .. } => payload,
        }
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        match self {
            Content::Message { signature, .. } | Content::Dsse { signature, .. } => signature,
        }
    }

    /// The bytes the signature is over: the payload, or DSSE's pre-authentication encoding.
    pub fn signed(&self) -> Vec<u8> {
        match self {
            Content::Message { payload, .. } => payload.clone(),
            Content::Dsse {
                payload_type,
                payload,
                ..
            } => {
                let mut pae = format!(
                    "DSSEv1 {} {} {} ",
                    payload_type.len(),
                    payload_type,
                    payload.len()
                )
                .into_bytes();
                pae.extend_from_slice(payload);
                pae
            }
        }
    }
}

/// A keyless signature in any form.
#[derive(Debug, Clone)]
pub struct Keyless {
    /// The leaf certificate, DER.
    pub certificate: Vec<u8>,
    /// The transparency log entry, if any.
    pub entry: Option<Entry>,
    /// What was signed.
    pub content: Content,
}

/// A cosign `.sig` layer: `payload` is the layer's blob.
pub fn cosign_signature(
    annotations: &BTreeMap<String, String>,
    payload: Vec<u8>,
) -> Result<Keyless, String> {
    let signature = b64(annotations.get(SIGNATURE).map_or("", String::as_str))?;
    Ok(Keyless {
        certificate: certificate(annotations)?,
        entry: entry(annotations)?,
        content: Content::Message { payload, signature },
    })
}

/// A cosign `.att` layer: `envelope` is the layer's blob, a DSSE envelope.
pub fn cosign_attestation(
    annotations: &BTreeMap<String, String>,
    envelope: &[u8],
) -> Result<Keyless, String> {
    Ok(Keyless {
        certificate: certificate(annotations)?,
        entry: entry(annotations)?,
        content: dsse(envelope)?,
    })
}

/// A DSSE envelope's content alone (`cosign attest --key`: no certificate to go with it).
pub fn dsse(envelope: &[u8]) -> Result<Content, String> {
    serde_json::from_slice::<Envelope>(envelope)
        .map_err(|e| format!("the attestation is not a DSSE envelope: {e}"))?
        .content()
}

fn certificate(annotations: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    let pem = annotations
        .get(CERTIFICATE)
        .ok_or_else(|| "no certificate annotation".to_owned())?;
    super::cert::pem_der(pem.as_bytes())
}

fn entry(annotations: &BTreeMap<String, String>) -> Result<Option<Entry>, String> {
    annotations
        .get(BUNDLE)
        .map(|b| Entry::from_cosign_bundle(b))
        .transpose()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

impl Envelope {
    fn content(self) -> Result<Content, String> {
        // Several signatures would each need their own log entry; cosign and Sigstore bundles
        // write exactly one.
        let [one] = self.signatures.as_slice() else {
            return Err(format!(
                "the DSSE envelope has {} signatures, not one",
                self.signatures.len()
            ));
        };
        Ok(Content::Dsse {
            payload_type: self.payload_type,
            payload: b64(&self.payload)?,
            signature: b64(&one.sig)?,
        })
    }
}

/// A Sigstore bundle (v0.1–v0.3, JSON as protobuf-specs renders it).
pub fn bundle(bytes: &[u8]) -> Result<Keyless, String> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the bundle is not JSON: {e}"))?;
    let media_type = v["mediaType"].as_str().unwrap_or_default();
    let version = match media_type {
        "application/vnd.dev.sigstore.bundle.v0.3+json"
        | "application/vnd.dev.sigstore.bundle+json;version=0.3" => 3,
        "application/vnd.dev.sigstore.bundle+json;version=0.2" => 2,
        "application/vnd.dev.sigstore.bundle+json;version=0.1" => 1,
        other => return Err(format!("unknown bundle mediaType {other:?}")),
    };
    let material = &v["verificationMaterial"];
    let raw = if let Some(c) = material["certificate"]["rawBytes"].as_str() {
        c
    } else if let Some(c) = material["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str()
    {
        if version == 3 {
            return Err("a v0.3 bundle may not carry a certificate chain".to_owned());
        }
        c
    } else if material.get("publicKey").is_some() {
        return Err(
            "the bundle is signed with a key, not a certificate: not verified here".to_owned(),
        );
    } else {
        return Err("the bundle has no certificate".to_owned());
    };
    let certificate = b64(raw)?;
    let entry = match material["tlogEntries"].as_array().map(Vec::as_slice) {
        Some([e, ..]) => Some(bundle_entry(e)?),
        _ => None,
    };
    if let Some(e) = &entry {
        if version == 1 && e.set.is_none() {
            return Err("a v0.1 bundle needs an inclusion promise".to_owned());
        }
        if version >= 2 && e.proof.is_none() {
            return Err("a v0.2+ bundle needs an inclusion proof".to_owned());
        }
    }
    let content = if let Some(envelope) = v.get("dsseEnvelope") {
        serde_json::from_value::<Envelope>(envelope.clone())
            .map_err(|e| format!("the bundle's DSSE envelope is unreadable: {e}"))?
            .content()?
    } else if v.get("messageSignature").is_some() {
        return Err(
            "the bundle signs a blob by its digest (messageSignature), not this image".to_owned(),
        );
    } else {
        return Err("the bundle has no content".to_owned());
    };
    Ok(Keyless {
        certificate,
        entry,
        content,
    })
}

/// proto3 JSON writes int64 as a string; older writers as a number.
fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn bundle_entry(e: &Value) -> Result<Entry, String> {
    let missing = |what: &str| format!("the bundle's log entry has no {what}");
    let proof = match e.get("inclusionProof") {
        Some(p) => Some(Proof {
            index: int(&p["logIndex"]).ok_or_else(|| missing("proof logIndex"))? as u64,
            tree_size: int(&p["treeSize"]).ok_or_else(|| missing("proof treeSize"))? as u64,
            root_hash: b64(p["rootHash"].as_str().ok_or_else(|| missing("rootHash"))?)?,
            hashes: p["hashes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| b64(h.as_str().unwrap_or("!")))
                .collect::<Result<_, _>>()?,
            checkpoint: p["checkpoint"]["envelope"].as_str().map(str::to_owned),
        }),
        None => None,
    };
    Ok(Entry {
        body_b64: e["canonicalizedBody"]
            .as_str()
            .ok_or_else(|| missing("canonicalizedBody"))?
            .to_owned(),
        integrated_time: int(&e["integratedTime"]).ok_or_else(|| missing("integratedTime"))?,
        log_index: int(&e["logIndex"]).ok_or_else(|| missing("logIndex"))?,
        log_id: b64(e["logId"]["keyId"]
            .as_str()
            .ok_or_else(|| missing("logId"))?)?,
        set: e["inclusionPromise"]["signedEntryTimestamp"]
            .as_str()
            .map(tlog::b64)
            .transpose()?,
        proof,
    })
}
