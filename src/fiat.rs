//! Who may read an account, decided as Clouddriver decides it (fiat.md A1/A2): the caller's view
//! from Fiat's `GET /authorize/{user}`, allowed when `admin`, or when `accounts[]` holds the
//! account (names compared ignoring case) with `READ`. A user Fiat does not know (404) has an
//! empty view. Views are cached per user for `cache.expiresAfterWriteSeconds`, one Fiat call in
//! flight per user; a failure is never cached and is a refusal (`authorization_unavailable`),
//! never a pass.

use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use crate::config::FiatSettings;
use crate::error::Error;
use crate::metrics::Metrics;

/// Who calls, as the HTTP transport established it from the bearer token (and, for a delegate
/// token, `X-Dimsum-User`). Absent on stdio and the CLI, which are not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name Fiat knows (`anonymous` for a caller who names nobody).
    pub user: String,
}

impl Caller {
    /// The caller who names nobody: Fiat's unrestricted user.
    pub fn anonymous() -> Caller {
        Caller {
            user: "anonymous".to_owned(),
        }
    }
}

/// What Fiat says of one user: the part of its `UserPermission.View` the decision reads.
#[derive(Debug, Default, Deserialize)]
struct View {
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    accounts: Vec<AccountView>,
}

#[derive(Debug, Deserialize)]
struct AccountView {
    name: String,
    #[serde(default)]
    authorizations: Vec<String>,
}

impl View {
    fn reads(&self, account: &str) -> bool {
        self.admin
            || self.accounts.iter().any(|a| {
                a.name.eq_ignore_ascii_case(account) && a.authorizations.iter().any(|x| x == "READ")
            })
    }
}

/// The Fiat client and its cache of views.
#[derive(Debug)]
pub struct Fiat {
    /// The client, or why it could not be built: then every check is a refusal, never a pass.
    http: Result<reqwest::Client, String>,
    base: Url,
    views: moka::future::Cache<String, Arc<View>>,
    metrics: Arc<Metrics>,
}

impl Fiat {
    /// A client for `settings`, counting into `metrics`.
    pub fn new(settings: &FiatSettings, metrics: Arc<Metrics>) -> Fiat {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .timeout(settings.connect_timeout + settings.read_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("no HTTP client: {e}"));
        let views = moka::future::Cache::builder()
            .max_capacity(settings.max_entries)
            .time_to_live(settings.expires_after_write)
            .build();
        Fiat {
            http,
            base: settings.base_url.clone(),
            views,
            metrics,
        }
    }

    /// `Ok` when Fiat grants `caller` READ on `account`; `access_denied` when it does not;
    /// `authorization_unavailable` when Fiat cannot be asked.
    pub async fn check(&self, caller: &Caller, account: &str) -> Result<(), Error> {
        let user = caller.user.to_lowercase();
        let view = self
            .views
            .try_get_with(user.clone(), self.fetch(&user))
            .await
            .map_err(|detail| {
                self.metrics.authz("unavailable");
                tracing::warn!(user = %caller.user, account, decision = "unavailable", "authorization: {detail}");
                Error::AuthorizationUnavailable {
                    user: caller.user.clone(),
                    detail: detail.to_string(),
                }
            })?;
        if view.reads(account) {
            self.metrics.authz("allow");
            tracing::debug!(user = %caller.user, account, decision = "allow", "authorization");
            return Ok(());
        }
        self.metrics.authz("deny");
        tracing::info!(user = %caller.user, account, decision = "deny", "authorization");
        Err(Error::AccessDenied {
            user: caller.user.clone(),
            account: account.to_owned(),
        })
    }

    /// One `GET /authorize/{user}`: the view, an empty one for a user Fiat does not know, or why
    /// there is none.
    async fn fetch(&self, user: &str) -> Result<Arc<View>, String> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| "baseUrl cannot be a base".to_owned())?
            .pop_if_empty()
            .extend(["authorize", user]);
        let response = self
            .http
            .as_ref()
            .map_err(Clone::clone)?
            .get(url)
            // As Spinnaker's services send it (fiat.md Part B).
            .header("X-SPINNAKER-USER", user)
            .send()
            .await;
        let outcome = match response {
            Err(e) => Err(format!("no answer: {}", crate::registry::chain(&e))),
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Ok(Arc::new(View::default())),
            Ok(r) if !r.status().is_success() => Err(format!("HTTP {}", r.status().as_u16())),
            Ok(r) => match r.bytes().await {
                Ok(body) => serde_json::from_slice::<View>(&body)
                    .map(Arc::new)
                    .map_err(|e| format!("a view that is not one: {e}")),
                Err(e) => Err(format!("reading the view: {}", crate::registry::chain(&e))),
            },
        };
        self.metrics.fiat(match &outcome {
            Ok(v) if v.admin || !v.accounts.is_empty() => "ok",
            Ok(_) => "empty",
            Err(_) => "error",
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_clouddriver_decides() {
        let view: View = serde_json::from_str(
            r#"{"name":"alice","admin":false,"accounts":[{"name":"Team-A","authorizations":["READ","WRITE"]},{"name":"w","authorizations":["WRITE"]}],"roles":[]}"#,
        )
        .unwrap();
        assert!(view.reads("team-a"), "names ignoring case");
        assert!(!view.reads("w"), "WRITE alone is no READ");
        assert!(!view.reads("other"), "absent is denied");
        let admin: View = serde_json::from_str(r#"{"admin":true,"accounts":[]}"#).unwrap();
        assert!(admin.reads("anything"));
        assert!(
            !View::default().reads("team-a"),
            "an unknown user reads nothing"
        );
    }
}
