//! Content addressing: the `Digest` newtype, verification, and the signed-schema1 exception
//! (registry-protocol.md §4).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256, Sha512};

/// A content digest, `algorithm:encoded`, with the algorithms registries use.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:` + 64 lower-case hex or `sha512:` + 128 lower-case hex.
    pub fn parse(s: &str) -> Option<Digest> {
        let (algorithm, hex) = s.split_once(':')?;
        let len = match algorithm {
            "sha256" => 64,
            "sha512" => 128,
            _ => return None,
        };
        let ok = hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Digest(s.to_owned()))
    }

    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The digest of `bytes` with this digest's algorithm.
    pub fn same_algorithm_of(&self, bytes: &[u8]) -> Digest {
        match self.algorithm() {
            "sha512" => Digest(format!("sha512:{}", hex::encode(Sha512::digest(bytes)))),
            _ => Digest::sha256(bytes),
        }
    }

    /// Whether `bytes` hash to this digest.
    pub fn verifies(&self, bytes: &[u8]) -> bool {
        self.same_algorithm_of(bytes) == *self
    }

    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The digest as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The canonical payload of a signed schema1 manifest, which its digest covers instead of the body:
/// `body[..formatLength] + base64url(formatTail)` from the first signature's protected header.
/// `None` when the body carries no usable signature (then the body itself is hashed).
pub fn schema1_canonical_payload(body: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Signed {
        signatures: Vec<Signature>,
    }
    #[derive(serde::Deserialize)]
    struct Signature {
        protected: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Protected {
        format_length: usize,
        format_tail: String,
    }
    let signed: Signed = serde_json::from_slice(body).ok()?;
    let protected = URL_SAFE_NO_PAD
        .decode(signed.signatures.first()?.protected.trim_end_matches('='))
        .ok()?;
    let protected: Protected = serde_json::from_slice(&protected).ok()?;
    let tail = URL_SAFE_NO_PAD
        .decode(protected.format_tail.trim_end_matches('='))
        .ok()?;
    let mut payload = body.get(..protected.format_length)?.to_vec();
    payload.extend_from_slice(&tail);
    Some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_verify() {
        let d = Digest::sha256(b"layer-a");
        assert_eq!(
            d.as_str(),
            "sha256:589f0d58b9053a4ff7329b8fdb4f9dd120e29354c086ad0b3b10733f6cfd6de3"
        );
        assert_eq!(Digest::parse(d.as_str()), Some(d.clone()));
        assert!(d.verifies(b"layer-a") && !d.verifies(b"layer-b"));
        for bad in [
            "sha256:abc",
            "md5:00",
            "sha256:A3ED95CAEB02FFE68CDD9FD84406680AE93D633CB16422D00E8A7C22955B46D4",
            "latest",
            "",
        ] {
            assert_eq!(Digest::parse(bad), None, "{bad}");
        }
        let d512 = Digest::parse(&format!("sha512:{}", hex::encode(Sha512::digest(b"x")))).unwrap();
        assert!(d512.verifies(b"x"));
    }

    #[test]
    fn canonical_payload_splices_the_format_tail() {
        let payload = "{\n   \"schemaVersion\": 1\n}";
        let protected = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"formatLength":{},"formatTail":"{}","time":"x"}}"#,
            payload.len() - 2,
            URL_SAFE_NO_PAD.encode("\n}")
        ));
        let body = format!(
            "{},\n   \"signatures\": [{{\"protected\": \"{protected}\"}}]\n}}",
            &payload[..payload.len() - 2]
        );
        assert_eq!(
            schema1_canonical_payload(body.as_bytes()).unwrap(),
            payload.as_bytes()
        );
        assert_eq!(schema1_canonical_payload(b"{}"), None);
    }
}
