//! A test Gate: Spinnaker's webhook endpoint as dimsum sees it. It records every POST (body and
//! `Authorization`) and answers 200 `{"eventProcessed":true,…}`, or the status a test sets.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

/// One POST Gate received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The JSON body.
    pub body: serde_json::Value,
    /// `Authorization`, if sent.
    pub authorization: Option<String>,
    /// The status Gate answered.
    pub status: u16,
}

/// Gate's state.
#[derive(Default)]
pub struct GateState {
    /// Every POST, in order.
    pub received: Mutex<Vec<Received>>,
    /// 0: answer 200; else answer this status (503: down, 400: refusing).
    pub fail: AtomicU16,
}

/// A running test Gate; stops on drop.
pub struct Gate {
    /// `http://127.0.0.1:<port>/webhooks/webhook/dimsum`.
    pub url: String,
    /// State.
    pub state: Arc<GateState>,
    _app: super::App,
}

impl Gate {
    /// Starts Gate answering 200.
    pub async fn start() -> Gate {
        let state = Arc::new(GateState::default());
        let app = axum::Router::new()
            .route("/webhooks/webhook/dimsum", axum::routing::post(webhook))
            .with_state(state.clone());
        let app = super::App::serve(app).await;
        Gate {
            url: format!("{}/webhooks/webhook/dimsum", app.url),
            state,
            _app: app,
        }
    }

    /// Answers `status` from now on (0: 200).
    pub fn fail_with(&self, status: u16) {
        self.state.fail.store(status, Ordering::SeqCst);
    }

    /// The bodies Gate took (answered 200), in order.
    pub fn delivered(&self) -> Vec<serde_json::Value> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.body.clone())
            .collect()
    }

    /// Every POST, taken or not.
    pub fn attempts(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The tags of the bodies Gate took, in order.
    pub fn tags(&self) -> Vec<String> {
        self.delivered()
            .iter()
            .map(|b| b["tag"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

async fn webhook(
    State(state): State<Arc<GateState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let fail = state.fail.load(Ordering::SeqCst);
    let status = if fail == 0 { 200 } else { fail };
    state.received.lock().unwrap().push(Received {
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        status,
    });
    if status == 200 {
        let answer = r#"{"eventProcessed":true,"eventId":"7f1b6a0e-0000-4000-8000-000000000000"}"#;
        ([("content-type", "application/json")], answer).into_response()
    } else {
        (
            StatusCode::from_u16(status).unwrap(),
            r#"{"error":"Service Unavailable","message":"gate is down"}"#,
        )
            .into_response()
    }
}
