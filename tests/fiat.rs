//! Only what the caller may read: with `services.fiat.enabled`, every REST route and JSON-RPC
//! method (each call of a batch, each message of a WebSocket) answers only callers Fiat grants
//! READ on the account; Fiat unreachable is 503 and nothing is cached; stdio is unchanged.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::harness::fiat::{Failure, Fiat};
use crate::harness::images::{Pusher, SCHEMA2, VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::server::Served;

const PLAIN: &str = "plain-token-0123456789abcdef";
const BOUND: &str = "bound-token-0123456789abcdef";
const ORCA: &str = "orca-delegate-token-0123456789";

struct World {
    _registry: Registry,
    _dir: tempfile::TempDir,
    fiat: Fiat,
    served: Served,
    cfg: std::path::PathBuf,
}

/// Accounts `team-a` (READ and WRITE for role team-a; Fiat spells it `TEAM-A`), `writers` (WRITE
/// only, for ops) and `open` (unrestricted), all on one registry; alice has team-a, bob ops, root
/// is an admin. Tokens: plain (anonymous), bound to alice, and Orca's delegate.
async fn world(ttl_seconds: u64) -> World {
    let registry = Registry::start(Mode::Open);
    Pusher::new(&registry.url(), None)
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let fiat = Fiat::start(
        &[
            ("TEAM-A", &[("READ", &["team-a"]), ("WRITE", &["team-a"])]),
            ("writers", &[("WRITE", &["ops"])]),
            ("open", &[]),
        ],
        &[
            ("alice", &["team-a"]),
            ("bob", &["ops"]),
            ("carol", &["team-a"]),
            ("root", &[]),
        ],
        &["root"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let (plain, bound, orca) = (
        token("plain", PLAIN),
        token("bound", BOUND),
        token("orca", ORCA),
    );
    let url = registry.url();
    let yaml = format!(
        "services:\n  fiat:\n    enabled: true\n    baseUrl: {}\n    readTimeoutMs: 500\n    cache: {{expiresAfterWriteSeconds: {ttl_seconds}}}\ndimsum:\n  auth:\n    tokenFile: {plain}\n    tokens:\n    - {{tokenFile: {bound}, user: alice}}\n    - {{tokenFile: {orca}, delegate: true}}\ndockerRegistry:\n  accounts:\n  - {{name: team-a, address: \"{url}\"}}\n  - {{name: writers, address: \"{url}\"}}\n  - {{name: open, address: \"{url}\"}}\n",
        fiat.url
    );
    let cfg = crate::harness::run::config(dir.path(), &yaml);
    let served = Served::start(&cfg);
    World {
        _registry: registry,
        _dir: dir,
        fiat,
        served,
        cfg,
    }
}

impl World {
    /// `GET /{account}/team/app/v1/labels` with `token` and, if given, `X-Dimsum-User`.
    async fn labels(&self, account: &str, token: &str, user: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}/{account}/team/app/v1/labels", self.served.url))
            .bearer_auth(token);
        if let Some(u) = user {
            request = request.header("x-dimsum-user", u);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (
            status,
            serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
        )
    }

    async fn status(&self, account: &str, token: &str, user: Option<&str>) -> u16 {
        self.labels(account, token, user).await.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_users_with_read_receive_anything_about_an_accounts_images() {
    let w = world(300).await;
    let as_user = |user: &'static str| (ORCA, Some(user));
    for (account, (token, user), expected) in [
        ("team-a", as_user("alice"), 200),
        ("open", as_user("alice"), 200),
        ("writers", as_user("alice"), 403),
        ("team-a", as_user("bob"), 403),
        ("writers", as_user("bob"), 403),  // WRITE alone is no READ
        ("writers", as_user("ROOT"), 200), // an admin, ids compared lower-cased
        ("team-a", as_user("mallory"), 403), // Fiat knows no mallory: 404, an empty view
        ("team-a", as_user("${execution.authentication.user}"), 403), // anonymous
        ("open", as_user("${execution.authentication.user}"), 200),
        ("open", (ORCA, None), 200),
        ("team-a", (ORCA, None), 403),
        ("team-a", (PLAIN, None), 403), // the plain token's holder is anonymous
        ("open", (PLAIN, None), 200),
        ("team-a", (PLAIN, Some("root")), 403), // a header without a delegate token: ignored
        ("team-a", (BOUND, None), 200),         // bound to alice
        ("writers", (BOUND, Some("root")), 403), // still alice
        ("nosuch", as_user("alice"), 403),      // unknown and forbidden look alike
    ] {
        let (status, body) = w.labels(account, token, user).await;
        assert_eq!(status, expected, "{account} {token} {user:?}: {body}");
        if expected == 403 {
            assert_eq!(body["error"]["data"]["name"], "access_denied", "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&format!("Access denied to account {account}")),
                "{message}"
            );
        } else {
            assert_eq!(body["revision"], "abc123");
        }
    }
    assert_eq!(
        w.status("nosuch", ORCA, Some("root")).await,
        404,
        "an admin sees the truth"
    );
    assert_eq!(
        w.status("team-a", "wrong-token-0123456789", None).await,
        401
    );

    // JSON-RPC over HTTP: each call of a batch on its own.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "getLabels", "params": ["team-a", "team/app", "v1"]},
        {"jsonrpc": "2.0", "id": 2, "method": "getManifest", "params": ["writers", "team/app", "v1"]},
        {"jsonrpc": "2.0", "id": 3, "method": "getOrigin", "params": ["writers", "team/app", "v1"]}
    ]);
    let bearer = format!("Bearer {ORCA}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-dimsum-user", "alice"),
    ];
    let reply = crate::harness::post_rpc(&w.served.url, &batch, &headers).await;
    assert_eq!(reply[0]["result"]["revision"], "abc123", "{reply}");
    for i in [1, 2] {
        assert_eq!(reply[i]["error"]["code"], 1018, "{reply}");
    }
    // A WebSocket fixes its identity at the upgrade.
    {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut upgrade = w.served.ws_url().into_client_request().unwrap();
        let headers = upgrade.headers_mut();
        headers.insert("authorization", format!("Bearer {ORCA}").parse().unwrap());
        headers.insert("x-dimsum-user", "bob".parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(upgrade).await.unwrap();
        for (account, code) in [("team-a", Some(1018)), ("open", None)] {
            let call = json!({"jsonrpc": "2.0", "id": 1, "method": "getLabels", "params": [account, "team/app", "v1"]});
            ws.send(tokio_tungstenite::tungstenite::Message::text(
                call.to_string(),
            ))
            .await
            .unwrap();
            let reply: Value =
                serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
            assert_eq!(reply["error"]["code"].as_i64(), code, "{account}: {reply}");
        }
    }
    // stdio is local: no caller, no check.
    let line = json!({"jsonrpc": "2.0", "id": 1, "method": "getLabels", "params": ["writers", "team/app", "v1"]});
    let (replies, _) = crate::harness::run::stdio(&w.cfg, &[line.to_string()]).await;
    assert_eq!(replies[0]["result"]["revision"], "abc123", "{}", replies[0]);
    // The operator's view of a decision.
    let decide = |user: &'static str, account: &'static str| {
        let cfg = w.cfg.clone();
        async move {
            crate::harness::run::dimsum(
                Some(&cfg),
                &["authorize", "--user", user, "--account", account],
                None,
            )
            .await
        }
    };
    assert_eq!(decide("alice", "team-a").await.code, 0);
    decide("bob", "team-a")
        .await
        .fails(10, "Access denied to account team-a");
    let metrics = reqwest::get(format!("{}/metrics", w.served.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "dimsum_authz_decisions_total{decision=\"allow\"}",
        "dimsum_authz_decisions_total{decision=\"deny\"}",
        "dimsum_fiat_requests_total{outcome=\"ok\"}",
        "dimsum_fiat_requests_total{outcome=\"empty\"}",
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_cached_for_their_time_asked_once_and_a_failure_is_a_refusal_never_kept() {
    let w = world(1).await;
    // One Fiat call for many concurrent requests of one user.
    w.fiat.state.delay_ms.store(200, Ordering::SeqCst);
    let before = w.fiat.requests();
    let answers =
        futures_util::future::join_all((0..20).map(|_| w.status("team-a", ORCA, Some("carol"))))
            .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    assert_eq!(w.fiat.requests() - before, 1, "single flight");
    w.fiat.state.delay_ms.store(0, Ordering::SeqCst);
    // Within its time the view is not asked again; after it, it is (bounded wait).
    let before = w.fiat.requests();
    assert_eq!(w.status("team-a", ORCA, Some("carol")).await, 200);
    assert_eq!(w.fiat.requests(), before, "a cache hit");
    let mut refetched = false;
    for _ in 0..400 {
        assert_eq!(w.status("team-a", ORCA, Some("carol")).await, 200);
        if w.fiat.requests() > before {
            refetched = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refetched, "nothing is served past its time");

    // Fiat slower than readTimeoutMs: a refusal, not a wait.
    w.fiat.state.delay_ms.store(1500, Ordering::SeqCst);
    let (status, body) = w.labels("open", ORCA, Some("erin-slow")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["data"]["name"], "authorization_unavailable");
    w.fiat.state.delay_ms.store(0, Ordering::SeqCst);
    // Fiat failing: 503 for everyone, nothing cached, recovery without a restart.
    for failure in [Failure::ServerError, Failure::Garbage] {
        w.fiat.fail(failure);
        let (status, body) = w.labels("open", ORCA, Some("dave-never-seen")).await;
        assert_eq!(status, 503, "{failure:?}: {body}");
        assert_eq!(body["error"]["data"]["name"], "authorization_unavailable");
        let before = w.fiat.requests();
        assert_eq!(w.status("open", ORCA, Some("dave-never-seen")).await, 503);
        assert_eq!(w.fiat.requests(), before + 1, "a failure is never cached");
    }
    w.fiat.fail(Failure::None);
    assert_eq!(
        w.status("open", ORCA, Some("alice")).await,
        200,
        "recovered"
    );
    assert_eq!(w.status("team-a", ORCA, Some("bob")).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fiat_unreachable_is_503_and_misconfigured_fiat_refuses_to_start() {
    let (_registry, dir, _) = crate::harness::open_world().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{PLAIN}\n")).unwrap();
    let yaml = |auth: &str| {
        format!(
            "services:\n  fiat: {{enabled: true, baseUrl: \"http://{closed}\"}}\n{auth}dockerRegistry:\n  accounts:\n  - {{name: local, address: \"http://127.0.0.1:9\"}}\n"
        )
    };
    let cfg = crate::harness::run::config(
        dir.path(),
        &yaml(&format!(
            "dimsum:\n  auth: {{tokenFile: {}}}\n",
            token.display()
        )),
    );
    let served = Served::start(&cfg);
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/local/team/app/v1/labels", served.url))
        .bearer_auth(PLAIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body["error"]["data"]["name"], "authorization_unavailable",
        "refused before the (unreachable) registry is asked: {body}"
    );
    // No token on a listener beyond loopback: every caller would be anonymous.
    let open = crate::harness::run::config(dir.path(), &yaml(""));
    let out =
        crate::harness::run::dimsum(Some(&open), &["serve", "--listen", "0.0.0.0:0"], None).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("no token tells callers apart"),
        "{}",
        out.stderr
    );
    // A bad services.fiat is a configuration error, with its key.
    let bad = crate::harness::run::config(
        dir.path(),
        "services:\n  fiat: {enabled: true, readTimeoutMs: 0}\ndockerRegistry:\n  accounts:\n  - {name: local, address: h}\n",
    );
    let out = crate::harness::run::dimsum(Some(&bad), &["config", "check"], None).await;
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .contains("services.fiat.readTimeoutMs: 0 is not allowed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("services.fiat.baseUrl is required"),
        "{}",
        out.stderr
    );
}
