//! Registry errors: the registry's own error body, classified, plus transport failures
//! (registry-protocol.md §9). Every variant names what was being fetched and from where.

use std::time::Duration;

use serde::Deserialize;

use super::reference::InvalidReference;
use crate::credentials;

/// A registry error code from an `{"errors":[{"code":…}]}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    /// `MANIFEST_UNKNOWN`.
    ManifestUnknown,
    /// `NAME_UNKNOWN`.
    NameUnknown,
    /// `BLOB_UNKNOWN`.
    BlobUnknown,
    /// `UNAUTHORIZED`.
    Unauthorized,
    /// `DENIED`.
    Denied,
    /// `TOOMANYREQUESTS`.
    TooManyRequests,
    /// `UNAVAILABLE`.
    Unavailable,
    /// Anything else, as written.
    Other(String),
}

impl ErrorCode {
    fn from_text(s: &str) -> ErrorCode {
        match s {
            "MANIFEST_UNKNOWN" => ErrorCode::ManifestUnknown,
            "NAME_UNKNOWN" => ErrorCode::NameUnknown,
            "BLOB_UNKNOWN" => ErrorCode::BlobUnknown,
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "DENIED" => ErrorCode::Denied,
            "TOOMANYREQUESTS" => ErrorCode::TooManyRequests,
            "UNAVAILABLE" => ErrorCode::Unavailable,
            other => ErrorCode::Other(other.to_owned()),
        }
    }
}

/// The first error of a registry error body, or a short excerpt of a body that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The code, when the body had one.
    pub code: Option<ErrorCode>,
    /// The message or a body excerpt, for logs and client-safe messages.
    pub message: String,
}

impl Envelope {
    /// Parses `{"errors":[{"code","message"}]}`, falling back to a truncated body.
    pub fn parse(body: &[u8]) -> Envelope {
        #[derive(Deserialize)]
        struct Body {
            errors: Vec<Item>,
        }
        #[derive(Deserialize)]
        struct Item {
            code: String,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(b) if !b.errors.is_empty() => {
                let first = &b.errors[0];
                Envelope {
                    code: Some(ErrorCode::from_text(&first.code)),
                    message: excerpt(first.message.as_bytes()),
                }
            }
            _ => Envelope {
                code: None,
                message: excerpt(body),
            },
        }
    }
}

/// At most 200 printable characters of a body, for messages.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// A registry operation failed. Cloneable: concurrent lookups that shared one fetch share its error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The registry does not have it (404, `MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, `BLOB_UNKNOWN`).
    #[error("{what}: not found{}", detail_suffix(.detail))]
    NotFound {
        /// What was fetched, e.g. `manifest team/app:v1 from 127.0.0.1:5000`.
        what: String,
        /// The registry's message.
        detail: String,
    },
    /// The registry refused our credentials (or had none to accept).
    #[error("{what}: access denied (HTTP {status}){}", detail_suffix(.detail))]
    Denied {
        /// What was fetched.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The registry's message.
        detail: String,
    },
    /// 429 or `TOOMANYREQUESTS`.
    #[error("{what}: rate limited by the registry{}", .retry_after.map(|s| format!(" (retry after {s}s)")).unwrap_or_default())]
    RateLimited {
        /// What was fetched.
        what: String,
        /// `Retry-After` in seconds, when given.
        retry_after: Option<u64>,
    },
    /// 5xx, `UNAVAILABLE`, or no connection.
    #[error("{what}: registry unavailable: {detail}")]
    Unavailable {
        /// What was fetched.
        what: String,
        /// The HTTP status, when the registry answered at all.
        status: Option<u16>,
        /// Status or connection error.
        detail: String,
    },
    /// No answer within the time bound.
    #[error("{what}: no answer within {}ms", .after.as_millis())]
    Timeout {
        /// What was fetched.
        what: String,
        /// The bound.
        after: Duration,
    },
    /// An answer we cannot trust or use: digest mismatch, oversize, garbage, an unexpected status.
    #[error("{what}: bad response from registry: {detail}")]
    BadResponse {
        /// What was fetched.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// The index has no manifest for the platform.
    #[error("{what}: no manifest for platform {wanted}; the index has {}", .available.join(", "))]
    NoMatchingPlatform {
        /// What was fetched.
        what: String,
        /// The platform asked for.
        wanted: String,
        /// The platforms the index lists.
        available: Vec<String>,
    },
    /// Not an image: a media type we do not read.
    #[error("{what}: unsupported media type {media_type:?} (not a container image)")]
    Unsupported {
        /// What was fetched.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// The account's credentials could not be produced.
    #[error("{what}: {source}")]
    Credentials {
        /// What was fetched.
        what: String,
        /// Why.
        #[source]
        source: credentials::Error,
    },
    /// The repository or reference is not well formed.
    #[error(transparent)]
    InvalidReference(#[from] InvalidReference),
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl Error {
    /// Whether retrying the same request may succeed: connection errors, 429 and 5xx.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::RateLimited { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let e = Envelope::parse(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
        );
        assert_eq!(
            e,
            Envelope {
                code: Some(ErrorCode::ManifestUnknown),
                message: "manifest unknown".into()
            }
        );
        let e = Envelope::parse(b"<html>\nBad gateway</html>");
        assert_eq!(e.code, None);
        assert_eq!(e.message, "<html>Bad gateway</html>");
        assert_eq!(Envelope::parse(&[b'x'; 1000]).message.len(), 200);
        assert_eq!(
            Envelope::parse(br#"{"errors":[{"code":"X"}]}"#).code,
            Some(ErrorCode::Other("X".into()))
        );
    }
}
