//! Never stale: the real registry's notifications keep tags fresh and pushed images warm,
//! `/events` refuses what it must, tags are live by default, and the trigger's digest pins.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dimsum::metrics::{Kind, Metrics};
use serde_json::Value;

use crate::harness::images::{Pusher, SCHEMA2, VA, VA_LAYER, VB, VC};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{config, dimsum};
use crate::harness::server::Served;
use crate::harness::until;

const TOKEN: &str = "events-token-0123456789abcdef";

/// A config for `accounts` with the events token, `events` more lines under `dimsum.events`
/// and `settings` under `dimsum:`.
fn events_config(dir: &Path, accounts: &str, events: &str, settings: &str) -> PathBuf {
    let token = dir.join("events-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    config(
        dir,
        &format!(
            "dimsum:\n  retries: 0\n  events:\n    tokenFile: {}\n{events}{settings}dockerRegistry:\n  accounts:\n{accounts}",
            token.display()
        ),
    )
}

fn account(name: &str, url: &str) -> String {
    format!("  - {{name: {name}, address: \"{url}\"}}\n")
}

/// Manifest GETs, HEADs and blob GETs dimsum sent for account `local`.
fn upstream(m: &Metrics) -> [u64; 3] {
    [Kind::manifest_get, Kind::manifest_head, Kind::blob].map(|k| m.upstream_count("local", k))
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(url: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).body(body.to_owned());
    if let Some(token) = auth {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "every answer is JSON"
    );
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_notifications_move_tags_and_warm_pushed_images() {
    let (listener, url) = Served::bind();
    // No ?account=: the account is found by the host the pusher used.
    let registry = Registry::notifying(&format!("{url}/events"), TOKEN);
    let dir = tempfile::tempdir().unwrap();
    // A long tag TTL: only events can explain a fresh answer.
    let cfg = events_config(
        dir.path(),
        &account("local", &registry.url()),
        "",
        "  cache:\n    tagTtlSeconds: 300\n",
    );
    let served = Served::start_on(listener, &cfg);
    let m = served.metrics();
    let pusher = Pusher::new(&registry.url(), None);
    let level0 = |reference: &str| format!("{url}/local/team/app/{reference}/history?level=0");

    // A new tag is fetched before anyone asks.
    let (_, da) = pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    until("the push is pre-fetched", || {
        m.prefetch_count("local", "ok") == 1
    })
    .await;
    let before = upstream(&m);
    let (status, a) = get(&level0("v1")).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        upstream(&m),
        before,
        "the first lookup of a pushed tag asks nothing"
    );

    // A re-push moves the tag at once, although it is trusted for 300 s.
    let (_, db) = pusher.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    until("the re-push is pre-fetched", || {
        m.prefetch_count("local", "ok") == 2
    })
    .await;
    let before = upstream(&m);
    let (_, b) = get(&level0("v1")).await;
    assert_eq!(
        upstream(&m),
        before,
        "the moved tag's image is already warm"
    );
    assert_ne!(a, b);
    assert_eq!(
        b,
        get(&level0(&db)).await.1,
        "v1 answers the re-pushed image"
    );
    assert_eq!(a, get(&level0(&da)).await.1);

    // dimsum's own fetches came back as pull events, and changed nothing.
    until("pull events arrive", || {
        m.event_count("local", "pull", "ignored") >= 2
    })
    .await;
    assert_eq!(m.prefetch_count("local", "ok"), 2, "pulls fetch nothing");
    assert_eq!(m.event_count("local", "push", "applied"), 2);

    // Deleting the manifest forgets the tag that named it.
    let r = reqwest::Client::new()
        .delete(format!("{}/v2/team/app/manifests/{db}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    until("the delete arrives", || {
        m.event_count("local", "delete", "applied") >= 1
    })
    .await;
    let (status, body) = get(&level0("v1")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_endpoint_refuses_bad_tokens_accounts_and_bodies() {
    let registry = Registry::start(Mode::Open);
    let dir = tempfile::tempdir().unwrap();
    let accounts = account("local", &registry.url()) + &account("twin", &registry.url());
    let served = Served::start(&events_config(dir.path(), &accounts, "", ""));
    let events = format!("{}/events", served.url);
    let named = format!("{events}?account=local");
    let distribution = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events/distribution.json"),
    )
    .unwrap();

    for (auth, url) in [(None, &named), (Some("wrong-token-0123456789"), &named)] {
        let (status, body) = post(url, auth, &distribution).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["message"], "missing or invalid events token");
    }
    let api_token_is_not_enough = post(&named, Some("x"), "{}").await.0;
    assert_eq!(api_token_is_not_enough, 401);
    // Quay cannot send headers: the token may ride in the URL.
    let (status, body) = post(&format!("{named}&token={TOKEN}"), None, &distribution).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"received": 6, "applied": 3, "ignored": 3, "invalid": 0})
    );

    let cases: &[(&str, &str, u16, i64)] = &[
        ("?account=nope", "{\"events\":[]}", 404, 1002),
        // The fixture's host is registry.example.com:5000, which no account has.
        ("", &distribution, 404, 1002),
        ("?account=local", "not json", 400, -32700),
        ("?account=local", "{\"hello\":1}", 400, -32600),
        (
            "?account=local",
            "{\"events\":[{\"action\":\"push\"}]}",
            400,
            -32600,
        ),
        (
            "?account=local&account=twin",
            "{\"events\":[]}",
            400,
            -32602,
        ),
    ];
    for (query, body, status, code) in cases {
        let (got, answer) = post(&format!("{events}{query}"), Some(TOKEN), body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_i64()),
            (*status, Some(*code)),
            "{query} {body}: {answer}"
        );
    }
    // Two accounts share the registry's host: the event must name one.
    let here = distribution.replace("registry.example.com:5000", &registry.addr);
    let (status, body) = post(&events, Some(TOKEN), &here).await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("local") && message.contains("twin"),
        "{message}"
    );

    let huge = format!("{{\"events\":[],\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    assert_eq!(post(&named, Some(TOKEN), &huge).await.0, 413);
    let r = reqwest::get(&named).await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");

    // Without events.tokenFile there is no /events at all.
    let plain = config(
        dir.path(),
        &format!(
            "dockerRegistry:\n  accounts:\n{}",
            account("local", &registry.url())
        ),
    );
    let off = Served::start(&plain);
    let (status, body) = post(&format!("{}/events", off.url), Some(TOKEN), "{}").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harbor_and_quay_payloads_move_tags() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    let (_, _) = pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let dir = tempfile::tempdir().unwrap();
    // No pre-fetching and a long TTL: what changes is the event's doing alone.
    let cfg = events_config(
        dir.path(),
        &account("local", &registry.url()),
        "    prefetch: false\n",
        "  cache:\n    tagTtlSeconds: 300\n",
    );
    let served = Served::start(&cfg);
    let m = served.metrics();
    let level0 = |r: &str| format!("{}/local/team/app/{r}/history?level=0", served.url);
    let (_, a) = get(&level0("v1")).await;

    // The registry moves v1 behind dimsum's back (no notifications configured there)…
    let (_, db) = pusher.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    assert_eq!(get(&level0("v1")).await.1, a, "trusted for 300 s");
    // …and Harbor says so, with the digest.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let harbor = std::fs::read_to_string(fixtures.join("harbor.json"))
        .unwrap()
        .replace("v1.2.3", "v1")
        .replace(
            "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
            &db,
        )
        .replace("harbor.example.com", &registry.addr);
    // No ?account=: Harbor's resource_url names the host.
    let (status, body) = post(&format!("{}/events", served.url), Some(TOKEN), &harbor).await;
    assert_eq!((status, body["applied"].as_u64()), (200, Some(1)), "{body}");
    let (_, b) = get(&level0("v1")).await;
    assert_eq!(b, get(&level0(&db)).await.1, "Harbor's digest answers");
    assert_eq!(m.prefetch_count("local", "ok"), 0, "prefetch: false");

    // Quay names the tag without a digest: the next lookup asks the registry.
    pusher.image("team/app", "v1", SCHEMA2, VC, &[b"c"]).await;
    assert_eq!(get(&level0("v1")).await.1, b, "trusted for 300 s");
    let quay = std::fs::read_to_string(fixtures.join("quay.json")).unwrap();
    let (status, body) = post(
        &format!("{}/events?account=local", served.url),
        Some(TOKEN),
        &quay.replace("\"latest\",", "\"v1\","),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let heads = m.upstream_count("local", Kind::manifest_head);
    let (_, c) = get(&level0("v1")).await;
    assert_ne!(c, b, "Quay's push is seen");
    assert_eq!(m.upstream_count("local", Kind::manifest_head), heads + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_live_by_default() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "dockerRegistry:\n  accounts:\n{}",
            account("local", &registry.url())
        ),
    );
    let served = Served::start(&cfg);
    let level0 = |r: &str| format!("{}/local/team/app/{r}/history?level=0", served.url);
    let (_, a) = get(&level0("v1")).await;
    assert_eq!(get(&level0("v2")).await.0, 404);
    let (_, db) = pusher.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    let (_, dc) = pusher.image("team/app", "v2", SCHEMA2, VC, &[b"c"]).await;
    let (b, c) = (get(&level0(&db)).await.1, get(&level0(&dc)).await.1);
    assert_ne!(a, b);
    // Within the default second, both change without any event; polled, never slept on.
    let mut seen = (String::new(), 0);
    for _ in 0..300 {
        seen = (get(&level0("v1")).await.1, get(&level0("v2")).await.0);
        if seen == (b.clone(), 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, (b, 200), "the moved and the new tag are seen");
    assert_eq!(get(&level0("v2")).await.1, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_digest_pins_accepts_the_config_digest_and_reports_a_moved_tag() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    let (manifest_a, da) = pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let config_a: Value = serde_json::from_slice(&manifest_a).unwrap();
    let ca = config_a["config"]["digest"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    // Always revalidated, so the test needs no clock.
    let cfg = config(
        dir.path(),
        &format!(
            "dimsum:\n  cache:\n    tagTtlSeconds: 0\ndockerRegistry:\n  accounts:\n{}",
            account("local", &registry.url())
        ),
    );
    let served = Served::start(&cfg);
    let at = |digest: &str| {
        format!(
            "{}/local/team/app/v1/history?level=0&digest={digest}",
            served.url
        )
    };
    let (_, a) = get(&at("")).await;
    assert_eq!(get(&at(&da)).await, (200, a.clone()), "the manifest digest");
    assert_eq!(
        get(&at(&ca)).await,
        (200, a.clone()),
        "the config digest (inspectDigests)"
    );

    let (_, db) = pusher.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    let (_, b) = get(&at("")).await;
    assert_ne!(a, b);
    assert_eq!(
        get(&at(&da)).await,
        (200, a.clone()),
        "pinned to the trigger's image"
    );
    let (status, body) = get(&at(&ca)).await;
    assert_eq!(status, 409, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], 1014);
    assert_eq!(error["error"]["data"]["name"], "tag_moved");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(&db) && message.contains(&ca), "{message}");
    assert_eq!(get(&at("sha256:abc")).await.0, 400);

    // The same over JSON-RPC and the CLI.
    let rpc = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "getLabels",
        "params": {"account": "local", "repository": "team/app", "tag": "v1", "digest": ca}});
    let r: Value = reqwest::Client::new()
        .post(&served.url)
        .header("content-type", "application/json")
        .body(rpc.to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(r["error"]["code"], 1014, "{r}");
    let out = dimsum(
        Some(&cfg),
        &[
            "history", "local", "team/app", "v1", "--level", "0", "--digest", &da,
        ],
        None,
    )
    .await;
    assert_eq!(out.ok(), a);
    dimsum(
        Some(&cfg),
        &["labels", "local", "team/app", "v1", "--digest", &ca],
        None,
    )
    .await
    .fails(8, "has moved on");
}

