//! A Fulcio leaf certificate: who it names (keyless.md §4), its chain to a trusted CA at the
//! log's time (§1.5), its embedded SCTs (§5), and signatures made with its key.
//!
//! Path building and signature checks are rustls-webpki's (the verifier rustls itself uses);
//! x509-cert only reads fields. No cryptography is written here.

use std::collections::BTreeMap;
use std::time::Duration;

use p256::ecdsa::Signature as EcdsaSignature;
use p256::ecdsa::signature::Verifier as _;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::Certificate;
use x509_cert::der::asn1::{ObjectIdentifier, Utf8StringRef};
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::sct::{SignedCertificateTimestampList, Version as SctVersion};
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};

use super::root::{Authority, TrustedRoot};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER contents as webpki wants them.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
const CODE_SIGNING_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// RFC 6962's embedded SCT list.
const SCT_LIST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11129.2.4.2");
/// Fulcio's SAN OtherName for identities that are neither email nor URI.
const OTHER_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");

/// Fulcio's extensions under 1.3.6.1.4.1.57264.1, by arc, with the names Fulcio and sigstore-go
/// give them. Arcs 1–6 hold raw bytes (deprecated); 8 and above a DER UTF8String.
pub const CLAIMS: [(u32, &str); 20] = [
    (2, "githubWorkflowTrigger"),
    (3, "githubWorkflowSha"),
    (4, "githubWorkflowName"),
    (5, "githubWorkflowRepository"),
    (6, "githubWorkflowRef"),
    (9, "buildSignerURI"),
    (10, "buildSignerDigest"),
    (11, "runnerEnvironment"),
    (12, "sourceRepositoryURI"),
    (13, "sourceRepositoryDigest"),
    (14, "sourceRepositoryRef"),
    (15, "sourceRepositoryIdentifier"),
    (16, "sourceRepositoryOwnerURI"),
    (17, "sourceRepositoryOwnerIdentifier"),
    (18, "buildConfigURI"),
    (19, "buildConfigDigest"),
    (20, "buildTrigger"),
    (21, "runInvocationURI"),
    (22, "sourceRepositoryVisibilityAtSigning"),
    (23, "deploymentEnvironment"),
];

/// Who a certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The OIDC issuer (`.1.8`, else the deprecated `.1.1`); 2021 certificates have none.
    pub issuer: Option<String>,
    /// The SAN: an email, a URI or Fulcio's OtherName.
    pub subject: Option<String>,
    /// The other Fulcio claims present, by name.
    #[serde(flatten)]
    pub claims: BTreeMap<&'static str, String>,
}

/// A parsed leaf.
#[derive(Debug)]
pub struct Leaf {
    der: Vec<u8>,
    cert: Certificate,
    /// Who it names.
    pub identity: Identity,
}

