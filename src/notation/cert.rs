//! The certificate chain of a Notation signature (notation.md §5): leaf first, each certificate
//! issued by the next, the last self-signed; Notation's key-usage rules for the leaf and the CAs;
//! the algorithm the leaf's key dictates; validity at a time; whether revocation could matter.
//!
//! Notation's model is not TLS path building (authenticity is membership of a chain certificate
//! in a trust store, checked in `super`), so the chain is walked here; every signature check is
//! aws-lc-rs's, every field read is x509-cert's.

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::Certificate;
use x509_cert::der::asn1::{AnyRef, ObjectIdentifier, UintRef};
use x509_cert::der::{Decode as _, Encode as _, Reader as _, SliceReader};
use x509_cert::ext::pkix::{
    AuthorityInfoAccessSyntax, BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage,
    KeyUsages,
};

use super::envelope::{Alg, Envelope};
use super::policy::dn_pairs;
use crate::sigstore::cert::Identity;

const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// EKUs a Notation leaf must not have: any, serverAuth, clientAuth, emailProtection, timeStamping.
const FORBIDDEN_EKU: [&str; 5] = [
    "2.5.29.37.0",
    "1.3.6.1.5.5.7.3.1",
    "1.3.6.1.5.5.7.3.2",
    "1.3.6.1.5.5.7.3.4",
    "1.3.6.1.5.5.7.3.8",
];

/// A public key as aws-lc-rs takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// RSA, with its modulus size in bits.
    Rsa(usize),
    P256,
    P384,
    P521,
}

/// One certificate: parsed, with the exact bytes its signature covers.
#[derive(Debug)]
struct Cert {
    parsed: Certificate,
    tbs: Vec<u8>,
    key: Key,
    key_bytes: Vec<u8>,
}

/// A read and structurally valid chain.
#[derive(Debug)]
pub struct Chain {
    certs: Vec<Cert>,
}