/// A push that moves a tag reaches gated answers at once: a `signedBy` answer never names the
/// image the tag named before the push (within the signatures answer's second or otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_tag_moves_gated_answers_at_once() {
    use crate::origin::{cosign_key, cosign_sign};
    let (listener, url) = Served::bind();
    let registry = Registry::notifying(&format!("{url}/events"), TOKEN);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ci.pub"), cosign_key(1).1).unwrap();
    let trust = format!(
        "  cache:\n    tagTtlSeconds: 300\n  trust:\n    cosignKeys:\n    - {{name: ci, publicKeyFile: {}}}\n",
        dir.path().join("ci.pub").display()
    );
    let cfg = events_config(dir.path(), &account("local", &registry.url()), "", &trust);
    let served = Served::start_on(listener, &cfg);
    let m = served.metrics();
    let p = Pusher::new(&registry.url(), None);
    let (key, _) = cosign_key(1);
    let gated = format!("{url}/local/team/app/v1/history?level=0&signedBy=ci");
    let level0 = |digest: &str| format!("{url}/local/team/app/{digest}/history?level=0");

    let (_, da) = p.image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER]).await;
    cosign_sign(&p, "team/app", &da, &da, &key, false).await;
    until("the first image and its signature are announced", || {
        m.event_count("local", "push", "applied") >= 2
    })
    .await;
    let (status, a) = get(&gated).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a, get(&level0(&da)).await.1);

    let (_, db) = p.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    cosign_sign(&p, "team/app", &db, &db, &key, false).await;
    until("the re-push and its signature are announced", || {
        m.event_count("local", "push", "applied") >= 4
    })
    .await;
    let (status, b) = get(&gated).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b,
        get(&level0(&db)).await.1,
        "the gate answers for the pushed image"
    );
    assert_ne!(a, b);
}

