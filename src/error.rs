//! The crate's error: what went wrong, for which account and image, and the one mapping from it to
//! the wire contract ([`dimsum_rest::Code`]). Transports convert through [`Error::code`] only.

use std::time::Duration;

use dimsum_rest::Code;

use crate::registry::Digest;
use crate::{history, registry};

/// A dimsum call failed. Cloneable: lookups that shared one fetch share its error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A repository, reference, platform or level that is not well formed.
    #[error("{0}")]
    InvalidInput(String),
    /// No account of that name.
    #[error("unknown account {account:?} (configured: {})", .known.join(", "))]
    UnknownAccount {
        /// The name asked for.
        account: String,
        /// The names configured.
        known: Vec<String>,
    },
    /// The account exists but cannot be used.
    #[error("account {account:?} is unusable: {reason}")]
    AccountUnusable {
        /// The account.
        account: String,
        /// Why.
        reason: String,
    },
    /// The registry call failed.
    #[error("account {account:?}: {source}")]
    Registry {
        /// The account.
        account: String,
        /// The registry error.
        #[source]
        source: registry::Error,
    },
    /// The config blob cannot be converted.
    #[error("account {account:?}: {image}: {source}")]
    History {
        /// The account.
        account: String,
        /// `repository@digest from host` of the image.
        image: String,
        /// The conversion error.
        #[source]
        source: history::Error,
    },
    /// The config blob is not an image config.
    #[error(
        "account {account:?}: {image}: config media type {media_type:?} is not a container image config"
    )]
    NotAnImage {
        /// The account.
        account: String,
        /// `repository@digest from host` of the image.
        image: String,
        /// The config's media type.
        media_type: String,
    },
    /// A schema1 manifest asked for its config blob.
    #[error(
        "account {account:?}: {image} is a schema1 manifest, which has no config blob (its history level 0 holds the config)"
    )]
    NoConfig {
        /// The account.
        account: String,
        /// `repository@digest from host` of the image.
        image: String,
    },
    /// `level` is past the last entry.
    #[error("account {account:?}: {image}: level {level} is out of range: the image has {entries} history entries (levels 0 to {})", .entries.saturating_sub(1))]
    LevelOutOfRange {
        /// The account.
        account: String,
        /// `repository@digest from host` of the image.
        image: String,
        /// The level asked for.
        level: u64,
        /// How many entries there are.
        entries: usize,
    },
    /// The whole call took longer than `callTimeoutMillis`.
    #[error("account {account:?}: no answer from the registry within {}ms", .after.as_millis())]
    Timeout {
        /// The account.
        account: String,
        /// The bound.
        after: Duration,
    },
    /// The trigger's digest is neither the tag's image now nor a manifest in the repository.
    #[error(
        "account {account:?}: {image} has moved on: it now names {current}, and {given} (the digest given) is neither that image's manifest or config nor a manifest in the repository"
    )]
    TagMoved {
        /// The account.
        account: String,
        /// `repository:tag`.
        image: String,
        /// The tag's digest now.
        current: Digest,
        /// The digest the caller gave.
        given: Digest,
    },
    /// Fiat does not grant `user` READ on `account` (Clouddriver's words).
    #[error("Access denied to account {account} - required authorization: READ (user {user:?})")]
    AccessDenied {
        /// Who asked.
        user: String,
        /// The account.
        account: String,
    },
    /// Fiat could not be asked: the answer is withheld, never given unchecked.
    #[error("cannot check {user:?}'s permissions with Fiat: {detail}")]
    AuthorizationUnavailable {
        /// Who asked.
        user: String,
        /// What went wrong.
        detail: String,
    },
    /// `signedBy` named a key or identity and no signature of the image verified and
    /// satisfied it.
    #[error(
        "account {account:?}: {image}: no signature of {digest}{} verifies with the key or identity {key:?} (see getSignatures or `dimsum verify` for each signature's reason)",
        and_index(.index_digest)
    )]
    NotSigned {
        /// The account.
        account: String,
        /// `repository:reference`.
        image: String,
        /// The image manifest's digest.
        digest: String,
        /// The index's digest, when the reference named one.
        index_digest: Option<String>,
        /// The key or identity name.
        key: String,
    },
}

/// Used by [`Error::NotSigned`]'s message.
fn and_index(index: &Option<String>) -> String {
    index
        .as_deref()
        .map(|i| format!(" or its index {i}"))
        .unwrap_or_default()
}

