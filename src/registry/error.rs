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

/// The registry's own reason for an error, whatever shape its body has: the first error of
/// Distribution's `{"errors":[{"code","message"}]}`, a token service's `{"details"}` (Docker Hub)
/// or OAuth2 `{"error","error_description"}`, an object store's XML `<Code>`/`<Message>` (S3,
/// Azure Blob, R2), an HTML page's title or text (nginx, load balancers, Artifactory), or plain
/// text (Docker Hub's `Too Many Requests (HAP429).`). Trimmed and bounded, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The registry error code, when the body was Distribution-shaped.
    pub code: Option<ErrorCode>,
    /// The reason, at most [`MAX_REASON_CHARS`] characters on one line.
    pub message: String,
}

/// How much of a registry's reason a message carries.
pub const MAX_REASON_CHARS: usize = 200;

impl Envelope {
    /// Reads the reason out of an error body.
    pub fn parse(body: &[u8]) -> Envelope {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            errors: Vec<Item>,
            #[serde(default)]
            details: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            error: Option<serde_json::Value>,
            #[serde(default)]
            error_description: Option<String>,
        }
        #[derive(Deserialize)]
        struct Item {
            code: String,
            #[serde(default)]
            message: String,
        }
        let text = String::from_utf8_lossy(body);
        // Azure Blob's XML starts with a byte-order mark.
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if trimmed.starts_with('{') {
            if let Ok(b) = serde_json::from_slice::<Body>(body) {
                if let Some(first) = b.errors.into_iter().next() {
                    let message = if first.message.is_empty() {
                        first.code.to_lowercase().replace('_', " ")
                    } else {
                        first.message
                    };
                    return Envelope {
                        code: Some(ErrorCode::from_text(&first.code)),
                        message: one_line(&message),
                    };
                }
                let error = b.error.map(|e| match e {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                });
                let reason = [b.details, b.message, b.error_description, error]
                    .into_iter()
                    .flatten()
                    .find(|s| !s.trim().is_empty());
                if let Some(reason) = reason {
                    return Envelope {
                        code: None,
                        message: one_line(&reason),
                    };
                }
            }
        }
        let message = if trimmed.starts_with('<') {
            markup_reason(trimmed)
        } else {
            one_line(&text)
        };
        Envelope {
            code: None,
            message,
        }
    }

    /// Replaces every occurrence of `secret` in the reason: a registry that echoes the token or
    /// credentials it was shown must not put them in our messages and logs.
    pub fn scrub(&mut self, secret: &str) {
        if secret.len() >= 4 && self.message.contains(secret) {
            self.message = self.message.replace(secret, "<redacted>");
        }
    }
}