/// Without events, and with tags trusted for no time at all (`tagTtlSeconds: 0`), a gated answer
/// asks where the tag points now like any other: it never answers for the image it checked a
/// moment ago once the tag has moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_answer_trusts_a_tag_no_longer_than_an_ungated_one() {
    use crate::origin::{cosign_key, cosign_sign};
    let registry = Registry::start(Mode::Open);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ci.pub"), cosign_key(1).1).unwrap();
    let yaml = format!(
        "dimsum:\n  cache:\n    tagTtlSeconds: 0\n  trust:\n    cosignKeys:\n    - {{name: ci, publicKeyFile: {}}}\ndockerRegistry:\n  accounts:\n{}",
        dir.path().join("ci.pub").display(),
        account("local", &registry.url())
    );
    let served = Served::start(&config(dir.path(), &yaml));
    let p = Pusher::new(&registry.url(), None);
    let (key, _) = cosign_key(1);
    let url = &served.url;
    let gated = format!("{url}/local/team/app/v1/history?level=0&signedBy=ci");
    let level0 = |digest: &str| format!("{url}/local/team/app/{digest}/history?level=0");

    let (_, da) = p.image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER]).await;
    cosign_sign(&p, "team/app", &da, &da, &key, false).await;
    let (status, a) = get(&gated).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a, get(&level0(&da)).await.1);
    let (_, db) = p.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    cosign_sign(&p, "team/app", &db, &db, &key, false).await;
    let (status, b) = get(&gated).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b,
        get(&level0(&db)).await.1,
        "the gate answers for the tag as it is now"
    );
}