impl Chain {
    /// Reads the chain and checks its structure and Notation's certificate rules; time is not
    /// checked here (the policy says how much it counts).
    pub fn read(ders: &[Vec<u8>]) -> Result<Chain, String> {
        if ders.is_empty() {
            return Err("the signature carries no certificate".to_owned());
        }
        let certs = ders
            .iter()
            .map(|d| Cert::read(d))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, cert) in certs.iter().enumerate() {
            let issuer = certs.get(i + 1).unwrap_or(cert);
            let what = if i == 0 {
                "the leaf"
            } else {
                "a CA certificate"
            };
            if cert.parsed.tbs_certificate.issuer != issuer.parsed.tbs_certificate.subject {
                return Err(format!(
                    "{what} is not issued by the next certificate of the chain"
                ));
            }
            issuer
                .verify(
                    &cert.parsed.signature_algorithm.oid,
                    &cert.tbs,
                    cert.signature(),
                )
                .map_err(|e| format!("{what}'s signature does not verify: {e}"))?;
            if i == 0 {
                cert.leaf_rules()?;
            } else {
                cert.ca_rules(i - 1)?;
            }
        }
        Ok(Chain { certs })
    }

    fn leaf(&self) -> &Cert {
        &self.certs[0]
    }

    /// The leaf's subject and issuer DNs.
    pub fn identity(&self) -> Identity {
        let tbs = &self.leaf().parsed.tbs_certificate;
        Identity {
            issuer: Some(tbs.issuer.to_string()),
            subject: Some(tbs.subject.to_string()),
            claims: Default::default(),
        }
    }

    /// The leaf subject's attributes, as trusted identities name them.
    pub fn subject_pairs(&self) -> Vec<(String, String)> {
        self.leaf()
            .parsed
            .tbs_certificate
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .filter_map(|atv| dn_pairs(&atv.to_string()))
            .flatten()
            .collect()
    }

    /// Integrity: the algorithm is the one the leaf's key dictates, and the signature verifies.
    pub fn check_signature(&self, envelope: &Envelope) -> Result<(), String> {
        let leaf = self.leaf();
        let (dictated, algorithm): (Alg, &'static dyn VerificationAlgorithm) = match leaf.key {
            Key::Rsa(bits) if bits < 2048 => {
                return Err(format!(
                    "the leaf's RSA key has {bits} bits, fewer than 2048"
                ));
            }
            Key::Rsa(bits) if bits < 3072 => (Alg::Ps256, &sig::RSA_PSS_2048_8192_SHA256),
            Key::Rsa(bits) if bits < 4096 => (Alg::Ps384, &sig::RSA_PSS_2048_8192_SHA384),
            Key::Rsa(_) => (Alg::Ps512, &sig::RSA_PSS_2048_8192_SHA512),
            Key::P256 => (Alg::Es256, &sig::ECDSA_P256_SHA256_FIXED),
            Key::P384 => (Alg::Es384, &sig::ECDSA_P384_SHA384_FIXED),
            Key::P521 => (Alg::Es512, &sig::ECDSA_P521_SHA512_FIXED),
        };
        if envelope.alg != dictated {
            return Err(format!(
                "the envelope says {:?}, the leaf's key dictates {dictated:?}",
                envelope.alg
            ));
        }
        UnparsedPublicKey::new(algorithm, &leaf.key_bytes)
            .verify(&envelope.signed, &envelope.signature)
            .map_err(|_| "the signature does not verify with the leaf's key".to_owned())
    }

    /// Every certificate valid at `t` (Unix seconds).
    pub fn valid_at(&self, t: i64) -> Result<(), String> {
        for cert in &self.certs {
            let v = &cert.parsed.tbs_certificate.validity;
            let (from, to) = (
                v.not_before.to_unix_duration().as_secs() as i64,
                v.not_after.to_unix_duration().as_secs() as i64,
            );
            if t < from || t > to {
                return Err(format!(
                    "the certificate {} is valid from {} to {}, not at {}",
                    cert.parsed.tbs_certificate.subject,
                    crate::sigstore::rfc3339(from),
                    crate::sigstore::rfc3339(to),
                    crate::sigstore::rfc3339(t)
                ));
            }
        }
        Ok(())
    }

    /// Revocation cannot be checked offline: a chain that names an OCSP responder or a CRL could
    /// be revoked, and dimsum never claims otherwise.
    pub fn revocable(&self) -> Result<(), String> {
        for cert in &self.certs {
            let tbs = &cert.parsed.tbs_certificate;
            let ocsp = tbs
                .get::<AuthorityInfoAccessSyntax>()
                .ok()
                .flatten()
                .is_some_and(|(_, aia)| aia.0.iter().any(|a| a.access_method == OCSP));
            let crl = tbs
                .get::<CrlDistributionPoints>()
                .ok()
                .flatten()
                .is_some_and(|(_, dp)| !dp.0.is_empty());
            if ocsp || crl {
                return Err(format!(
                    "revocation not checked: {} names {} that dimsum cannot query offline",
                    tbs.subject,
                    if ocsp { "an OCSP responder" } else { "a CRL" }
                ));
            }
        }
        Ok(())
    }
}

impl Cert {
    fn read(der: &[u8]) -> Result<Cert, String> {
        let parsed =
            Certificate::from_der(der).map_err(|e| format!("a certificate is unreadable: {e}"))?;
        // The signed bytes exactly as received: the first element of the outer SEQUENCE.
        let tbs = AnyRef::from_der(der)
            .and_then(|outer| {
                SliceReader::new(outer.value()).and_then(|mut r| r.decode::<AnyRef<'_>>())
            })
            .and_then(|tbs| tbs.to_der())
            .map_err(|e| format!("a certificate is unreadable: {e}"))?;
        let spki = &parsed.tbs_certificate.subject_public_key_info;
        let key_bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or("a certificate's key is not whole bytes")?
            .to_vec();
        let key = if spki.algorithm.oid == RSA {
            let modulus = SliceReader::new(&key_bytes)
                .and_then(|mut r| {
                    r.sequence(|s| {
                        let modulus = s.decode::<UintRef<'_>>()?;
                        s.decode::<UintRef<'_>>()?;
                        Ok(modulus)
                    })
                })
                .map_err(|_| "a certificate's RSA key is unreadable".to_owned())?;
            Key::Rsa(modulus.as_bytes().len() * 8)
        } else if spki.algorithm.oid == EC {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(c) if c == P256 => Key::P256,
                Some(c) if c == P384 => Key::P384,
                Some(c) if c == P521 => Key::P521,
                _ => {
                    return Err(
                        "a certificate's EC key is on a curve Notation does not use".to_owned()
                    );
                }
            }
        } else {
            return Err(format!(
                "a certificate's key algorithm {} is not RSA or EC",
                spki.algorithm.oid
            ));
        };
        Ok(Cert {
            parsed,
            tbs,
            key,
            key_bytes,
        })
    }