/// The reason in an XML or HTML body: `<Code>` and `<Message>` (object stores), else the
/// `<title>`, else the text between the tags.
fn markup_reason(markup: &str) -> String {
    let element = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let lower = markup.to_ascii_lowercase();
        let start = lower.find(&open.to_ascii_lowercase())? + open.len();
        let end = start + lower[start..].find(&close.to_ascii_lowercase())?;
        Some(one_line(&markup[start..end])).filter(|s| !s.is_empty())
    };
    match (element("Code"), element("Message"), element("title")) {
        (Some(code), Some(message), _) => one_line(&format!("{code}: {message}")),
        (None, Some(message), _) => message,
        (_, _, Some(title)) => title,
        _ => {
            let mut text = String::new();
            let mut in_tag = false;
            for c in markup.chars() {
                match c {
                    '<' => {
                        in_tag = true;
                        text.push(' ');
                    }
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            one_line(&text)
        }
    }
}

/// Whitespace and control characters collapsed to single spaces, trimmed, at most
/// [`MAX_REASON_CHARS`] characters.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= MAX_REASON_CHARS {
            break;
        }
    }
    out.chars().take(MAX_REASON_CHARS).collect()
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
    /// The token service granted nothing for this repository (a fresh token answered with 401
    /// `insufficient_scope`, or a down-scoped one): it does not exist, or these credentials may
    /// not read it. Docker Hub and Quay never say which; neither can we.
    #[error("{what}: not found, or no access with these credentials{}", detail_suffix(.detail))]
    NotFoundOrNoAccess {
        /// What was fetched.
        what: String,
        /// The registry's message.
        detail: String,
    },
    /// 429 or `TOOMANYREQUESTS`.
    #[error("{what}: rate limited by the registry{}{}", detail_suffix(.detail), .retry_after.map(|s| format!(" (retry after {s}s)")).unwrap_or_default())]
    RateLimited {
        /// What was fetched.
        what: String,
        /// The registry's message.
        detail: String,
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
    /// A body larger than dimsum's limit for it.
    #[error(
        "{what}: larger than {limit} bytes, dimsum's limit (raise dimsum.maxManifestBytes or dimsum.maxConfigBytes)"
    )]
    TooLarge {
        /// What was fetched.
        what: String,
        /// The limit.
        limit: usize,
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
    /// A single-platform image asked for another platform.
    #[error("{what} is a single-platform image for {is}, not {wanted}")]
    OtherPlatform {
        /// What was fetched.
        what: String,
        /// The platform asked for.
        wanted: String,
        /// What the image's config states (or that it states none).
        is: String,
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
        assert_eq!(e.message, "Bad gateway");
        assert_eq!(Envelope::parse(&[b'x'; 1000]).message.len(), 200);
        assert_eq!(
            Envelope::parse(br#"{"errors":[{"code":"X"}]}"#).code,
            Some(ErrorCode::Other("X".into()))
        );
    }

    #[test]
    fn reasons_of_every_shape() {
        let reason = |body: &str| Envelope::parse(body.as_bytes()).message;
        // Harbor's own code, GHCR's DENIED, ECR Public's 400.
        let e = Envelope::parse(
            br#"{"errors":[{"code":"NOT_FOUND","message":"artifact team/app:v9 not found"}]}"#,
        );
        assert_eq!(e.code, Some(ErrorCode::Other("NOT_FOUND".into())));
        assert_eq!(e.message, "artifact team/app:v9 not found");
        assert_eq!(reason(r#"{"errors":[{"code":"DENIED"}]}"#), "denied");
        // Docker Hub's token service; OAuth2 errors.
        assert_eq!(
            reason(r#"{"details":"incorrect username or password"}"#),
            "incorrect username or password"
        );
        assert_eq!(
            reason(r#"{"error":"invalid_grant","error_description":"token expired"}"#),
            "token expired"
        );
        // Plain text: Docker Hub's anti-abuse 429, ECR's throttle.
        assert_eq!(
            reason("Too Many Requests (HAP429).\n"),
            "Too Many Requests (HAP429)."
        );
        // nginx's HTML 429 (Quay).
        assert_eq!(
            reason(
                "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            ),
            "429 Too Many Requests"
        );
        // S3 and Azure Blob refusing a forwarded Authorization.
        assert_eq!(
            reason(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified</Message><ArgumentName>Authorization</ArgumentName></Error>"
            ),
            "InvalidArgument: Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"
        );
        assert_eq!(
            reason(
                "\u{feff}<?xml version=\"1.0\"?><Error><Code>InvalidAuthenticationInfo</Code><Message>Authentication information is not given in the correct format.\nRequestId:1</Message></Error>"
            ),
            "InvalidAuthenticationInfo: Authentication information is not given in the correct format. RequestId:1"
        );
        // A page with neither: its text.
        assert_eq!(
            reason("<p>Artifactory\n is   down</p>"),
            "Artifactory is down"
        );
        // Bounded on one line.
        let long = format!("{{\"details\":\"{}\"}}", "word ".repeat(100));
        assert!(reason(&long).chars().count() <= MAX_REASON_CHARS);
        let mut e = Envelope::parse(b"bad token eyJhbGciOi.secret");
        e.scrub("eyJhbGciOi.secret");
        assert_eq!(e.message, "bad token <redacted>");
    }
}
