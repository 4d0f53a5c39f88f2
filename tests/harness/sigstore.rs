//! Our own Sigstore, offline (keyless.md §8): a Fulcio-like CA (P-384 root → intermediate with
//! codeSigning), leaves shaped as Fulcio issues them (empty subject, critical SAN, issuer and
//! source-repository claims, an embedded SCT from our CT log, ten minutes of validity), a
//! Rekor-like log key that signs entry timestamps and checkpoints, and the `trusted_root.json`
//! naming them. Signatures come out in cosign's `.sig` annotation form and as v0.3 bundles.
//!
//! Every piece is made the way the real services make it, so the verifier that accepts the real
//! public-good fixtures must accept these, and each [`Tamper`] breaks exactly one check.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use x509_cert::der::{Decode as _, Encode as _};

/// When our log integrated every entry: a day ago, so every certificate has long expired by the
/// wall clock and only the log's time can make it valid.
pub fn integrated_time() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - 86_400
}

/// The GitHub Actions issuer, as Fulcio writes it.
pub const GITHUB: &str = "https://token.actions.githubusercontent.com";
/// The workflow identity our CI signs as.
pub const RELEASE: &str =
    "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
/// The commit that workflow built.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// One way to break a signature (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// A good signature.
    None,
    /// The stored payload changed after signing.
    Payload,
    /// A byte of the signed entry timestamp flipped.
    Set,
    /// The certificate's ten minutes ended before the log's time.
    Expired,
    /// The leaf issued by a CA the trust root does not hold.
    OtherRoot,
    /// The leaf without its SCT.
    NoSct,
}

/// Who a leaf names.
#[derive(Debug, Clone)]
pub struct Who {
    /// The SAN (a URI for workflows).
    pub subject: String,
    /// The OIDC issuer (`.1.1` raw and `.1.8` UTF8String).
    pub issuer: String,
    /// `sourceRepositoryRef`.
    pub git_ref: String,
}

impl Who {
    /// `acme/app`'s release workflow on main.
    pub fn release() -> Who {
        Who {
            subject: RELEASE.to_owned(),
            issuer: GITHUB.to_owned(),
            git_ref: "refs/heads/main".to_owned(),
        }
    }
}

/// Our Sigstore instance.
pub struct TestSigstore {
    root: rcgen::Certificate,
    intermediate: rcgen::Certificate,
    intermediate_key: KeyPair,
    intermediate_params: CertificateParams,
    other: (CertificateParams, KeyPair),
    rekor: SigningKey,
    ct: SigningKey,
    serial: std::cell::Cell<u64>,
}

fn ca_params(name: &str, path_len: u8, code_signing: bool) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "dimsum.test");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    if code_signing {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    }
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    params
}

fn p384() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap()
}