impl Leaf {
    /// Reads a DER certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Leaf, String> {
        let cert =
            Certificate::from_der(&der).map_err(|e| format!("certificate unreadable: {e}"))?;
        let identity = identity(&cert)?;
        Ok(Leaf {
            der,
            cert,
            identity,
        })
    }

    /// Reads the first certificate of a PEM text (the cosign annotation, a Rekor `verifier`).
    pub fn from_pem(pem: &[u8]) -> Result<Leaf, String> {
        Leaf::from_der(pem_der(pem)?)
    }

    /// Its DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Verifies `signature` (DER ECDSA, or raw Ed25519) over `message` with the leaf's key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let der = CertificateDer::from(self.der.as_slice());
        let ee = EndEntityCert::try_from(&der).map_err(|e| format!("certificate: {e}"))?;
        let algorithms = [
            webpki::aws_lc_rs::ECDSA_P256_SHA256,
            webpki::aws_lc_rs::ECDSA_P384_SHA384,
            webpki::aws_lc_rs::ED25519,
        ];
        if algorithms
            .iter()
            .any(|alg| ee.verify_signature(*alg, message, signature).is_ok())
        {
            Ok(())
        } else {
            Err("the signature does not verify with the certificate's key".to_owned())
        }
    }

    /// The CA of `root` the leaf chains to at `time` (Unix seconds), every certificate valid
    /// then, the CA itself valid then, code signing allowed (keyless.md §1.5).
    pub fn chain<'r>(&self, root: &'r TrustedRoot, time: i64) -> Result<&'r Authority, String> {
        let eku = self
            .cert
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .ok()
            .flatten()
            .is_some_and(|(_, eku)| eku.0.contains(&CODE_SIGNING_OID));
        if !eku {
            return Err("the certificate is not for code signing (no codeSigning EKU)".to_owned());
        }
        let der = CertificateDer::from(self.der.as_slice());
        let ee = EndEntityCert::try_from(&der).map_err(|e| format!("certificate: {e}"))?;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(time.max(0) as u64));
        let mut last = format!(
            "no CA of the trust root ({}) was valid at {}",
            root.source,
            super::rfc3339(time)
        );
        for ca in root.authorities.iter().filter(|a| a.valid.contains(time)) {
            let Some((anchor, intermediates)) = ca.chain.split_last() else {
                continue;
            };
            let anchor_der = CertificateDer::from(anchor.as_slice());
            let Ok(anchor) = webpki::anchor_from_trusted_cert(&anchor_der) else {
                continue;
            };
            let intermediates: Vec<CertificateDer<'_>> = intermediates
                .iter()
                .map(|c| CertificateDer::from(c.as_slice()))
                .collect();
            // CAs with an EKU must allow code signing; the leaf's was required above.
            match ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &[anchor],
                &intermediates,
                at,
                KeyUsage::required_if_present(CODE_SIGNING),
                None,
                None,
            ) {
                Ok(_) => return Ok(ca),
                Err(e) => {
                    last = format!(
                        "the certificate does not chain to {} at {}: {}",
                        ca.uri,
                        super::rfc3339(time),
                        chain_error(&e)
                    );
                }
            }
        }
        Err(last)
    }

    /// Verifies that one embedded SCT is signed by a CT log of `root` valid at its time
    /// (keyless.md §5): RFC 6962's precertificate entry, the TBS without the SCT list, bound to
    /// the issuing CA's key.
    pub fn check_sct(&self, root: &TrustedRoot, ca: &Authority) -> Result<(), String> {
        let tbs = &self.cert.tbs_certificate;
        let list = match tbs.get::<SignedCertificateTimestampList>() {
            Ok(Some((_, list))) => list,
            Ok(None) => return Err("the certificate has no embedded SCT".to_owned()),
            Err(e) => return Err(format!("the certificate's SCT list is unreadable: {e}")),
        };
        let scts = list
            .parse_timestamps()
            .map_err(|e| format!("the certificate's SCT list is unreadable: {e:?}"))?;
        let issuer_key = issuer_key_hash(&self.cert, ca)?;
        let mut precert = tbs.clone();
        if let Some(extensions) = &mut precert.extensions {
            extensions.retain(|e| e.extn_id != SCT_LIST);
        }
        let precert = precert
            .to_der()
            .map_err(|e| format!("certificate re-encoding: {e}"))?;
        let mut last = "no SCT from a CT log of the trust root".to_owned();
        for sct in scts {
            let Ok(sct) = sct.parse_timestamp() else {
                continue;
            };
            let Some(log) = root.ctlogs.iter().find(|l| l.id == sct.log_id.key_id) else {
                continue;
            };
            let seconds = (sct.timestamp / 1000) as i64;
            let Some(key) = log.key.as_ref().filter(|_| log.valid.contains(seconds)) else {
                last = format!("the SCT's CT log {} was not valid at its time", log.url);
                continue;
            };
            if !matches!(sct.version, SctVersion::V1) {
                continue;
            }
            let mut signed = Vec::with_capacity(precert.len() + 64);
            signed.push(0); // v1
            signed.push(0); // certificate_timestamp
            signed.extend_from_slice(&sct.timestamp.to_be_bytes());
            signed.extend_from_slice(&1u16.to_be_bytes()); // precert_entry
            signed.extend_from_slice(&issuer_key);
            signed.extend_from_slice(&(precert.len() as u32).to_be_bytes()[1..]);
            signed.extend_from_slice(&precert);
            let extensions = sct.extensions.as_slice();
            signed.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
            signed.extend_from_slice(extensions);
            let ok = EcdsaSignature::from_der(sct.signature.signature.as_slice())
                .is_ok_and(|sig| key.verify(&signed, &sig).is_ok());
            if ok {
                return Ok(());
            }
            last = format!("the SCT from {} does not verify", log.url);
        }
        Err(last)
    }
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
pub fn pem_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "certificate PEM is not text".to_owned())?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let start = text
        .find(begin)
        .ok_or_else(|| "no PEM certificate".to_owned())?;
    let (_, der) = x509_cert::der::pem::decode_vec(&text.as_bytes()[start..])
        .map_err(|e| format!("certificate PEM unreadable: {e}"))?;
    Ok(der)
}

