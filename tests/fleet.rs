//! Three `serve` replicas sharing one real Redis: one registry fetch per image for the fleet,
//! events heard by every replica, Redis killed and restarted under load, tampered content
//! refetched, identities kept apart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dimsum::metrics::{Kind, Metrics};
use serde_json::Value;

use crate::harness::images::{Pusher, SCHEMA2, VA, VA_LAYER, VB};
use crate::harness::redis::RedisServer;
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::config;
use crate::harness::server::Served;
use crate::harness::until;

const TOKEN: &str = "fleet-events-token-0123456789";

/// A config for `accounts` sharing `redis`, with `settings` under `dimsum:`.
fn fleet_config(dir: &Path, redis: &RedisServer, accounts: &str, settings: &str) -> PathBuf {
    let token = dir.join("events-token");
    std::fs::write(&token, TOKEN).unwrap();
    config(
        dir,
        &format!(
            "dimsum:\n  retries: 0\n  redis:\n    url: {}\n    keyPrefix: \"test:\"\n  events:\n    tokenFile: {}\n{settings}dockerRegistry:\n  accounts:\n{accounts}",
            redis.url(),
            token.display()
        ),
    )
}

fn account(name: &str, url: &str, user: &str) -> String {
    format!("  - {{name: {name}, address: \"{url}\", username: {user}, password: p}}\n")
}

/// Three replicas of one configuration, each with its own memory.
fn replicas(cfg: &Path) -> Vec<Served> {
    (0..3).map(|_| Served::start(cfg)).collect()
}

/// Manifest GETs and blob GETs of `account`, over the fleet.
fn fetches(fleet: &[Served], account: &str) -> (u64, u64) {
    let metrics: Vec<std::sync::Arc<Metrics>> = fleet.iter().map(Served::metrics).collect();
    (
        metrics
            .iter()
            .map(|m| m.upstream_count(account, Kind::manifest_get))
            .sum(),
        metrics
            .iter()
            .map(|m| m.upstream_count(account, Kind::blob))
            .sum(),
    )
}