impl Error {
    /// The application code for this error: the single mapping onto the wire contract.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidInput(_) => Code::InvalidReference,
            Error::UnknownAccount { .. } => Code::UnknownAccount,
            Error::AccountUnusable { .. } => Code::AccountUnusable,
            Error::LevelOutOfRange { .. } => Code::LevelOutOfRange,
            Error::Timeout { .. } => Code::UpstreamTimeout,
            Error::TagMoved { .. } => Code::TagMoved,
            Error::NotSigned { .. } => Code::NotSigned,
            Error::AccessDenied { .. } => Code::AccessDenied,
            Error::AuthorizationUnavailable { .. } => Code::AuthorizationUnavailable,
            Error::NotAnImage { .. } | Error::NoConfig { .. } => Code::UnsupportedManifest,
            Error::History { source, .. } => match source {
                history::Error::InvalidJson(_) | history::Error::NotAnObject(_) => {
                    Code::UnsupportedManifest
                }
                _ => Code::HistoryUnconvertible,
            },
            Error::Registry { source, .. } => match source {
                registry::Error::NotFound { .. } => Code::NotFound,
                registry::Error::NotFoundOrNoAccess { .. } => Code::NotFoundOrNoAccess,
                registry::Error::Denied { .. } => Code::RegistryDenied,
                registry::Error::RateLimited { .. } => Code::RegistryRateLimited,
                registry::Error::Unavailable { .. } => Code::RegistryUnavailable,
                registry::Error::Timeout { .. } => Code::UpstreamTimeout,
                registry::Error::BadResponse { .. } => Code::RegistryBadResponse,
                registry::Error::TooLarge { .. } => Code::TooLarge,
                registry::Error::NoMatchingPlatform { .. }
                | registry::Error::OtherPlatform { .. } => Code::NoMatchingPlatform,
                registry::Error::Unsupported { .. } => Code::UnsupportedManifest,
                registry::Error::Credentials { .. } => Code::AccountUnusable,
                registry::Error::InvalidReference(_) => Code::InvalidReference,
            },
        }
    }

    /// Whether the registry said it has no such repository, tag or digest.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::Registry {
                source: registry::Error::NotFound { .. },
                ..
            }
        )
    }

    /// `Retry-After` in seconds, when the registry gave one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Registry {
                source: registry::Error::RateLimited { retry_after, .. },
                ..
            } => *retry_after,
            _ => None,
        }
    }
}

/// The CLI's exit status for an error code (documented in docs/api.md): 6 for exactly the
/// transient codes ([`Code::is_transient`]), a status of its own for each kind of permanent one.
pub fn exit_status(code: Code) -> u8 {
    match code {
        Code::InvalidReference => 2,
        Code::UnknownAccount | Code::AccountUnusable => 3,
        Code::NotFound
        | Code::NotFoundOrNoAccess
        | Code::LevelOutOfRange
        | Code::NoMatchingPlatform => 4,
        Code::RegistryDenied => 5,
        Code::RegistryUnavailable
        | Code::RegistryRateLimited
        | Code::UpstreamTimeout
        | Code::RegistryBadResponse
        | Code::AuthorizationUnavailable => 6,
        Code::UnsupportedManifest | Code::HistoryUnconvertible | Code::TooLarge => 7,
        Code::TagMoved => 8,
        Code::NotSigned => 9,
        Code::AccessDenied => 10,
    }
}

impl From<Error> for jsonrpsee::types::ErrorObjectOwned {
    /// The one conversion to the wire: a stable code, a message that names the account and image
    /// (never a credential), and `data` with the code's name, its HTTP status and any `Retry-After`.
    fn from(e: Error) -> Self {
        let code = e.code();
        // Logged once here, where every transport's errors pass.
        tracing::info!(code = code.name(), "{e}");
        let mut data = serde_json::json!({"name": code.name(), "httpStatus": code.http_status()});
        if let Some(secs) = e.retry_after() {
            data["retryAfter"] = secs.into();
        }
        jsonrpsee::types::ErrorObjectOwned::owned(code.number(), e.to_string(), Some(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_six_is_exactly_what_a_retry_can_fix() {
        for code in Code::ALL {
            assert_eq!(
                exit_status(code) == 6,
                code.is_transient(),
                "{}",
                code.name()
            );
        }
        assert_eq!(
            exit_status(Code::AccountUnusable),
            3,
            "a configuration error"
        );
    }
}
