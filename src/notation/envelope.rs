//! Notation's two envelopes read into one [`Envelope`] (notation.md §3–§4): JWS in the flattened
//! JSON serialization (`application/jose+json`) and COSE_Sign1 (`application/cose`, read with
//! coset). Nothing is re-serialized: the signed bytes are those received.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coset::{CborSerializable as _, TaggedCborSerializable as _};
use serde::Deserialize;
use serde_json::Value;

use crate::history::gotime::GoTime;

/// The JWS envelope's media type.
pub const JWS: &str = "application/jose+json";
/// The COSE envelope's media type.
pub const COSE: &str = "application/cose";
/// The payload's content type.
const PAYLOAD: &str = "application/vnd.cncf.notary.payload.v1+json";
const SCHEME: &str = "io.cncf.notary.signingScheme";
const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
const AUTHENTIC_TIME: &str = "io.cncf.notary.authenticSigningTime";
const EXPIRY: &str = "io.cncf.notary.expiry";
/// The critical header names dimsum understands; any other listed one is a failure.
const KNOWN_CRITICAL: [&str; 3] = [SCHEME, AUTHENTIC_TIME, EXPIRY];

/// A signature algorithm, as Notation names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PSS with SHA-256, SHA-384, SHA-512.
    Ps256,
    /// .
    Ps384,
    /// .
    Ps512,
    /// ECDSA with SHA-256 on P-256, SHA-384 on P-384, SHA-512 on P-521.
    Es256,
    /// .
    Es384,
    /// .
    Es512,
}

/// The signing scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `notary.x509`: the signer's own clock; trust stores of type `ca`.
    X509,
    /// `notary.x509.signingAuthority`: a signing service's authentic time; `signingAuthority`
    /// stores.
    SigningAuthority,
}

/// A parsed envelope.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The bytes the signature is over.
    pub signed: Vec<u8>,
    /// The signature: raw `r||s` for ECDSA, as both envelopes carry it.
    pub signature: Vec<u8>,
    /// The algorithm the envelope claims.
    pub alg: Alg,
    /// The certificate chain, leaf first, DER.
    pub chain: Vec<Vec<u8>>,
    /// The signing scheme.
    pub scheme: Scheme,
    /// `authenticSigningTime` (signingAuthority), Unix seconds.
    pub authentic_time: Option<i64>,
    /// `expiry`, Unix seconds.
    pub expiry: Option<i64>,
    /// Whether an RFC 3161 timestamp is attached.
    pub timestamped: bool,
    /// The payload's `targetArtifact`.
    pub target: Target,
}

/// The descriptor a payload signs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
}

/// Reads an envelope of `media_type`. Every failure is an integrity failure.
pub fn read(media_type: &str, bytes: &[u8]) -> Result<Envelope, String> {
    match media_type {
        JWS => jws(bytes),
        COSE => cose(bytes),
        other => Err(format!(
            "the signature layer is {other:?}, neither a JWS ({JWS}) nor a COSE ({COSE}) envelope"
        )),
    }
}

#[derive(Deserialize)]
struct Flattened {
    payload: String,
    protected: String,
    #[serde(default)]
    header: serde_json::Map<String, Value>,
    signature: String,
}