    fn signature(&self) -> &[u8] {
        self.parsed.signature.raw_bytes()
    }

    /// Verifies `signature` over `message`, made with this certificate's key by `algorithm` (a
    /// certificate's signatureAlgorithm OID).
    fn verify(
        &self,
        algorithm: &ObjectIdentifier,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), String> {
        let alg: &'static dyn VerificationAlgorithm =
            match (algorithm.to_string().as_str(), self.key) {
                ("1.2.840.113549.1.1.11", Key::Rsa(_)) => &sig::RSA_PKCS1_2048_8192_SHA256,
                ("1.2.840.113549.1.1.12", Key::Rsa(_)) => &sig::RSA_PKCS1_2048_8192_SHA384,
                ("1.2.840.113549.1.1.13", Key::Rsa(_)) => &sig::RSA_PKCS1_2048_8192_SHA512,
                ("1.2.840.10045.4.3.2", Key::P256) => &sig::ECDSA_P256_SHA256_ASN1,
                ("1.2.840.10045.4.3.2", Key::P384) => &sig::ECDSA_P384_SHA256_ASN1,
                ("1.2.840.10045.4.3.3", Key::P384) => &sig::ECDSA_P384_SHA384_ASN1,
                ("1.2.840.10045.4.3.3", Key::P256) => &sig::ECDSA_P256_SHA384_ASN1,
                ("1.2.840.10045.4.3.4", Key::P521) => &sig::ECDSA_P521_SHA512_ASN1,
                (other, _) => {
                    return Err(format!(
                        "signature algorithm {other} with this key is not supported"
                    ));
                }
            };
        UnparsedPublicKey::new(alg, &self.key_bytes)
            .verify(message, signature)
            .map_err(|_| "bad signature".to_owned())
    }

    fn key_usage(&self) -> Result<Option<(bool, KeyUsage)>, String> {
        self.parsed
            .tbs_certificate
            .get::<KeyUsage>()
            .map_err(|e| format!("a key usage is unreadable: {e}"))
    }

    fn basic_constraints(&self) -> Result<Option<(bool, BasicConstraints)>, String> {
        self.parsed
            .tbs_certificate
            .get::<BasicConstraints>()
            .map_err(|e| format!("basic constraints are unreadable: {e}"))
    }

    /// notation-core-go's code-signing leaf rules.
    fn leaf_rules(&self) -> Result<(), String> {
        match self.key_usage()? {
            Some((true, ku)) if ku.0.contains(KeyUsages::DigitalSignature) => {
                let forbidden = [
                    KeyUsages::KeyEncipherment,
                    KeyUsages::DataEncipherment,
                    KeyUsages::KeyAgreement,
                    KeyUsages::KeyCertSign,
                    KeyUsages::CRLSign,
                    KeyUsages::EncipherOnly,
                    KeyUsages::DecipherOnly,
                ];
                if forbidden.iter().any(|f| ku.0.contains(*f)) {
                    return Err("the leaf's key usage allows more than signing".to_owned());
                }
            }
            _ => return Err("the leaf lacks a critical digitalSignature key usage".to_owned()),
        }
        if let Some((_, bc)) = self.basic_constraints()?
            && bc.ca
        {
            return Err("the leaf is a CA certificate".to_owned());
        }
        if let Some((_, eku)) = self
            .parsed
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .map_err(|e| format!("the leaf's extended key usage is unreadable: {e}"))?
            && let Some(bad) = eku
                .0
                .iter()
                .find(|o| FORBIDDEN_EKU.contains(&o.to_string().as_str()))
        {
            return Err(format!(
                "the leaf's extended key usage {bad} is not for code signing"
            ));
        }
        Ok(())
    }

    /// A CA with `below` CA certificates under it (the leaf not counted).
    fn ca_rules(&self, below: usize) -> Result<(), String> {
        match self.basic_constraints()? {
            Some((true, bc)) if bc.ca => {
                if let Some(limit) = bc.path_len_constraint
                    && below > usize::from(limit)
                {
                    return Err("a CA's path length constraint is exceeded".to_owned());
                }
            }
            _ => return Err("a CA certificate lacks critical basic constraints with cA".to_owned()),
        }
        match self.key_usage()? {
            Some((true, ku)) if ku.0.contains(KeyUsages::KeyCertSign) => Ok(()),
            _ => Err("a CA certificate lacks a critical keyCertSign key usage".to_owned()),
        }
    }
}
