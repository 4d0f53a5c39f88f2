//! Notation (Notary Project) signatures, verified offline the way `notation verify` does, under
//! the operator's own `trustpolicy.json` and trust store (notation.md). Pure: bytes and a clock
//! in, a verdict out.
//!
//! - [`policy`]: the trust policy document and the trust stores it names.
//! - [`envelope`]: JWS and COSE envelopes, read into one shape.
//! - [`cert`]: the chain's certificate rules and the leaf's key.
//!
//! [`verify`] runs notation-go's checks in its order: integrity (envelope, signature, algorithm
//! bound to the key, the payload's descriptor equal to the artifact's), authenticity (a chain
//! certificate in a named trust store; a trusted identity), expiry, authentic timestamp,
//! revocation; each enforced, logged or skipped as the policy's level and overrides say.
//! Revocation cannot be checked offline, and RFC 3161 timestamps are not verified: where a policy
//! needs either, the signature does not verify and says why.

pub mod cert;
pub mod envelope;
pub mod policy;

use self::envelope::{Envelope, Scheme, Target};
use self::policy::{Action, Notation, Policy, StoreType};
use crate::sigstore::cert::Identity;

/// A verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `Some(true)`: verified under `policy`; `Some(false)`: not, see `reason`; `None`: a
    /// `skip` policy, or none configured.
    pub verified: Option<bool>,
    /// The policy that judged it.
    pub policy: Option<String>,
    /// The leaf's subject and issuer DNs.
    pub identity: Option<Identity>,
    /// The authentic signing time (signingAuthority), Unix seconds.
    pub signed_at: Option<i64>,
    /// Why it does not verify, or what was only logged.
    pub reason: Option<String>,
}

impl Verdict {
    fn unjudged(reason: String) -> Verdict {
        Verdict {
            verified: None,
            policy: None,
            identity: None,
            signed_at: None,
            reason: Some(reason),
        }
    }
}

/// Verifies the envelope (`layer_type`, `bytes`) of a signature of `artifact`, found in
/// `scope` (`registry/repository`), at `now` (Unix seconds).
pub fn verify(
    trust: Option<&Notation>,
    scope: &str,
    artifact: &Target,
    layer_type: &str,
    bytes: &[u8],
    now: i64,
) -> Verdict {
    let Some(trust) = trust else {
        return Verdict::unjudged(
            "no Notation trust policy is configured (dimsum.trust.notation)".to_owned(),
        );
    };
    let Some(policy) = trust.policy_for(scope) else {
        return Verdict {
            verified: Some(false),
            reason: Some(format!("no trust policy applies to {scope}")),
            ..Verdict::unjudged(String::new())
        };
    };
    let Some(checks) = policy.checks else {
        return Verdict {
            policy: Some(policy.name.clone()),
            ..Verdict::unjudged(format!("trust policy {:?} skips verification", policy.name))
        };
    };
    let mut verdict = Verdict {
        verified: Some(false),
        policy: Some(policy.name.clone()),
        identity: None,
        signed_at: None,
        reason: None,
    };
    let mut logged = Vec::new();
    let result = (|| {
        // Integrity: always enforced.
        let envelope = envelope::read(layer_type, bytes)?;
        let leaf = cert::Chain::read(&envelope.chain)?;
        verdict.identity = Some(leaf.identity());
        leaf.check_signature(&envelope)?;
        if envelope.target != *artifact {
            return Err(format!(
                "the signed descriptor ({} {} {} bytes) is not this artifact's ({} {} {} bytes)",
                envelope.target.media_type,
                envelope.target.digest,
                envelope.target.size,
                artifact.media_type,
                artifact.digest,
                artifact.size
            ));
        }
        let mut judge = |action: Action, outcome: Result<(), String>| match (action, outcome) {
            (_, Ok(())) | (Action::Skip, _) => Ok(()),
            (Action::Log, Err(e)) => {
                logged.push(e);
                Ok(())
            }
            (Action::Enforce, Err(e)) => Err(e),
        };
        judge(checks.authenticity, authentic(policy, &envelope, &leaf))?;
        judge(checks.expiry, expiry(&envelope, now))?;
        let time = match envelope.scheme {
            Scheme::SigningAuthority => envelope.authentic_time,
            Scheme::X509 => None,
        };
        judge(
            checks.authentic_timestamp,
            timestamp(policy, &envelope, &leaf, time, now),
        )?;
        judge(checks.revocation, leaf.revocable())?;
        Ok(time)
    })();
    match result {
        Ok(time) => {
            verdict.verified = Some(true);
            verdict.signed_at = time;
            if !logged.is_empty() {
                verdict.reason = Some(format!(
                    "verified under {:?}, which only logs: {}",
                    policy.name,
                    logged.join("; ")
                ));
            }
        }
        Err(e) => verdict.reason = Some(format!("{e} (trust policy {:?})", policy.name)),
    }
    verdict
}

/// Authenticity: a certificate of the chain is byte-equal to one in a trust store of the type the
/// scheme wants, and the leaf's subject holds one of the trusted identities.
fn authentic(policy: &Policy, envelope: &Envelope, chain: &cert::Chain) -> Result<(), String> {
    let wanted = match envelope.scheme {
        Scheme::X509 => StoreType::Ca,
        Scheme::SigningAuthority => StoreType::SigningAuthority,
    };
    let member = policy
        .stores
        .iter()
        .filter(|(kind, _, _)| *kind == wanted)
        .any(|(_, _, certs)| envelope.chain.iter().any(|c| certs.contains(c)));
    if !member {
        return Err(format!(
            "no certificate of the signature's chain is in a {} trust store of the policy",
            match wanted {
                StoreType::Ca => "ca",
                _ => "signingAuthority",
            }
        ));
    }
    match &policy.identities {
        None => Ok(()),
        Some(sets) => {
            let subject = chain.subject_pairs();
            let holds = |set: &Vec<(String, String)>| set.iter().all(|pair| subject.contains(pair));
            if sets.iter().any(holds) {
                Ok(())
            } else {
                Err(format!(
                    "the signer {} is not a trusted identity",
                    chain.identity().subject.unwrap_or_default()
                ))
            }
        }
    }
}

fn expiry(envelope: &Envelope, now: i64) -> Result<(), String> {
    match envelope.expiry {
        Some(expiry) if expiry < now => Err(format!(
            "the signature expired at {}",
            crate::sigstore::rfc3339(expiry)
        )),
        _ => Ok(()),
    }
}

/// The chain must be valid at an authentic time: the signing service's, else now. A policy
/// that wants an RFC 3161 timestamp cannot be satisfied here: those are not verified.
fn timestamp(
    policy: &Policy,
    envelope: &Envelope,
    chain: &cert::Chain,
    authentic: Option<i64>,
    now: i64,
) -> Result<(), String> {
    if let Some(t) = authentic {
        return chain.valid_at(t);
    }
    let tsa = policy
        .stores
        .iter()
        .any(|(kind, _, _)| *kind == StoreType::Tsa);
    let valid_now = chain.valid_at(now);
    match (tsa, policy.timestamp_after_expiry, valid_now) {
        (false, _, valid) => valid,
        (true, true, Ok(())) => Ok(()),
        (true, _, _) if !envelope.timestamped => {
            Err("the policy requires an RFC 3161 timestamp and the signature has none".to_owned())
        }
        (true, _, _) => Err(
            "timestamp not verified: the policy requires its RFC 3161 timestamp, which dimsum does not verify"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests;
