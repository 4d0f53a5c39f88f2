//! An emulated Fiat: `GET /authorize/{user}` answering Fiat's JSON and status codes, with views
//! computed as Fiat computes them (fiat.md A1/A2) from accounts with `permissions` and a
//! users → roles fixture: an account without permissions is unrestricted (all four
//! authorizations for everyone); otherwise a user gets the authorizations whose roles share one
//! with theirs (lower-cased); admins get everything; `anonymous` is the unrestricted user; ids
//! are lower-cased; a user Fiat never stored is `404`. Knobs: a failure mode, a delay, and a
//! request counter.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// How Fiat misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It answers.
    None,
    /// `500` with Spring's error body.
    ServerError,
    /// `200` with a body that is not a view.
    Garbage,
}

/// What the emulated Fiat knows and how it behaves.
pub struct FiatState {
    /// Account name → authorization → roles (an empty map: unrestricted).
    accounts: Vec<(String, BTreeMap<String, Vec<String>>)>,
    /// User → roles.
    users: BTreeMap<String, Vec<String>>,
    /// Users who are admins.
    admins: Vec<String>,
    /// The failure mode.
    pub failure: Mutex<Failure>,
    /// Milliseconds before each answer.
    pub delay_ms: AtomicU64,
    /// `/authorize` requests received.
    pub requests: AtomicUsize,
}

const ALL: [&str; 4] = ["READ", "WRITE", "EXECUTE", "CREATE"];

impl FiatState {
    fn view(&self, user: &str) -> Option<Value> {
        let user = user.to_lowercase();
        let (roles, admin) = match user.as_str() {
            "anonymous" => (Vec::new(), false),
            u => (
                self.users.get(u)?.clone(),
                self.admins.iter().any(|a| a == u),
            ),
        };
        let accounts: Vec<Value> = self
            .accounts
            .iter()
            .filter_map(|(name, permissions)| {
                let granted: Vec<&str> = if permissions.is_empty() || admin {
                    ALL.to_vec()
                } else {
                    ALL.into_iter()
                        .filter(|a| {
                            permissions.get(*a).is_some_and(|allowed| {
                                allowed
                                    .iter()
                                    .any(|r| roles.contains(&r.trim().to_lowercase()))
                            })
                        })
                        .collect()
                };
                (!granted.is_empty()).then(|| json!({"name": name, "authorizations": granted}))
            })
            .collect();
        Some(json!({
            "name": if user == "anonymous" { "__unrestricted_user__".to_owned() } else { user },
            "admin": admin, "accountManager": false, "legacyFallback": false,
            "allowAccessToUnknownApplications": false, "buildServices": [], "extensionResources": {},
            "accounts": accounts, "applications": [],
            "roles": roles.iter().map(|r| json!({"name": r, "source": "EXTERNAL"})).collect::<Vec<_>>(),
            "serviceAccounts": []
        }))
    }
}

async fn authorize(State(state): State<Arc<FiatState>>, Path(user): Path<String>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let failure = *state.failure.lock().unwrap();
    match failure {
        Failure::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "Internal Server Error", "status": 500})),
        )
            .into_response(),
        Failure::Garbage => (StatusCode::OK, "<html>not a view</html>").into_response(),
        Failure::None => match state.view(&user) {
            Some(view) => axum::Json(view).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "Not Found", "message": format!("user not found: {user}"), "status": 404})),
            )
                .into_response(),
        },
    }
}

/// An account's `permissions`: authorization → roles (empty: unrestricted).
pub type Permissions<'a> = &'a [(&'a str, &'a [&'a str])];

/// A running emulated Fiat.
pub struct Fiat {
    /// Its state and knobs.
    pub state: Arc<FiatState>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _app: super::App,
}

impl Fiat {
    /// Serves views for `accounts` (name, `[(authorization, roles)]`), `users` (name, roles) and
    /// `admins`.
    pub async fn start(
        accounts: &[(&str, Permissions<'_>)],
        users: &[(&str, &[&str])],
        admins: &[&str],
    ) -> Fiat {
        let state = Arc::new(FiatState {
            accounts: accounts
                .iter()
                .map(|(name, permissions)| {
                    let map = permissions
                        .iter()
                        .map(|(a, roles)| {
                            (
                                (*a).to_owned(),
                                roles.iter().map(|r| (*r).to_owned()).collect(),
                            )
                        })
                        .collect();
                    ((*name).to_owned(), map)
                })
                .collect(),
            users: users
                .iter()
                .map(|(u, roles)| {
                    (
                        u.to_lowercase(),
                        roles.iter().map(|r| r.to_lowercase()).collect(),
                    )
                })
                .collect(),
            admins: admins.iter().map(|a| a.to_lowercase()).collect(),
            failure: Mutex::new(Failure::None),
            delay_ms: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/authorize/{user}", axum::routing::get(authorize))
            .with_state(state.clone());
        let app = super::App::serve(app).await;
        Fiat {
            state,
            url: app.url.clone(),
            _app: app,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Sets the failure mode.
    pub fn fail(&self, failure: Failure) {
        *self.state.failure.lock().unwrap() = failure;
    }
}