fn at(t: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t).unwrap()
}

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn spki(key: &SigningKey) -> Vec<u8> {
    key.verifying_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn der_sig(key: &SigningKey, message: &[u8]) -> Vec<u8> {
    let sig: Signature = key.sign(message);
    sig.to_der().as_bytes().to_vec()
}

/// DSSE's pre-authentication encoding, written out here as the specification states it, not taken
/// from the code under test.
pub fn pae(payload_type: &str, payload: &str) -> String {
    format!(
        "DSSEv1 {} {payload_type} {} {payload}",
        payload_type.len(),
        payload.len()
    )
}

/// A leaf and its key.
pub struct Leaf {
    /// The signing key.
    pub key: SigningKey,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl Default for TestSigstore {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSigstore {
    /// A fresh instance: new keys every run.
    pub fn new() -> TestSigstore {
        let root_key = p384();
        let root = ca_params("test-sigstore", 1, false)
            .self_signed(&root_key)
            .unwrap();
        let root_issuer = Issuer::new(ca_params("test-sigstore", 1, false), root_key);
        let intermediate_key = p384();
        let intermediate_params = ca_params("test-sigstore-intermediate", 0, true);
        let intermediate = intermediate_params
            .signed_by(&intermediate_key, &root_issuer)
            .unwrap();
        let other_key = p384();
        let other = ca_params("somebody-else", 0, true);
        let seed = |b: u8| SigningKey::from_slice(&[b; 32]).unwrap();
        TestSigstore {
            root,
            intermediate,
            intermediate_key,
            intermediate_params,
            other: (other, other_key),
            rekor: seed(0x52),
            ct: seed(0x43),
            serial: std::cell::Cell::new(1),
        }
    }

    fn log_id(&self) -> Vec<u8> {
        Sha256::digest(spki(&self.rekor)).to_vec()
    }

    /// The `trusted_root.json` holding our CA, log and CT log.
    pub fn trusted_root(&self) -> String {
        let b64 = |b: &[u8]| STANDARD.encode(b);
        let log = |key: &SigningKey, url: &str| {
            json!({"baseUrl": url, "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": b64(&spki(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"}},
                "logId": {"keyId": b64(&Sha256::digest(spki(key)))}})
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.rekor, "https://rekor.dimsum.test")],
            "certificateAuthorities": [{
                "subject": {"organization": "dimsum.test", "commonName": "test-sigstore"},
                "uri": "https://fulcio.dimsum.test",
                "certChain": {"certificates": [
                    {"rawBytes": b64(self.intermediate.der())},
                    {"rawBytes": b64(self.root.der())}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}}],
            "ctlogs": [log(&self.ct, "https://ctfe.dimsum.test")],
            "timestampAuthorities": [],
        })
        .to_string()
    }

    /// A leaf for `who`, shaped as Fulcio issues it.
    pub fn leaf(&self, who: &Who, tamper: Tamper) -> Leaf {
        let key = SigningKey::from_slice(&Sha256::digest(who.subject.as_bytes())).unwrap();
        let pkcs8 = key.to_pkcs8_der().unwrap();
        let key_pair = KeyPair::try_from(pkcs8.as_bytes()).unwrap();
        let t = integrated_time();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(who.subject.clone().try_into().unwrap())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.use_authority_key_identifier_extension = true;
        let start = if tamper == Tamper::Expired {
            t - 1200
        } else {
            t - 60
        };
        params.not_before = at(start);
        params.not_after = at(start + 600);
        let serial = self.serial.get();
        self.serial.set(serial + 1);
        params.serial_number = Some(SerialNumber::from(serial));
        let utf8 = |s: &str| {
            let mut v = vec![0x0c, s.len() as u8];
            v.extend_from_slice(s.as_bytes());
            v
        };
        let fulcio = |arc: u64| vec![1, 3, 6, 1, 4, 1, 57264, 1, arc];
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(&fulcio(1), who.issuer.as_bytes().to_vec()),
            CustomExtension::from_oid_content(&fulcio(8), utf8(&who.issuer)),
            CustomExtension::from_oid_content(&fulcio(12), utf8("https://github.com/acme/app")),
            CustomExtension::from_oid_content(&fulcio(13), utf8(COMMIT)),
            CustomExtension::from_oid_content(&fulcio(14), utf8(&who.git_ref)),
        ];
        let issuer_params = if tamper == Tamper::OtherRoot {
            &self.other.0
        } else {
            &self.intermediate_params
        };
        let issuer_key = if tamper == Tamper::OtherRoot {
            &self.other.1
        } else {
            &self.intermediate_key
        };
        let issuer = Issuer::from_params(issuer_params, issuer_key);
        let precert = params.signed_by(&key_pair, &issuer).unwrap();
        if tamper == Tamper::NoSct {
            return Leaf {
                key,
                der: precert.der().to_vec(),
            };
        }
        // RFC 6962: the CT log signs the precertificate's TBS and the issuer's key hash; the
        // final certificate is the same TBS plus the SCT list.
        let tbs = x509_cert::Certificate::from_der(precert.der())
            .unwrap()
            .tbs_certificate
            .to_der()
            .unwrap();
        let issuer_spki = x509_cert::Certificate::from_der(self.intermediate.der())
            .unwrap()
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        let timestamp = (t as u64 - 60) * 1000;
        let mut signed = vec![0u8, 0];
        signed.extend_from_slice(&timestamp.to_be_bytes());
        signed.extend_from_slice(&1u16.to_be_bytes());
        signed.extend_from_slice(&Sha256::digest(&issuer_spki));
        signed.extend_from_slice(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend_from_slice(&tbs);
        signed.extend_from_slice(&0u16.to_be_bytes());
        let sig = der_sig(&self.ct, &signed);
        let mut sct = vec![0u8];
        sct.extend_from_slice(&Sha256::digest(spki(&self.ct)));
        sct.extend_from_slice(&timestamp.to_be_bytes());
        sct.extend_from_slice(&0u16.to_be_bytes());
        sct.extend_from_slice(&[4, 3]);
        sct.extend_from_slice(&(sig.len() as u16).to_be_bytes());
        sct.extend_from_slice(&sig);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
        list.extend_from_slice(&sct);
        let octets = x509_cert::der::asn1::OctetString::new(list)
            .unwrap()
            .to_der()
            .unwrap();
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                octets,
            ));
        let cert = params.signed_by(&key_pair, &issuer).unwrap();
        Leaf {
            key,
            der: cert.der().to_vec(),
        }
    }

    /// A log entry for `body`, as cosign's `bundle` annotation holds it.
    fn entry(&self, body: &Value, tamper: Tamper) -> (String, Value) {
        let body = STANDARD.encode(body.to_string());
        let t = integrated_time();
        let log_id = hex::encode(self.log_id());
        let canonical =
            format!(r#"{{"body":"{body}","integratedTime":{t},"logID":"{log_id}","logIndex":7}}"#);
        let mut set = der_sig(&self.rekor, canonical.as_bytes());
        if tamper == Tamper::Set {
            let n = set.len() - 3;
            set[n] ^= 1;
        }
        let bundle = json!({"SignedEntryTimestamp": STANDARD.encode(&set),
            "Payload": {"body": body, "integratedTime": t, "logIndex": 7, "logID": log_id}});
        (body, bundle)
    }

    /// The layer of a cosign `.sig` manifest signing `digest` as `who`: the payload to store as
    /// its blob and its annotations. `names` is the digest the payload names.
    pub fn cosign_layer(
        &self,
        who: &Who,
        names: &str,
        tamper: Tamper,
    ) -> (Vec<u8>, BTreeMap<String, String>) {
        let leaf = self.leaf(who, tamper);
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1/team/app"}},"image":{{"docker-manifest-digest":"{names}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        let signature = der_sig(&leaf.key, payload.as_bytes());
        let body = json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(&payload))}},
            "signature": {"content": STANDARD.encode(&signature),
                "publicKey": {"content": STANDARD.encode(pem(&leaf.der))}}}});
        let (_, bundle) = self.entry(&body, tamper);
        let stored = if tamper == Tamper::Payload {
            payload.replace("127.0.0.1", "127.0.0.2")
        } else {
            payload
        };
        let annotations = BTreeMap::from([
            (
                "dev.cosignproject.cosign/signature".to_owned(),
                STANDARD.encode(&signature),
            ),
            ("dev.sigstore.cosign/certificate".to_owned(), pem(&leaf.der)),
            (
                "dev.sigstore.cosign/chain".to_owned(),
                pem(self.intermediate.der()) + &pem(self.root.der()),
            ),
            ("dev.sigstore.cosign/bundle".to_owned(), bundle.to_string()),
        ]);
        (stored.into_bytes(), annotations)
    }

    /// The layer of a cosign `.att` manifest (`cosign attest`, keyless): the DSSE envelope to
    /// store as its blob, and the certificate, chain and Rekor bundle (a `dsse` entry)
    /// annotations, with cosign's empty signature annotation.
    pub fn attestation_layer(
        &self,
        who: &Who,
        subject: &str,
        predicate: (&str, Value),
    ) -> (Vec<u8>, BTreeMap<String, String>) {
        let bundle: Value =
            serde_json::from_slice(&self.bundle(who, subject, predicate, Tamper::None)).unwrap();
        let material = &bundle["verificationMaterial"];
        let entry = &material["tlogEntries"][0];
        let der = STANDARD
            .decode(material["certificate"]["rawBytes"].as_str().unwrap())
            .unwrap();
        let rekor = json!({"SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {"body": entry["canonicalizedBody"],
                "integratedTime": entry["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
                "logIndex": 7, "logID": hex::encode(self.log_id())}});
        let annotations = BTreeMap::from([
            (
                "dev.cosignproject.cosign/signature".to_owned(),
                String::new(),
            ),
            ("dev.sigstore.cosign/certificate".to_owned(), pem(&der)),
            (
                "dev.sigstore.cosign/chain".to_owned(),
                pem(self.intermediate.der()) + &pem(self.root.der()),
            ),
            ("dev.sigstore.cosign/bundle".to_owned(), rekor.to_string()),
        ]);
        (bundle["dsseEnvelope"].to_string().into_bytes(), annotations)
    }

    /// A v0.3 Sigstore bundle: a DSSE envelope over an in-toto statement whose subject is
    /// `subject` (a `sha256:` digest), with its log entry, SET and inclusion proof.
    pub fn bundle(
        &self,
        who: &Who,
        subject: &str,
        predicate: (&str, Value),
        tamper: Tamper,
    ) -> Vec<u8> {
        let leaf = self.leaf(who, tamper);
        let statement = json!({"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "127.0.0.1/team/app", "digest": {"sha256": subject.trim_start_matches("sha256:")}}],
            "predicateType": predicate.0, "predicate": predicate.1})
        .to_string();
        let payload_type = "application/vnd.in-toto+json";
        let signature = der_sig(&leaf.key, pae(payload_type, &statement).as_bytes());
        let body = json!({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(Sha256::digest(&statement))},
            "signatures": [{"signature": STANDARD.encode(&signature), "verifier": STANDARD.encode(pem(&leaf.der))}]}});
        let (body_b64, bundle) = self.entry(&body, tamper);
        // A log of one entry: the root is the leaf hash; the checkpoint commits to it.
        let mut leaf_hash = Sha256::new();
        leaf_hash.update([0u8]);
        leaf_hash.update(body.to_string());
        let root = STANDARD.encode(leaf_hash.finalize());
        let note = format!("rekor.dimsum.test - 1\n1\n{root}\n");
        let mut hint_sig = self.log_id()[..4].to_vec();
        hint_sig.extend_from_slice(&der_sig(&self.rekor, note.as_bytes()));
        let checkpoint = format!(
            "{note}\n— rekor.dimsum.test {}\n",
            STANDARD.encode(hint_sig)
        );
        let stored = if tamper == Tamper::Payload {
            statement.replace("127.0.0.1", "127.0.0.2")
        } else {
            statement
        };
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": STANDARD.encode(&leaf.der)},
                "tlogEntries": [{
                    "logIndex": "7",
                    "logId": {"keyId": STANDARD.encode(self.log_id())},
                    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                    "integratedTime": bundle["Payload"]["integratedTime"].to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": bundle["SignedEntryTimestamp"]},
                    "inclusionProof": {"logIndex": "0", "rootHash": root, "treeSize": "1",
                        "hashes": [], "checkpoint": {"envelope": checkpoint}},
                    "canonicalizedBody": body_b64,
                }],
            },
            "dsseEnvelope": {
                "payload": STANDARD.encode(stored),
                "payloadType": payload_type,
                "signatures": [{"sig": STANDARD.encode(&signature), "keyid": ""}],
            },
        })
        .to_string()
        .into_bytes()
    }
}