/// sha256 of the DER SubjectPublicKeyInfo of the CA certificate that issued `leaf`.
fn issuer_key_hash(leaf: &Certificate, ca: &Authority) -> Result<[u8; 32], String> {
    for der in &ca.chain {
        let Ok(cert) = Certificate::from_der(der) else {
            continue;
        };
        if cert.tbs_certificate.subject == leaf.tbs_certificate.issuer {
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| format!("CA key re-encoding: {e}"))?;
            return Ok(Sha256::digest(spki).into());
        }
    }
    Err("the certificate's issuer is not in the CA's chain".to_owned())
}

fn identity(cert: &Certificate) -> Result<Identity, String> {
    let tbs = &cert.tbs_certificate;
    let subject = match tbs.get::<SubjectAltName>() {
        Ok(Some((_, san))) => san.0.iter().find_map(|name| match name {
            GeneralName::Rfc822Name(s) | GeneralName::UniformResourceIdentifier(s) => {
                Some(s.to_string())
            }
            GeneralName::OtherName(o) if o.type_id == OTHER_NAME => o
                .value
                .decode_as::<Utf8StringRef<'_>>()
                .ok()
                .map(|s| s.to_string()),
            _ => None,
        }),
        Ok(None) => None,
        Err(e) => return Err(format!("the certificate's SAN is unreadable: {e}")),
    };
    let mut issuer_v1 = None;
    let mut issuer_v2 = None;
    let mut claims = BTreeMap::new();
    for ext in tbs.extensions.iter().flatten() {
        let arcs: Vec<u32> = ext.extn_id.arcs().collect();
        let Some(&[arc]) = arcs.strip_prefix(&[1, 3, 6, 1, 4, 1, 57264, 1][..]) else {
            continue;
        };
        let bytes = ext.extn_value.as_bytes();
        let value = if arc < 8 {
            String::from_utf8(bytes.to_vec()).ok()
        } else {
            Utf8StringRef::from_der(bytes).ok().map(|s| s.to_string())
        };
        let Some(value) = value else {
            return Err(format!(
                "Fulcio extension 1.3.6.1.4.1.57264.1.{arc} is unreadable"
            ));
        };
        match arc {
            1 => issuer_v1 = Some(value),
            8 => issuer_v2 = Some(value),
            _ => {
                if let Some((_, name)) = CLAIMS.iter().find(|(a, _)| *a == arc) {
                    claims.insert(*name, value);
                }
            }
        }
    }
    Ok(Identity {
        issuer: issuer_v2.or(issuer_v1),
        subject,
        claims,
    })
}

fn chain_error(e: &webpki::Error) -> String {
    match e {
        webpki::Error::CertExpired { .. } => "a certificate had expired".to_owned(),
        webpki::Error::CertNotValidYet { .. } => "a certificate was not yet valid".to_owned(),
        webpki::Error::UnknownIssuer => "unknown issuer".to_owned(),
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            "a CA does not allow code signing".to_owned()
        }
        other => format!("{other:?}"),
    }
}
