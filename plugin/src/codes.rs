//! Application error codes and the code → HTTP status table.
//!
//! Application codes sit outside JSON-RPC's reserved range (-32768..=-32000). The HTTP statuses are
//! chosen for Orca's webhook stage (spinnaker.md §3.7), by whether waiting can change the answer:
//! permanent errors are 4xx (or 500 for an account no wait can mend) so the stage fails fast;
//! transient ones are 429/502/503 so it retries. 504 is deliberately unused: Orca's default
//! `failFastStatusCodes` is `[504]`, which would turn an outage into a terminal failure.

/// One application error: a stable number, a stable snake_case name, and an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// A repository, tag, digest, level or platform that is not well formed.
    InvalidReference,
    /// No account of that name in the configuration.
    UnknownAccount,
    /// The registry knows no such repository, tag or digest.
    NotFound,
    /// `level` is beyond the last history entry.
    LevelOutOfRange,
    /// The index has no manifest for the requested platform.
    NoMatchingPlatform,
    /// Not an image (Helm chart, signature, other artifact) or an unknown manifest type.
    UnsupportedManifest,
    /// The config cannot be converted to a history (or `strict` refused an extension).
    HistoryUnconvertible,
    /// The registry refused our credentials.
    RegistryDenied,
    /// The registry is rate-limiting us.
    RegistryRateLimited,
    /// The registry is down, answers 5xx, or timed out.
    RegistryUnavailable,
    /// The registry answered something we cannot trust: digest mismatch, oversize, garbage.
    RegistryBadResponse,
    /// The account's credentials cannot be produced (password command failed, secret unresolvable):
    /// permanent, the configuration must change.
    AccountUnusable,
    /// The registry did not answer within dimsum's time bound.
    UpstreamTimeout,
    /// The tag has moved on from the digest the trigger saw, and no manifest has that digest.
    TagMoved,
    /// The registry's token service granted nothing for the repository: it does not exist, or
    /// these credentials may not read it (Docker Hub never says which).
    NotFoundOrNoAccess,
    /// `signedBy` named a key, and no signature of the image verifies with it.
    NotSigned,
    /// A manifest or config larger than dimsum's limit: permanent until the limit is raised.
    TooLarge,
    /// Fiat does not grant the caller READ on the account.
    AccessDenied,
    /// Fiat could not be asked (down, slow, 5xx, garbled): no answer without the check.
    AuthorizationUnavailable,
}

impl Code {
    /// Every code, for tables and for tests that check each has a status.
    pub const ALL: [Code; 19] = [
        Code::InvalidReference,
        Code::UnknownAccount,
        Code::NotFound,
        Code::LevelOutOfRange,
        Code::NoMatchingPlatform,
        Code::UnsupportedManifest,
        Code::HistoryUnconvertible,
        Code::RegistryDenied,
        Code::RegistryRateLimited,
        Code::RegistryUnavailable,
        Code::RegistryBadResponse,
        Code::AccountUnusable,
        Code::UpstreamTimeout,
        Code::TagMoved,
        Code::NotFoundOrNoAccess,
        Code::NotSigned,
        Code::TooLarge,
        Code::AccessDenied,
        Code::AuthorizationUnavailable,
    ];

    /// The JSON-RPC error code.
    pub const fn number(self) -> i32 {
        match self {
            Code::InvalidReference => 1001,
            Code::UnknownAccount => 1002,
            Code::NotFound => 1003,
            Code::LevelOutOfRange => 1004,
            Code::NoMatchingPlatform => 1005,
            Code::UnsupportedManifest => 1006,
            Code::HistoryUnconvertible => 1007,
            Code::RegistryDenied => 1008,
            Code::RegistryRateLimited => 1009,
            Code::RegistryUnavailable => 1010,
            Code::RegistryBadResponse => 1011,
            Code::AccountUnusable => 1012,
            Code::UpstreamTimeout => 1013,
            Code::TagMoved => 1014,
            Code::NotFoundOrNoAccess => 1015,
            Code::NotSigned => 1016,
            Code::TooLarge => 1017,
            Code::AccessDenied => 1018,
            Code::AuthorizationUnavailable => 1019,
        }
    }

    /// The stable snake_case name, used in error `data` and documentation.
    pub const fn name(self) -> &'static str {
        match self {
            Code::InvalidReference => "invalid_reference",
            Code::UnknownAccount => "unknown_account",
            Code::NotFound => "not_found",
            Code::LevelOutOfRange => "level_out_of_range",
            Code::NoMatchingPlatform => "no_matching_platform",
            Code::UnsupportedManifest => "unsupported_manifest",
            Code::HistoryUnconvertible => "history_unconvertible",
            Code::RegistryDenied => "registry_denied",
            Code::RegistryRateLimited => "registry_rate_limited",
            Code::RegistryUnavailable => "registry_unavailable",
            Code::RegistryBadResponse => "registry_bad_response",
            Code::AccountUnusable => "account_unusable",
            Code::UpstreamTimeout => "upstream_timeout",
            Code::TagMoved => "tag_moved",
            Code::NotFoundOrNoAccess => "not_found_or_no_access",
            Code::NotSigned => "not_signed",
            Code::TooLarge => "too_large",
            Code::AccessDenied => "access_denied",
            Code::AuthorizationUnavailable => "authorization_unavailable",
        }
    }

    /// The HTTP status the REST shim answers with (spinnaker.md §3.7).
    pub const fn http_status(self) -> u16 {
        match self {
            Code::InvalidReference => 400,
            Code::UnknownAccount
            | Code::NotFound
            | Code::LevelOutOfRange
            | Code::NoMatchingPlatform
            | Code::NotFoundOrNoAccess => 404,
            Code::UnsupportedManifest | Code::HistoryUnconvertible | Code::TooLarge => 422,
            Code::RegistryDenied | Code::AccessDenied => 403,
            Code::RegistryRateLimited => 429,
            Code::RegistryUnavailable | Code::UpstreamTimeout | Code::AuthorizationUnavailable => {
                503
            }
            // A configuration no wait can mend (an unresolvable secret, a failing
            // passwordCommand): 500 is in the stage's failFastStatusCodes.
            Code::AccountUnusable => 500,
            Code::RegistryBadResponse => 502,
            Code::TagMoved => 409,
            Code::NotSigned => 412,
        }
    }

    /// Whether waiting can change the answer: Orca's stage retries exactly these (429, 502, 503,
    /// none in its `failFastStatusCodes`), and the CLI exits 6 for them.
    pub const fn is_transient(self) -> bool {
        matches!(self.http_status(), 429 | 502 | 503)
    }

    /// The code with this JSON-RPC number, if it is one of ours.
    pub fn from_number(number: i32) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.number() == number)
    }
}

/// The snake_case name of one of JSON-RPC's own codes (or of ours), for error `data`.
pub fn rpc_name(code: i32) -> &'static str {
    match code {
        -32700 => "parse_error",
        -32600 => "invalid_request",
        -32601 => "method_not_found",
        -32602 => "invalid_params",
        -32603 => "internal_error",
        -32001 => "unauthorized",
        other => Code::from_number(other).map_or("server_error", Code::name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_outside_the_reserved_range_and_never_504() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.number()), "duplicate {}", code.number());
            assert!(!(-32768..=-32000).contains(&code.number()));
            assert_eq!(Code::from_number(code.number()), Some(code));
            assert_ne!(code.http_status(), 504, "{}", code.name());
        }
    }
}
