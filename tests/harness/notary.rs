//! Notation signatures made here (notation.md §3–§4): a self-signed ES256 code-signing leaf,
//! JWS and COSE_Sign1 envelopes over a `targetArtifact` payload, as `notation sign` writes them.
//! Shared by the unit tests (src/notation/tests.rs) and the registry tests (tests/notation.rs).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};

/// The payload's content type.
const PAYLOAD: &str = "application/vnd.cncf.notary.payload.v1+json";

/// The descriptor a payload signs: media type, digest, size.
#[derive(Debug, Clone)]
pub struct Signed<'a> {
    /// Its media type.
    pub media_type: &'a str,
    /// Its digest.
    pub digest: &'a str,
    /// Its size.
    pub size: u64,
}

fn payload(target: &Signed<'_>) -> String {
    json!({"targetArtifact": {"mediaType": target.media_type, "digest": target.digest, "size": target.size}})
        .to_string()
}

/// A self-signed ES256 code-signing leaf `C=US, ST=WA, O=<organization>, CN=ci`, optionally
/// naming a CRL; its key is derived from `seed`.
pub fn leaf(seed: u8, organization: &str, crl: bool) -> (SigningKey, Vec<u8>) {
    let key = SigningKey::from_slice(&[seed; 32]).unwrap();
    let pair = rcgen::KeyPair::try_from(key.to_pkcs8_der().unwrap().as_bytes()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = rcgen::DistinguishedName::new();
    for (t, v) in [
        (rcgen::DnType::CountryName, "US"),
        (rcgen::DnType::StateOrProvinceName, "WA"),
        (rcgen::DnType::OrganizationName, organization),
        (rcgen::DnType::CommonName, "ci"),
    ] {
        dn.push(t, v);
    }
    params.distinguished_name = dn;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    if crl {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec!["http://crl.example/ci.crl".to_owned()],
        }];
    }
    (key, params.self_signed(&pair).unwrap().der().to_vec())
}

/// The JWS protected header of a `notary.x509` ES256 signature, with an expiry if given.
pub fn protected_headers(expiry: Option<&str>) -> Value {
    let mut h = json!({"alg": "ES256", "crit": ["io.cncf.notary.signingScheme"], "cty": PAYLOAD,
        "io.cncf.notary.signingScheme": "notary.x509", "io.cncf.notary.signingTime": "2026-12-01T10:00:00Z"});
    if let Some(expiry) = expiry {
        h["io.cncf.notary.expiry"] = expiry.into();
        h["crit"] = json!(["io.cncf.notary.signingScheme", "io.cncf.notary.expiry"]);
    }
    h
}

/// A JWS envelope (flattened JSON) signing `target`.
pub fn jws(key: &SigningKey, leaf: &[u8], target: &Signed<'_>, expiry: Option<&str>) -> Vec<u8> {
    jws_with(key, leaf, target, &protected_headers(expiry))
}

/// A JWS envelope with these protected headers.
pub fn jws_with(key: &SigningKey, leaf: &[u8], target: &Signed<'_>, headers: &Value) -> Vec<u8> {
    let protected = URL_SAFE_NO_PAD.encode(headers.to_string());
    let payload = URL_SAFE_NO_PAD.encode(payload(target));
    let signature: p256::ecdsa::Signature = key.sign(format!("{protected}.{payload}").as_bytes());
    json!({"payload": payload, "protected": protected,
        "header": {"x5c": [STANDARD.encode(leaf)], "io.cncf.notary.signingAgent": "dimsum-tests"},
        "signature": URL_SAFE_NO_PAD.encode(signature.to_bytes())})
    .to_string()
    .into_bytes()
}

/// A COSE_Sign1 envelope (tagged) signing `target`.
pub fn cose(key: &SigningKey, leaf: &[u8], target: &Signed<'_>) -> Vec<u8> {
    use coset::{
        CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate, TaggedCborSerializable as _,
        iana,
    };
    let scheme = "io.cncf.notary.signingScheme".to_owned();
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .content_type(PAYLOAD.to_owned())
        .text_value(scheme.clone(), "notary.x509".into())
        .text_value(
            "io.cncf.notary.signingTime".to_owned(),
            coset::cbor::Value::Tag(1, Box::new(1_796_000_000.into())),
        )
        .add_critical_label(RegisteredLabelWithPrivate::Text(scheme))
        .build();
    let unprotected = HeaderBuilder::new()
        .value(
            33,
            coset::cbor::Value::Array(vec![coset::cbor::Value::Bytes(leaf.to_vec())]),
        )
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload(target).into_bytes())
        .create_signature(b"", |data| {
            let s: p256::ecdsa::Signature = key.sign(data);
            s.to_bytes().to_vec()
        })
        .build()
        .to_tagged_vec()
        .unwrap()
}
