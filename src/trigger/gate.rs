//! Posting one trigger to Gate's webhook endpoint, through Gate's bad moments.
//!
//! Connection errors, 5xx and 429 are retried with backoff (250 ms doubling to 10 s, or Gate's
//! `Retry-After` up to a minute) until `retrySeconds` after the trigger was queued; any other 4xx
//! is final (Gate refused it: wrong URL, authentication), logged with Gate's reason. Echo answers
//! at once, before matching any pipeline, so a 2xx means "received", which is all a webhook can
//! know.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::config::Triggers as Settings;
use crate::registry::error::Envelope;

/// One attempt's bound, at most (the caller may ask for less).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first pause between attempts.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause we choose.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest `Retry-After` we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Gate took it.
    Delivered,
    /// Worth another try after this pause (or our own backoff).
    Retry(Option<Duration>, String),
    /// Gate refused it for good.
    Refused(String),
}

/// Gate as the trigger settings describe it.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    http: reqwest::Client,
    url: url::Url,
    authorization: Option<crate::credentials::Secret>,
}

impl Gate {
    /// A client for Gate, trusting `caFile` besides the system's roots.
    pub(crate) fn new(settings: &Settings) -> Result<Gate, String> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("dimsum/", env!("CARGO_PKG_VERSION")))
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            // Gate's webhook answers where it is; a redirect is a misconfigured URL.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &settings.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| e.to_string())? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Gate {
            http: builder.build().map_err(|e| e.to_string())?,
            url: settings.url.clone(),
            authorization: settings.authorization.clone(),
        })
    }

    /// One POST of `body`, given up after `timeout` (at most [`ATTEMPT_TIMEOUT`]).
    pub(crate) async fn post(&self, body: &str, timeout: Duration) -> Attempt {
        let mut req = self
            .http
            .post(self.url.clone())
            .timeout(timeout.min(ATTEMPT_TIMEOUT))
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        if let Some(secret) = &self.authorization {
            if let Ok(mut value) = HeaderValue::from_str(secret.expose()) {
                value.set_sensitive(true);
                req = req.header(AUTHORIZATION, value);
            }
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_timeout() {
                    "no answer in time".to_owned()
                } else {
                    format!("cannot reach Gate: {}", crate::registry::chain(&e))
                };
                return Attempt::Retry(None, why);
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let body = resp.bytes().await.unwrap_or_default();
        let reason = Envelope::parse(&body.slice(..body.len().min(64 * 1024))).message;
        let why = format!(
            "HTTP {}{}",
            status.as_u16(),
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        );
        if status.is_server_error() || status.as_u16() == 429 {
            Attempt::Retry(retry_after, why)
        } else {
            Attempt::Refused(why)
        }
    }
}

/// The pause after `attempts` failed attempts.
pub(crate) fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_secs(2));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