async fn level0(served: &Served, account: &str, reference: &str) -> (u16, String) {
    let url = format!(
        "{}/{account}/team/app/{reference}/history?level=0",
        served.url
    );
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Every replica hears account `local`'s registry (a pull event each), so each trusts its tags
/// for the configured TTL.
async fn hear_registry(fleet: &[Served]) {
    let pull = r#"{"events":[{"action":"pull","target":{"mediaType":"application/octet-stream","repository":"team/app"},"request":{"host":"x"}}]}"#;
    for served in fleet {
        let r = reqwest::Client::new()
            .post(format!("{}/events?account=local", served.url))
            .bearer_auth(TOKEN)
            .body(pull)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

async fn until_shared_up(fleet: &[Served]) {
    let metrics: Vec<_> = fleet.iter().map(Served::metrics).collect();
    until("every replica reaches Redis", || {
        metrics.iter().all(|m| m.is_shared_up())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_fetch_each_image_once_in_all() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "a", SCHEMA2, VA, &[VA_LAYER])
        .await;
    pusher.image("team/app", "b", SCHEMA2, VB, &[b"b"]).await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let accounts = account("local", &registry.url(), "u");
    let cfg = fleet_config(dir.path(), &redis, &accounts, "");
    let fleet = replicas(&cfg);
    until_shared_up(&fleet).await;

    // One after the other, each replica with empty memory.
    let first = level0(&fleet[0], "local", "a").await;
    assert_eq!(first.0, 200, "{}", first.1);
    for served in &fleet[1..] {
        assert_eq!(level0(served, "local", "a").await, first);
    }
    assert_eq!(fetches(&fleet, "local"), (1, 1), "sequential: one GET each");

    // 30 at once, spread over the replicas.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let url = format!("{}/local/team/app/b/history?level=0", fleet[i % 3].url);
        tasks.push(tokio::spawn(async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|a| a == &answers[0] && a.0 == 200));
    assert_ne!(answers[0], first);
    assert_eq!(fetches(&fleet, "local"), (2, 2), "concurrent: one GET each");
    for served in &fleet {
        let m = served.metrics();
        assert_eq!(m.shared_count("discarded"), 0, "a miss is not a mismatch");
        assert_eq!(m.shared_count("error"), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_to_one_replica_is_heard_by_all() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let accounts = account("local", &registry.url(), "u");
    // Tags trusted for 5 minutes: only the event can explain a fresh answer.
    let cfg = fleet_config(
        dir.path(),
        &redis,
        &accounts,
        "  cache:\n    tagTtlSeconds: 300\n",
    );
    let fleet = replicas(&cfg);
    until_shared_up(&fleet).await;
    // Every replica hears the account's registry, so each trusts its tags for 300 s.
    hear_registry(&fleet).await;
    let a = level0(&fleet[0], "local", "v1").await;
    for served in &fleet {
        assert_eq!(level0(served, "local", "v1").await, a);
    }
    let (_, db) = pusher.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    for served in &fleet {
        assert_eq!(level0(served, "local", "v1").await, a, "trusted for 300 s");
    }
    let event = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events/acr.json"),
    )
    .unwrap()
    .replace(
        "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d",
        &db,
    );
    let r = reqwest::Client::new()
        .post(format!("{}/events?account=local", fleet[0].url))
        .bearer_auth(TOKEN)
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b = level0(&fleet[0], "local", &db).await;
    assert_ne!(a, b);
    for served in &fleet[1..] {
        let m = served.metrics();
        until("the event reaches the replica", || {
            m.event_count("local", "push", "applied") == 1
        })
        .await;
        assert_eq!(level0(served, "local", "v1").await, b);
    }

    // The registry says the manifest is gone: the tag is forgotten in Redis too, so a new
    // replica asks the registry instead of trusting the shared tier's word for 300 s.
    let delete = format!(
        r#"{{"action":"delete","target":{{"digest":"{db}","repository":"team/app"}},"request":{{"host":"x"}}}}"#
    );
    let r = reqwest::Client::new()
        .post(format!("{}/events?account=local", fleet[0].url))
        .bearer_auth(TOKEN)
        .body(delete)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let newcomer = Served::start(&cfg);
    until_shared_up(std::slice::from_ref(&newcomer)).await;
    assert_eq!(level0(&newcomer, "local", "v1").await, b);
    let m = newcomer.metrics();
    assert_eq!(
        m.upstream_count("local", Kind::manifest_get),
        1,
        "asked the registry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_stops_hearing_events_revalidates_tags_it_trusted_for_minutes() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let accounts = account("local", &registry.url(), "u");
    let cfg = fleet_config(
        dir.path(),
        &redis,
        &accounts,
        "  cache:\n    tagTtlSeconds: 300\n",
    );
    let fleet = replicas(&cfg);
    until_shared_up(&fleet).await;
    hear_registry(&fleet).await;
    // Every replica trusts v1 → A for 300 s, while it hears the fleet's events.
    let a = level0(&fleet[0], "local", "v1").await;
    for served in &fleet {
        assert_eq!(level0(served, "local", "v1").await, a);
    }
    // Redis goes: no replica can hear an event any more, and v1 moves without one.
    redis.stop();
    let (_, db) = pusher.image("team/app", "v1", SCHEMA2, VB, &[b"b"]).await;
    let b = level0(&fleet[0], "local", &db).await;
    assert_ne!(a, b);
    for served in &fleet {
        let mut seen = String::new();
        for _ in 0..500 {
            seen = level0(served, "local", "v1").await.1;
            if seen == b.1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen, b.1, "a deaf replica falls back to live revalidation");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_and_restarted_under_load_changes_no_answer() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    for i in 0..6 {
        let config = format!(
            r#"{{"config":{{"Labels":{{"i":"{i}"}}}},"history":[{{"created_by":"x"}}],"rootfs":{{"diff_ids":["x"]}}}}"#
        );
        pusher
            .image(
                "team/app",
                &format!("t{i}"),
                SCHEMA2,
                config.as_bytes(),
                &[b"l"],
            )
            .await;
    }
    let mut redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let accounts = account("local", &registry.url(), "u");
    let cfg = fleet_config(dir.path(), &redis, &accounts, "");
    let fleet = replicas(&cfg);
    until_shared_up(&fleet).await;
    // t0 and t1 cached before the outage.
    for served in &fleet {
        for t in ["t0", "t1"] {
            assert_eq!(level0(served, "local", t).await.0, 200);
        }
    }
    let check = |(status, body): (u16, String), i: usize| {
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["config"]["Labels"]["i"], i.to_string(), "the right image");
    };
    let load = |from: usize, to: usize| {
        let urls: Vec<(String, usize)> = fleet
            .iter()
            .flat_map(|s| {
                (from..to)
                    .map(move |i| (format!("{}/local/team/app/t{i}/history?level=0", s.url), i))
            })
            .collect();
        async move {
            let mut tasks = Vec::new();
            for (url, i) in urls {
                tasks.push(tokio::spawn(async move {
                    let r = tokio::time::timeout(Duration::from_secs(5), reqwest::get(url))
                        .await
                        .expect("answered within 5 s")
                        .unwrap();
                    ((r.status().as_u16(), r.text().await.unwrap()), i)
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        }
    };
    redis.stop();
    // Cached (t0, t1) and new (t2, t3) images, on every replica, while Redis is gone.
    for (answer, i) in load(0, 4).await {
        check(answer, i);
    }
    redis.restart();
    until_shared_up(&fleet).await;
    let before = fetches(&fleet, "local");
    for (answer, i) in load(4, 5).await {
        check(answer, i);
    }
    let after = fetches(&fleet, "local");
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "sharing resumed: one fetch of t4 for the fleet"
    );
    for served in &fleet {
        assert!(
            served.metrics().shared_count("error") >= 1,
            "the outage was seen"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_content_is_refetched_and_identities_stay_apart() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "a", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let accounts =
        account("alice", &registry.url(), "alice") + &account("bob", &registry.url(), "bob");
    let cfg = fleet_config(dir.path(), &redis, &accounts, "");
    let fleet = replicas(&cfg);
    until_shared_up(&fleet).await;
    let a = level0(&fleet[0], "alice", "a").await;
    assert_eq!(a.0, 200);

    // Another identity on the same registry fetches its own.
    assert_eq!(level0(&fleet[1], "bob", "a").await, a);
    assert_eq!(
        fetches(&fleet, "bob"),
        (1, 1),
        "alice's content never answers for bob"
    );

    // Every stored config blob replaced by other bytes: found out, fetched again, right answer.
    let mut conn = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("test:b:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "one blob per identity: {keys:?}");
    for key in &keys {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(br#"{"architecture":"evil"}"#)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(level0(&fleet[2], "alice", "a").await, a);
    assert_eq!(
        fetches(&fleet, "alice"),
        (1, 2),
        "the tampered blob was fetched again"
    );
    assert_eq!(fleet[2].metrics().shared_count("discarded"), 1);
}
