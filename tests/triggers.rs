//! Push to pipeline: the real registry notifies dimsum, dimsum posts one trigger per pushed image
//! to a test Gate — with the digest, tag, labels, origin and `docker/image` artifact — exactly once
//! through redeliveries, re-pushes, three replicas on a real `redis-server`, a replica killed
//! mid-delivery and a Gate that is down for a while; filters hold; nothing without
//! `dimsum.triggers`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::harness::gate::Gate;
use crate::harness::images::{Pusher, SCHEMA2, VA, VA_LAYER};
use crate::harness::redis::RedisServer;
use crate::harness::registry::Registry;
use crate::harness::run::config;
use crate::harness::server::Served;
use crate::harness::until;

const TOKEN: &str = "trigger-events-token-0123456789";
const GATE_TOKEN: &str = "gate-token-0123456789abcdef";

/// A config for the registry at `registry` with events, triggers to `gate` (`triggers` more
/// lines under `dimsum.triggers`) and `settings` under `dimsum:`.
fn trigger_config(
    dir: &Path,
    registry: &str,
    gate: &Gate,
    triggers: &str,
    settings: &str,
) -> PathBuf {
    std::fs::write(dir.join("events-token"), TOKEN).unwrap();
    std::fs::write(dir.join("gate-token"), format!("{GATE_TOKEN}\n")).unwrap();
    config(
        dir,
        &format!(
            "dimsum:\n  retries: 0\n  events:\n    tokenFile: {0}/events-token\n  triggers:\n    url: {1}\n    tokenFile: {0}/gate-token\n{triggers}{settings}dockerRegistry:\n  accounts:\n  - {{name: local, address: \"{registry}\"}}\n",
            dir.display(),
            gate.url
        ),
    )
}

/// A Distribution push notification, as the registry sends it.
fn push_event(repository: &str, tag: &str, digest: &str) -> String {
    json!({"events": [{"action": "push", "target": {"mediaType": SCHEMA2, "digest": digest,
        "repository": repository, "tag": tag}, "request": {"host": "x"}}]})
    .to_string()
}

async fn post_event(dimsum: &str, body: &str) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{dimsum}/events?account=local"))
        .bearer_auth(TOKEN)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Pushes Vector A with a label `n` to `repository:tag`; returns the manifest digest.
