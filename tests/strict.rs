//! Fail closed: nothing a caller sends is ignored, a platform an image lacks is never answered
//! with another, old `application/octet-stream` configs answer as Distribution converts them,
//! and the inspection verbs (config, platforms, digest) on every path.

use serde_json::{Value, json};

use crate::harness::get_full as get;
use crate::harness::images::{LIST, OCI_INDEX, Pusher, SCHEMA2, VA, VA_LAYER, digest};
use crate::harness::run::dimsum;
use crate::harness::server::Served;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_misspelt_or_unknown_parameter_is_ignored_on_any_transport() {
    let (_registry, dir, cfg) = crate::harness::open_world().await;
    let served = Served::start(&cfg);
    let base = format!("{}/local/team/app/v1", served.url);
    // The image is unsigned and no key is configured: the right spelling refuses (400, unknown
    // key); a misspelling must refuse too, never answer 200.
    for (query, needle) in [
        ("labels?signedby=ci", "did you mean \"signedBy\""),
        (
            "history?level=0&plaform=linux/arm64",
            "did you mean \"platform\"",
        ),
        ("history?level=", "invalid level \"\""),
        ("history?strict=TRUE", "invalid strict \"TRUE\""),
        ("history?strict=yes", "invalid strict \"yes\""),
        ("labels?level=0", "unknown parameter \"level\""),
        ("digest?platform=linux/amd64", "takes no query parameters"),
        (
            "origin?signedBy=a&signedBy=b",
            "signedBy is given more than once",
        ),
    ] {
        let (status, body, _) = get(&format!("{base}/{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], -32602, "{query}");
        assert_eq!(body["error"]["data"]["name"], "invalid_params", "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{query}: {message}");
    }
    let (status, body, _) = get(&format!("{base}/labels?signedBy=ci")).await;
    assert_eq!(status, 400, "an unknown key is refused: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("names no configured key")
    );
    // What Orca's stages send still answers.
    let (status, _, _) = get(&format!("{base}/history?level=0&digest=&signedBy=")).await;
    assert_eq!(status, 200);
    // JSON-RPC over HTTP, by name and by position.
    let reply = served
        .rpc(
            "getLabels",
            json!({"account": "local", "repository": "team/app", "tag": "v1", "signedby": "ci"}),
        )
        .await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"signedBy\"")
    );
    let reply = served
        .rpc(
            "getHistory",
            json!(["local", "team/app", "v1", 0, null, "true"]),
        )
        .await;
    assert_eq!(
        reply["error"]["code"], -32602,
        "a string is not a boolean: {reply}"
    );
    let reply = served
        .rpc("getLabel", json!(["local", "team/app", "v1"]))
        .await;
    assert_eq!(reply["error"]["code"], -32601, "{reply}");
    assert_eq!(reply["error"]["data"]["name"], "method_not_found");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"getLabels\""),
        "{reply}"
    );
    // stdio.
    let line = json!({"jsonrpc": "2.0", "id": 1, "method": "getManifest",
        "params": {"account": "local", "repository": "team/app", "tag": "v1", "plaform": "linux/arm64"}});
    let (replies, code) = crate::harness::run::stdio(&cfg, &[line.to_string()]).await;
    assert_eq!(code, 0);
    assert_eq!(replies[0]["error"]["code"], -32602, "{}", replies[0]);
    // The CLI: clap names the flag it knows.
    let out = dimsum(
        Some(&cfg),
        &["labels", "local", "team/app", "v1", "--signedby", "ci"],
        None,
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--signed-by"), "{}", out.stderr);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_the_image_lacks_is_never_answered_with_another() {
    let (registry, _dir, cfg) = crate::harness::open_world().await;
    let served = Served::start(&cfg);
    let base = format!("{}/local/team/app/v1", served.url);
    // Warm the caches without a platform first: the check must hold on the cached path too.
    assert_eq!(get(&format!("{base}/labels")).await.0, 200);
    for route in ["labels", "history?level=0", "metadata", "origin", "config"] {
        let sep = if route.contains('?') { '&' } else { '?' };
        let (status, body, _) = get(&format!("{base}/{route}{sep}platform=linux/arm64")).await;
        assert_eq!(status, 404, "{route}: {body}");
        assert_eq!(
            body["error"]["data"]["name"], "no_matching_platform",
            "{route}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("is a single-platform image for linux/amd64, not linux/arm64"),
            "{route}: {message}"
        );
        let (status, _, _) = get(&format!("{base}/{route}{sep}platform=linux/x86_64")).await;
        assert_eq!(status, 200, "{route}: the platform it is, normalised");
    }
    let out = dimsum(
        Some(&cfg),
        &[
            "labels",
            "local",
            "team/app",
            "v1",
            "--platform",
            "linux/arm64",
        ],
        None,
    )
    .await;
    out.fails(4, "single-platform image for linux/amd64");
    // An index entry without a platform is described as such.
    let pusher = Pusher::new(&registry.url(), None);
    let (manifest, child) = pusher
        .image("team/app", "child", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let list = json!({"schemaVersion": 2, "mediaType": LIST, "manifests": [
        {"mediaType": SCHEMA2, "size": manifest.len(), "digest": child}]});
    pusher
        .manifest(
            "team/app",
            "bare",
            LIST,
            &serde_json::to_vec(&list).unwrap(),
        )
        .await;
    let (status, body, _) = get(&format!("{}/local/team/app/bare/labels", served.url)).await;
    assert_eq!(status, 404, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("an entry without a platform ({child})")),
        "{message}"
    );
    assert!(!message.contains("unknown/unknown"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_octet_stream_config_answers_as_distribution_converts_it() {
    let (registry, _dir, cfg) = crate::harness::open_world().await;
    let pusher = Pusher::new(&registry.url(), None);
    let octet = "application/octet-stream";
    let layer = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pusher
        .image_typed("team/old", "v1", SCHEMA2, octet, layer, VA, &[VA_LAYER])
        .await;
    let oracle = pusher.oracle("team/old", "v1").await.unwrap();
    let out = dimsum(Some(&cfg), &["history", "local", "team/old", "v1"], None).await;
    assert_eq!(
        out.history_list(),
        oracle,
        "byte-identical to Distribution's conversion"
    );
    let answer = |verb: &'static str| {
        let cfg = cfg.clone();
        async move {
            let out = dimsum(Some(&cfg), &[verb, "local", "team/old", "v1"], None).await;
            serde_json::from_str::<Value>(&out.ok()).unwrap()
        }
    };
    assert_eq!(answer("labels").await["revision"], "abc123");
    let origin = answer("origin").await;
    assert_eq!(origin["revision"], "abc123");
    assert_eq!(
        origin["created"], "2026-11-27T17:14:21.033634179Z",
        "no label says when: the config's own created"
    );
    let config_created: Vec<&Value> = origin["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] == "created")
        .collect();
    assert_eq!(config_created.len(), 1);
    assert_eq!(config_created[0]["from"], "config");
    // Anything else typed octet-stream is still not an image.
    pusher
        .image_typed(
            "team/old",
            "blob",
            SCHEMA2,
            octet,
            layer,
            br#"{"not":"an image"}"#,
            &[VA_LAYER],
        )
        .await;
    dimsum(Some(&cfg), &["labels", "local", "team/old", "blob"], None)
        .await
        .fails(
            7,
            "config media type \"application/octet-stream\" is not a container image config",
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_platforms_and_digest_on_every_path() {
    let (registry, _dir, cfg) = crate::harness::open_world().await;
    let pusher = Pusher::new(&registry.url(), None);
    let served = Served::start(&cfg);
    let (manifest, image) = pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": SCHEMA2, "size": manifest.len(), "digest": image,
         "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"mediaType": SCHEMA2, "size": manifest.len(), "digest": image}]});
    let index_bytes = serde_json::to_vec(&index).unwrap();
    let index_digest = pusher
        .manifest("team/app", "multi", OCI_INDEX, &index_bytes)
        .await;

    // The config blob, byte for byte.
    let r = reqwest::get(format!("{}/local/team/app/v1/config", served.url))
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.bytes().await.unwrap().as_ref(), VA);
    let out = dimsum(
        Some(&cfg),
        &["image-config", "local", "team/app", "v1"],
        None,
    )
    .await;
    assert_eq!(out.ok().as_bytes(), VA);
    let reply = served
        .rpc(
            "getConfig",
            json!({"account": "local", "repository": "team/app", "tag": "v1"}),
        )
        .await;
    assert_eq!(
        reply["result"],
        serde_json::from_slice::<Value>(VA).unwrap()
    );

    // Platforms: one entry for a single image, the index's entries (null without a platform).
    let single = json!([{"platform": "linux/amd64", "digest": image, "mediaType": SCHEMA2}]);
    assert_eq!(
        get(&format!("{}/local/team/app/v1/platforms", served.url))
            .await
            .1,
        single
    );
    let listed = json!([
        {"platform": "linux/arm/v7", "digest": image, "mediaType": SCHEMA2},
        {"platform": null, "digest": image, "mediaType": SCHEMA2}]);
    let out = dimsum(
        Some(&cfg),
        &["platforms", "local", "team/app", "multi"],
        None,
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&out.ok()).unwrap(), listed);
    let reply = served
        .rpc("getPlatforms", json!(["local", "team/app", "multi"]))
        .await;
    assert_eq!(reply["result"], listed);

    // The digest of the reference as named: the index's own.
    let expected = json!({"digest": index_digest, "mediaType": OCI_INDEX});
    assert_eq!(digest(&index_bytes), index_digest);
    assert_eq!(
        get(&format!("{}/local/team/app/multi/digest", served.url))
            .await
            .1,
        expected
    );
    let reply = served
        .rpc(
            "getDigest",
            json!({"account": "local", "repository": "team/app", "reference": "multi"}),
        )
        .await;
    assert_eq!(reply["result"], expected);
    let out = dimsum(Some(&cfg), &["digest", "local", "team/app", "v1"], None).await;
    assert_eq!(out.ok(), format!("{image}\n"));
    // A schema1-less artifact has no config to give: refused, not an empty answer.
    let (status, body, _) = get(&format!("{}/local/team/nope/v1/digest", served.url)).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_account_fails_fast_and_config_check_finds_it() {
    // Basic auth: a lookup needs the password, so a failing passwordCommand is met at once.
    let registry = crate::harness::htpasswd_world().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::harness::run::config(
        dir.path(),
        &format!(
            "dockerRegistry:\n  accounts:\n  - {{name: vault, address: \"{0}\", username: ci, password: \"encrypted:vault!e:x!k:y\"}}\n  - {{name: cmd, address: \"{0}\", username: ci, passwordCommand: \"exit 7\"}}\n  - {{name: local, address: \"{0}\", username: ci, password: pa55word}}\n",
            registry.url()
        ),
    );
    let served = Served::start(&cfg);
    for (account, needle) in [
        ("vault", "password is a Spinnaker secret reference"),
        ("cmd", "passwordCommand failed"),
    ] {
        let (status, body, _) = get(&format!("{}/{account}/team/app/v1/labels", served.url)).await;
        assert_eq!(
            status, 500,
            "permanent, in the stage's failFastStatusCodes: {body}"
        );
        assert_eq!(body["error"]["data"]["name"], "account_unusable");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("account \"{account}\"")),
            "{message}"
        );
        assert!(message.contains(needle), "{message}");
        dimsum(Some(&cfg), &["labels", account, "team/app", "v1"], None)
            .await
            .fails(3, needle);
    }
    let (status, _, _) = get(&format!("{}/local/team/app/v1/labels", served.url)).await;
    assert_eq!(status, 200, "the other accounts still work");
    let out = dimsum(Some(&cfg), &["config", "check"], None).await;
    let text = out.text();
    assert_eq!(out.code, 3, "{text}");
    assert!(text.contains("configuration has 2 problems:"), "{text}");
    assert!(text.contains("account \"vault\": "), "{text}");
    assert!(
        text.contains("account \"cmd\": passwordCommand failed"),
        "{text}"
    );
    // Hard problems are all listed at once too, with file and key.
    let bad = crate::harness::run::config(
        dir.path(),
        "dimsum:\n  callTimeoutMillis: 0\n  cache: {maxBytes: lots}\ndockerRegistry:\n  accounts:\n  - {name: a}\n",
    );
    let out = dimsum(Some(&bad), &["config", "check"], None).await;
    assert_eq!(out.code, 3);
    for needle in [
        "3 configuration problems:",
        "dimsum.callTimeoutMillis: 0 is not allowed",
        "dimsum.cache.maxBytes: expected a non-negative integer",
        "account \"a\": address: missing",
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_cannot_be_delivered_is_not_a_success() {
    let (_registry, _dir, cfg) = crate::harness::open_world().await;
    let run = |redirect: &str| {
        let command = format!(
            "{} --config {} labels local team/app v1 {redirect}",
            env!("CARGO_BIN_EXE_dimsum"),
            cfg.display()
        );
        async move {
            tokio::process::Command::new("bash")
                .arg("-c")
                .arg(command)
                .output()
                .await
                .unwrap()
        }
    };
    // A write that fails: exit 1 with the reason.
    let out = run(">/dev/full").await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot write the answer to stdout"),
        "{stderr}"
    );
    // `>&-`: the Rust runtime reopens a closed stdout on /dev/null before main, so this is
    // `>/dev/null` (docs/api.md says so).
    assert_eq!(run(">&-").await.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_document_applies_only_under_its_profile() {
    let (registry, dir, _) = crate::harness::open_world().await;
    let cfg = crate::harness::run::config(
        dir.path(),
        &format!(
            "dockerRegistry:\n  accounts:\n  - {{name: local, address: \"http://127.0.0.1:9\"}}\n---\nspring:\n  config:\n    activate:\n      on-profile: test\ndockerRegistry:\n  accounts:\n  - {{name: local, address: \"{}\"}}\n",
            registry.url()
        ),
    );
    let labels = ["labels", "local", "team/app", "v1"];
    dimsum(Some(&cfg), &labels, None)
        .await
        .fails(6, "127.0.0.1:9");
    let mut with_flag = vec!["--profiles", "test"];
    with_flag.extend(labels);
    assert!(
        dimsum(Some(&cfg), &with_flag, None)
            .await
            .ok()
            .contains("abc123")
    );
    let out = crate::harness::run::dimsum_env(
        Some(&cfg),
        &labels,
        None,
        &[("SPRING_PROFILES_ACTIVE", std::ffi::OsStr::new("dev,test"))],
    )
    .await;
    assert!(
        out.ok().contains("abc123"),
        "SPRING_PROFILES_ACTIVE as Clouddriver reads it"
    );
}
