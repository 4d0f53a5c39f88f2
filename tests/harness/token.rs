//! Our token issuer: Docker token auth's realm, issuing ES256 JWTs the real registry verifies
//! (distribution ships no issuer). It counts requests and records who authenticated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;

use super::registry::{TOKEN_ISSUER, TOKEN_SERVICE};

const KEY: &str = include_str!("../fixtures/token-issuer.key.pem");
const CERT_DER: &[u8] = include_bytes!("../fixtures/token-issuer.crt.der");

/// Shared issuer state, inspected and changed by tests.
#[derive(Default)]
pub struct IssuerState {
    /// user → password.
    pub users: Mutex<HashMap<String, String>>,
    /// Token requests served.
    pub requests: AtomicUsize,
    /// The `Authorization` header of each request (None when absent).
    pub authorizations: Mutex<Vec<Option<String>>>,
    /// `expires_in` to answer with.
    pub expires_in: AtomicU64,
    /// Every token issued, so tests can look for leaks.
    pub issued: Mutex<Vec<String>>,
}

/// A running issuer; aborted on drop.
pub struct Issuer {
    /// `http://127.0.0.1:<port>/token`.
    pub realm: String,
    /// State.
    pub state: Arc<IssuerState>,
    _app: super::App,
}

impl Issuer {
    /// Starts an issuer that knows `users`.
    pub async fn start(users: &[(&str, &str)]) -> Issuer {
        let state = Arc::new(IssuerState::default());
        state.expires_in.store(300, Ordering::SeqCst);
        state
            .users
            .lock()
            .unwrap()
            .extend(users.iter().map(|(u, p)| (u.to_string(), p.to_string())));
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token))
            .with_state(state.clone());
        let app = super::App::serve(app).await;
        Issuer {
            realm: format!("{}/token", app.url),
            state,
            _app: app,
        }
    }

    /// Changes a user's password (as a rotated ECR token would).
    pub fn set_password(&self, user: &str, password: &str) {
        self.state
            .users
            .lock()
            .unwrap()
            .insert(user.into(), password.into());
    }

    /// A token granting `actions` on `repository`, for test set-up (pushing images).
    pub fn mint(repository: &str, actions: &[&str]) -> String {
        jwt("admin", &[("repository", repository, actions)], 300)
    }
}

async fn token(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.authorizations.lock().unwrap().push(auth.clone());
    let subject = match auth.as_deref().and_then(|a| a.strip_prefix("Basic ")) {
        None => None,
        Some(b64) => {
            let decoded =
                String::from_utf8(STANDARD.decode(b64).unwrap_or_default()).unwrap_or_default();
            let (user, pass) = decoded.split_once(':').unwrap_or(("", ""));
            if state.users.lock().unwrap().get(user).map(String::as_str) != Some(pass) {
                return (
                    StatusCode::UNAUTHORIZED,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#,
                )
                    .into_response();
            }
            Some(user.to_owned())
        }
    };
    // Anonymous callers get a token with no access, as real issuers do for private repositories.
    let mut grants = Vec::new();
    if subject.is_some() {
        for (k, v) in &q {
            if k == "scope" {
                let mut parts = v.splitn(2, ':');
                let kind = parts.next().unwrap_or("");
                let rest = parts.next().unwrap_or("");
                if let Some((name, actions)) = rest.rsplit_once(':') {
                    grants.push((
                        kind.to_owned(),
                        name.to_owned(),
                        actions.split(',').map(str::to_owned).collect::<Vec<_>>(),
                    ));
                }
            }
        }
    }
    let grants_ref: Vec<(&str, &str, Vec<&str>)> = grants
        .iter()
        .map(|(k, n, a)| {
            (
                k.as_str(),
                n.as_str(),
                a.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let grants_ref: Vec<(&str, &str, &[&str])> = grants_ref
        .iter()
        .map(|(k, n, a)| (*k, *n, a.as_slice()))
        .collect();
    let expires_in = state.expires_in.load(Ordering::SeqCst);
    let token = jwt(subject.as_deref().unwrap_or(""), &grants_ref, expires_in);
    state.issued.lock().unwrap().push(token.clone());
    let body = serde_json::json!({"token": token, "expires_in": expires_in});
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn jwt(subject: &str, access: &[(&str, &str, &[&str])], expires_in: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header =
        serde_json::json!({"alg": "ES256", "typ": "JWT", "x5c": [STANDARD.encode(CERT_DER)]});
    let access: Vec<_> = access
        .iter()
        .map(|(kind, name, actions)| serde_json::json!({"type": kind, "name": name, "actions": actions}))
        .collect();
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE,
        "exp": now + expires_in, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", JTI.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = SigningKey::from_pkcs8_pem(KEY).unwrap();
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

static JTI: AtomicU64 = AtomicU64::new(0);