async fn push(p: &Pusher, repository: &str, tag: &str, n: &str) -> String {
    let config = String::from_utf8(VA.to_vec())
        .unwrap()
        .replace("abc123", &format!("rev-{n:0>2}"));
    p.image(repository, tag, SCHEMA2, config.as_bytes(), &[VA_LAYER])
        .await
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_starts_one_pipeline_with_labels_origin_and_artifact() {
    let gate = Gate::start().await;
    let (listener, url) = Served::bind();
    let registry = Registry::notifying(&format!("{url}/events?account=local"), TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let cfg = trigger_config(
        dir.path(),
        &registry.url(),
        &gate,
        "    repositories: [\"team/.*\"]\n    tags: [\"v[0-9]+\", \"release-.*\"]\n",
        "",
    );
    let served = Served::start_on(listener, &cfg);
    let m = served.metrics();
    let p = Pusher::new(&registry.url(), None);

    let d1 = push(&p, "team/app", "v1", "1").await;
    until("Gate receives the push", || gate.delivered().len() == 1).await;
    let body = &gate.delivered()[0];
    let host = registry.addr.clone();
    assert_eq!(body["account"], "local");
    assert_eq!(body["registry"], host.as_str());
    assert_eq!(
        (body["repository"].clone(), body["tag"].clone()),
        (json!("team/app"), json!("v1"))
    );
    assert_eq!(body["digest"], d1.as_str());
    assert_eq!(body["labels"]["revision"], "rev-01");
    assert_eq!(body["origin"]["revision"], "rev-01");
    assert_eq!(body["origin"]["digest"], d1.as_str());
    assert_eq!(
        body["parameters"],
        json!({"account": "local", "repository": "team/app", "tag": "v1", "digest": d1})
    );
    assert_eq!(
        body["artifacts"],
        json!([{"type": "docker/image", "name": format!("{host}/team/app"), "version": "v1",
                "reference": format!("{host}/team/app@{d1}")}])
    );
    let auth = gate.attempts()[0].authorization.clone();
    assert_eq!(
        auth.as_deref(),
        Some(format!("Bearer {GATE_TOKEN}").as_str())
    );

    // The registry redelivers; the same digest is pushed again to the same tag; a repository
    // and a tag the filters leave out are pushed: none starts anything. The same digest under a
    // new tag does. Deliveries keep push order, so the next one proves nothing came before it.
    post_event(&url, &push_event("team/app", "v1", &d1)).await;
    let again = push(&p, "team/app", "v1", "1").await;
    assert_eq!(again, d1);
    push(&p, "other/app", "v1", "2").await;
    push(&p, "team/app", "latest", "3").await;
    push(&p, "team/app", "release-1", "1").await;
    until("the new tag's trigger", || gate.delivered().len() == 2).await;
    assert_eq!(gate.tags(), ["v1", "release-1"]);
    assert_eq!(gate.delivered()[1]["digest"], d1.as_str());
    assert!(
        m.trigger_count("local", "duplicate") >= 2,
        "redelivery and re-push"
    );
    assert_eq!(m.trigger_count("local", "filtered"), 2);
    // Counted once Gate's answer is read, a moment after Gate recorded the body.
    until("both counted as delivered", || {
        m.trigger_count("local", "delivered") == 2
    })
    .await;

    // Pushes of one tag arrive in push order.
    for n in 4..9 {
        push(&p, "team/app", "v2", &n.to_string()).await;
    }
    until("five pushes of v2", || gate.delivered().len() == 7).await;
    let revisions: Vec<Value> = gate.delivered()[2..]
        .iter()
        .map(|b| b["labels"]["revision"].clone())
        .collect();
    assert_eq!(
        revisions,
        ["rev-04", "rev-05", "rev-06", "rev-07", "rev-08"]
    );
}

/// The pipeline in `orca-config/` starts on `body` as Echo matches a webhook trigger: each payload
/// constraint is a regular expression found in the body's top-level value, and the one
/// `docker/image` artifact has the expected artifact's type and name (the example's account and
/// registry replaced by this test's).
fn starts_the_example_pipeline(body: &Value, registry: &str) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/orca-config/pipeline-triggered-by-dimsum.json"
    ))
    .unwrap()
    .replace("my-registry", "local")
    .replace("registry.example.com", registry);
    let pipeline: Value = serde_json::from_str(&text).unwrap();
    let trigger = &pipeline["triggers"][0];
    assert_eq!(
        (trigger["type"].as_str(), trigger["source"].as_str()),
        (Some("webhook"), Some("dimsum"))
    );
    for (key, pattern) in trigger["payloadConstraints"].as_object().unwrap() {
        let value = body[key].as_str().unwrap_or_default();
        let re = regex::Regex::new(pattern.as_str().unwrap()).unwrap();
        assert!(
            re.is_match(value),
            "constraint {key}: {pattern} not found in {value:?}"
        );
    }
    let expected = &pipeline["expectedArtifacts"][0]["matchArtifact"];
    let artifacts = body["artifacts"].as_array().unwrap();
    assert_eq!(
        artifacts.len(),
        1,
        "one artifact: two matching ones are an error"
    );
    assert_eq!(artifacts[0]["type"], expected["type"]);
    assert_eq!(artifacts[0]["name"], expected["name"]);
    let reference = artifacts[0]["reference"].as_str().unwrap();
    assert!(reference.starts_with(&format!("{registry}/team/app@sha256:")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_down_for_a_while_gets_the_trigger_once_and_a_refusal_is_not_retried() {
    let gate = Gate::start().await;
    let (listener, url) = Served::bind();
    let registry = Registry::notifying(&format!("{url}/events?account=local"), TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let cfg = trigger_config(dir.path(), &registry.url(), &gate, "", "");
    let served = Served::start_on(listener, &cfg);
    let m = served.metrics();
    let p = Pusher::new(&registry.url(), None);

    gate.fail_with(503);
    push(&p, "team/app", "v1.0.0", "1").await;
    until("dimsum retries while Gate is down", || {
        gate.attempts().len() >= 3
    })
    .await;
    assert!(gate.delivered().is_empty());
    gate.fail_with(0);
    until("Gate back: the trigger arrives", || {
        gate.delivered().len() == 1
    })
    .await;
    starts_the_example_pipeline(&gate.delivered()[0], &registry.addr);

    // A 4xx is Gate's final word: one attempt, counted, and the next push is not held up.
    gate.fail_with(400);
    push(&p, "team/app", "v2.0.0", "2").await;
    until("Gate refuses", || m.trigger_count("local", "refused") == 1).await;
    gate.fail_with(0);
    push(&p, "team/app", "v3.0.0", "3").await;
    until("the next push", || gate.delivered().len() == 2).await;
    assert_eq!(gate.tags(), ["v1.0.0", "v3.0.0"]);
    let v2_attempts = gate
        .attempts()
        .iter()
        .filter(|r| r.body["tag"] == "v2.0.0")
        .count();
    assert_eq!(v2_attempts, 1, "a 400 is not retried");
    until("both counted as delivered", || {
        m.trigger_count("local", "delivered") == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dimsum_triggers_nothing_is_posted() {
    let gate = Gate::start().await;
    let (listener, url) = Served::bind();
    let registry = Registry::notifying(&format!("{url}/events?account=local"), TOKEN);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events-token"), TOKEN).unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "dimsum:\n  events:\n    tokenFile: {}/events-token\ndockerRegistry:\n  accounts:\n  - {{name: local, address: \"{}\"}}\n",
            dir.path().display(),
            registry.url()
        ),
    );
    let served = Served::start_on(listener, &cfg);
    let m = served.metrics();
    push(&Pusher::new(&registry.url(), None), "team/app", "v1", "1").await;
    // The pre-fetch runs after the event: once it is done, a trigger would have been prepared.
    until("the push is pre-fetched", || {
        m.prefetch_count("local", "ok") == 1
    })
    .await;
    assert!(gate.attempts().is_empty());
    assert!(!m.encode(0).contains("dimsum_triggers_total{"));
}

/// Three replicas on one Redis: the registry notifies one, and redelivers to the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_post_each_push_once() {
    let redis = RedisServer::start();
    let gate = Gate::start().await;
    let binds: Vec<_> = (0..3).map(|_| Served::bind()).collect();
    let registry = Registry::notifying(&format!("{}/events?account=local", binds[0].1), TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let cfg = trigger_config(
        dir.path(),
        &registry.url(),
        &gate,
        "",
        &format!(
            "  redis:\n    url: {}\n    keyPrefix: \"t:\"\n",
            redis.url()
        ),
    );
    let fleet: Vec<Served> = binds
        .into_iter()
        .map(|(listener, _)| Served::start_on(listener, &cfg))
        .collect();
    let metrics: Vec<_> = fleet.iter().map(Served::metrics).collect();
    until("every replica reaches Redis", || {
        metrics.iter().all(|m| m.is_shared_up())
    })
    .await;
    let p = Pusher::new(&registry.url(), None);
    let mut digests = Vec::new();
    for n in 1..=5 {
        let d = push(&p, "team/app", &format!("v{n}"), &n.to_string()).await;
        for replica in &fleet[1..] {
            post_event(&replica.url, &push_event("team/app", &format!("v{n}"), &d)).await;
        }
        digests.push(d);
    }
    until("five triggers", || gate.delivered().len() >= 5).await;
    // A sentinel, delivered after anything a duplicate claim would have queued before it.
    let d = push(&p, "team/app", "sentinel", "9").await;
    for replica in &fleet[1..] {
        post_event(&replica.url, &push_event("team/app", "sentinel", &d)).await;
    }
    until("the sentinel", || {
        gate.tags().contains(&"sentinel".to_owned())
    })
    .await;
    let mut tags = gate.tags();
    tags.sort();
    assert_eq!(tags, ["sentinel", "v1", "v2", "v3", "v4", "v5"]);
    // The registry's own notification of the sentinel may come last: wait for all twelve.
    until(
        "two redeliveries of each of six pushes counted as duplicates",
        || {
            metrics
                .iter()
                .map(|m| m.trigger_count("local", "duplicate"))
                .sum::<u64>()
                == 12
        },
    )
    .await;
    assert_eq!(gate.delivered().len(), 6);
}

/// A `dimsum serve` process.
struct Replica {
    child: tokio::process::Child,
    url: String,
}

impl Replica {
    async fn start(config: &Path) -> Replica {
        let (child, addr) = crate::harness::run::serve_process(config).await;
        Replica {
            child,
            url: format!("http://{addr}"),
        }
    }

    async fn metric(&self, needle: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// The replica that claimed a push is killed while Gate is down; the trigger waits in Redis, and
/// the surviving replica delivers it once when Gate is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_delivery_is_taken_over() {
    let redis = RedisServer::start();
    let gate = Gate::start().await;
    let registry = Registry::start(crate::harness::registry::Mode::Open);
    let dir = tempfile::tempdir().unwrap();
    let cfg = trigger_config(
        dir.path(),
        &registry.url(),
        &gate,
        "    leaseMillis: 500\n",
        &format!(
            "  redis:\n    url: {}\n    keyPrefix: \"k:\"\n",
            redis.url()
        ),
    );
    let mut first = Replica::start(&cfg).await;
    let second = Replica::start(&cfg).await;
    let p = Pusher::new(&registry.url(), None);
    let d = push(&p, "team/app", "v1", "1").await;

    gate.fail_with(503);
    post_event(&first.url, &push_event("team/app", "v1", &d)).await;
    until("a replica delivers and retries", || {
        gate.attempts().len() >= 2
    })
    .await;
    first.child.kill().await.unwrap();
    gate.fail_with(0);
    until("the surviving replica delivers", || {
        gate.delivered().len() == 1
    })
    .await;
    // A sentinel through the survivor: delivered after anything else queued.
    let s = push(&p, "team/app", "sentinel", "2").await;
    post_event(&second.url, &push_event("team/app", "sentinel", &s)).await;
    until("the sentinel", || gate.delivered().len() == 2).await;
    assert_eq!(gate.tags(), ["v1", "sentinel"]);
    // Counted once Gate's answer is read, a moment after Gate recorded the body: polled, boundedly.
    let delivered = "dimsum_triggers_total{account=\"local\",result=\"delivered\"}";
    let mut n = 0;
    for _ in 0..2000 {
        n = second.metric(delivered).await;
        if n == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(n, 2, "the survivor delivered both");
}