fn jws(bytes: &[u8]) -> Result<Envelope, String> {
    let f: Flattened = serde_json::from_slice(bytes)
        .map_err(|e| format!("the JWS envelope is unreadable: {e}"))?;
    let b64url = |s: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| format!("the JWS {what} is not base64url"))
    };
    let protected: serde_json::Map<String, Value> =
        serde_json::from_slice(&b64url(&f.protected, "protected header")?)
            .map_err(|_| "the JWS protected header is not a JSON object".to_owned())?;
    let text = |key: &str| protected.get(key).and_then(Value::as_str);
    let alg = match text("alg") {
        Some("PS256") => Alg::Ps256,
        Some("PS384") => Alg::Ps384,
        Some("PS512") => Alg::Ps512,
        Some("ES256") => Alg::Es256,
        Some("ES384") => Alg::Es384,
        Some("ES512") => Alg::Es512,
        other => {
            return Err(format!(
                "the JWS algorithm {other:?} is not one Notation signs with"
            ));
        }
    };
    if text("cty") != Some(PAYLOAD) {
        return Err(format!("the JWS content type is not {PAYLOAD}"));
    }
    let critical: Vec<&str> = protected
        .get("crit")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let time = |key: &str| -> Result<Option<i64>, String> {
        text(key)
            .map(|t| {
                GoTime::parse(t)
                    .map(|t| t.unix_seconds())
                    .map_err(|_| format!("the JWS {key} is not RFC 3339"))
            })
            .transpose()
    };
    let chain = f
        .header
        .get("x5c")
        .and_then(Value::as_array)
        .ok_or_else(|| "the JWS has no x5c certificate chain".to_owned())?
        .iter()
        .map(|c| {
            c.as_str()
                .and_then(|c| STANDARD.decode(c).ok())
                .ok_or_else(|| "an x5c certificate is not base64".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let headers = Headers {
        scheme: text(SCHEME),
        critical: &critical,
        has: &|k| protected.contains_key(k),
    };
    let scheme = headers.check()?;
    Ok(Envelope {
        signed: format!("{}.{}", f.protected, f.payload).into_bytes(),
        signature: b64url(&f.signature, "signature")?,
        alg,
        chain,
        scheme,
        authentic_time: time(AUTHENTIC_TIME)?,
        expiry: time(EXPIRY)?,
        timestamped: f.header.contains_key("io.cncf.notary.timestampSignature"),
        target: target(&b64url(&f.payload, "payload")?)?,
    })
}

fn cose(bytes: &[u8]) -> Result<Envelope, String> {
    use coset::{Label, RegisteredLabelWithPrivate, iana};
    let sign1 = coset::CoseSign1::from_tagged_slice(bytes)
        .or_else(|_| coset::CoseSign1::from_slice(bytes))
        .map_err(|e| format!("the COSE envelope is unreadable: {e}"))?;
    let protected = &sign1.protected.header;
    let alg = match &protected.alg {
        Some(RegisteredLabelWithPrivate::Assigned(a)) => match a {
            iana::Algorithm::PS256 => Alg::Ps256,
            iana::Algorithm::PS384 => Alg::Ps384,
            iana::Algorithm::PS512 => Alg::Ps512,
            iana::Algorithm::ES256 => Alg::Es256,
            iana::Algorithm::ES384 => Alg::Es384,
            iana::Algorithm::ES512 => Alg::Es512,
            other => {
                return Err(format!(
                    "the COSE algorithm {other:?} is not one Notation signs with"
                ));
            }
        },
        other => {
            return Err(format!(
                "the COSE algorithm {other:?} is not one Notation signs with"
            ));
        }
    };
    if !matches!(&protected.content_type, Some(coset::ContentType::Text(t)) if t == PAYLOAD) {
        return Err(format!("the COSE content type is not {PAYLOAD}"));
    }
    let critical: Vec<String> = protected
        .crit
        .iter()
        .map(|c| match c {
            RegisteredLabelWithPrivate::Text(t) => t.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    let critical: Vec<&str> = critical.iter().map(String::as_str).collect();
    let find = |header: &coset::Header, key: &str| {
        header
            .rest
            .iter()
            .find(|(l, _)| matches!(l, Label::Text(t) if t == key))
            .map(|(_, v)| v.clone())
    };
    // Times are CBOR tag 1, epoch seconds.
    let time = |key: &str| -> Result<Option<i64>, String> {
        match find(protected, key) {
            None => Ok(None),
            Some(coset::cbor::Value::Tag(1, v)) => v
                .as_integer()
                .and_then(|i| i64::try_from(i).ok())
                .map(Some)
                .ok_or_else(|| format!("the COSE {key} is not epoch seconds")),
            Some(_) => Err(format!("the COSE {key} is not a tagged epoch time")),
        }
    };
    let scheme_text = find(protected, SCHEME).and_then(|v| v.as_text().map(str::to_owned));
    let headers = Headers {
        scheme: scheme_text.as_deref(),
        critical: &critical,
        has: &|k| find(protected, k).is_some(),
    };
    let scheme = headers.check()?;
    let x5chain = sign1
        .unprotected
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(33))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| "the COSE envelope has no x5chain".to_owned())?;
    let chain = match x5chain {
        coset::cbor::Value::Bytes(one) => vec![one],
        coset::cbor::Value::Array(many) => many
            .into_iter()
            .map(|c| {
                c.into_bytes()
                    .map_err(|_| "an x5chain entry is not bytes".to_owned())
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("the COSE x5chain is neither bytes nor an array".to_owned()),
    };
    let payload = sign1
        .payload
        .as_deref()
        .ok_or_else(|| "the COSE envelope has no payload".to_owned())?;
    Ok(Envelope {
        signed: sign1.tbs_data(b""),
        signature: sign1.signature.clone(),
        alg,
        chain,
        scheme,
        authentic_time: time(AUTHENTIC_TIME)?,
        expiry: time(EXPIRY)?,
        timestamped: find(&sign1.unprotected, "io.cncf.notary.timestampSignature").is_some(),
        target: target(payload)?,
    })
}

/// The protected headers both envelopes share, checked alike.
struct Headers<'a> {
    scheme: Option<&'a str>,
    critical: &'a [&'a str],
    has: &'a dyn Fn(&str) -> bool,
}

impl Headers<'_> {
    fn check(&self) -> Result<Scheme, String> {
        let scheme = match self.scheme {
            Some("notary.x509") => Scheme::X509,
            Some("notary.x509.signingAuthority") => Scheme::SigningAuthority,
            other => return Err(format!("the signing scheme {other:?} is unknown")),
        };
        if let Some(unknown) = self.critical.iter().find(|c| !KNOWN_CRITICAL.contains(c)) {
            return Err(format!("the critical header {unknown:?} is not understood"));
        }
        // What must be protected must also be marked critical (the specification's rule).
        for key in [SCHEME, EXPIRY, AUTHENTIC_TIME] {
            if (self.has)(key) && !self.critical.contains(&key) {
                return Err(format!("{key} is not marked critical"));
            }
        }
        match scheme {
            Scheme::X509 if !(self.has)(SIGNING_TIME) => {
                Err("a notary.x509 signature without a signing time".to_owned())
            }
            Scheme::SigningAuthority if !(self.has)(AUTHENTIC_TIME) => {
                Err("a signingAuthority signature without an authentic signing time".to_owned())
            }
            _ => Ok(scheme),
        }
    }
}

fn target(payload: &[u8]) -> Result<Target, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload {
        target_artifact: Target,
    }
    serde_json::from_slice::<Payload>(payload)
        .map(|p| p.target_artifact)
        .map_err(|e| format!("the payload has no readable targetArtifact: {e}"))
}
