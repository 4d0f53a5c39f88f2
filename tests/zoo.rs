//! dimsum on every registry profile of the zoo (`harness::zoo`): the same images as on the real
//! Distribution behind it, byte for byte, over REST, JSON-RPC, stdio and the one-shot CLI; again
//! after tokens die and passwords rotate; refusals with the registry's own reason; and nowhere a
//! credential where it must not go.

use serde_json::{Value, json};

use crate::harness::images::{self, OCI, OCI_INDEX, Pusher, SCHEMA2, VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{self, account_yaml, config, dimsum, stdio};
use crate::harness::server::Served;
use crate::harness::zoo::{Host, Profile, Zoo};

/// The real registry behind the zoo, holding `team/app` (`v1`, `v2`, `v3`, `multi`: an OCI index
/// with a BuildKit attestation entry before the image) and `public/app:v1`.
async fn backing() -> Registry {
    let registry = Registry::start(Mode::Open);
    let p = Pusher::new(&registry.url(), None);
    p.image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER]).await;
    // Another image: the same layer, a label that differs.
    let v2 = String::from_utf8(VA.to_vec())
        .unwrap()
        .replace("abc123", "def456");
    p.image("team/app", "v2", SCHEMA2, v2.as_bytes(), &[VA_LAYER])
        .await;
    p.image("team/app", "v3", OCI, VA, &[VA_LAYER]).await;
    let (child, child_digest) = p.image("team/app", "oci", OCI, VA, &[VA_LAYER]).await;
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2","subject":[],"predicate":{}}"#;
    let (attestation, attestation_digest) = p
        .image_typed(
            "team/app",
            "att",
            OCI,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.in-toto+json",
            b"{}",
            &[statement],
        )
        .await;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI, "size": attestation.len(), "digest": attestation_digest,
             "platform": {"architecture": "unknown", "os": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": child_digest}},
            {"mediaType": OCI, "size": child.len(), "digest": child_digest,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    });
    p.manifest(
        "team/app",
        "multi",
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .await;
    p.image("public/app", "v1", SCHEMA2, VA, &[VA_LAYER]).await;
    registry
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `GET` on dimsum's REST shim: status, headers, body.
async fn rest(server: &Served, path: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = http()
        .get(format!("{}/{path}", server.url))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// `path` answered for the zoo account exactly as for the direct one.
async fn same(server: &Served, path: &str) {
    let direct = rest(server, &format!("direct/{path}")).await;
    let zoo = rest(server, &format!("zoo/{path}")).await;
    assert_eq!(
        direct.0,
        200,
        "direct {path}: {}",
        String::from_utf8_lossy(&direct.2)
    );
    assert_eq!(
        zoo.0,
        200,
        "zoo {path}: {}",
        String::from_utf8_lossy(&zoo.2)
    );
    assert_eq!(zoo.2, direct.2, "{path}: other bytes than Distribution's");
}

/// One profile, end to end.
async fn every_path(name: &str) {
    let registry = backing().await;
    let profile = Profile::named(name);
    let zoo = Zoo::start(profile.clone(), &registry.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    let yaml = format!(
        "{}  - name: zoo\n    address: {}\n{}",
        account_yaml("direct", &registry.url(), ""),
        zoo.url,
        zoo.account_lines(&password_file)
    );
    let cfg = config(dir.path(), &yaml);
    let server = Served::start(&cfg);

    // The same answers as Distribution gives, for a plain image and for an index whose first
    // entry is an attestation.
    for tag in ["v1", "multi"] {
        for route in ["history?level=0", "history", "metadata", "labels"] {
            same(&server, &format!("team/app/{tag}/{route}")).await;
        }
    }
    let params =
        |account: &str| json!({"account": account, "repository": "team/app", "reference": "v3"});
    let direct = server.rpc("getManifest", params("direct")).await;
    let via_zoo = server.rpc("getManifest", params("zoo")).await;
    assert!(direct["result"]["digest"].is_string(), "{direct}");
    assert_eq!(via_zoo["result"], direct["result"], "{name}: getManifest");

    // Tokens die early and the password rotates (a side process rewrites the file): the next
    // image is read at once, with one new token at most.
    let tokens = zoo.tokens_issued();
    zoo.expire_tokens();
    let rotated = format!("{}-rotated", profile.password);
    zoo.set_password(&rotated);
    std::fs::write(&password_file, format!("{rotated}\n")).unwrap();
    same(&server, "team/app/v2/history?level=0").await;
    let new_tokens = zoo.tokens_issued() - tokens;
    assert!(new_tokens <= 1, "{name}: {new_tokens} tokens for one image");

    // Refusals come back as JSON with the registry's reason.
    let (status, _, body) = rest(&server, "zoo/team/missing/v1/history").await;
    let error: Value = serde_json::from_slice(&body).unwrap();
    let (want_status, want_code, reason) = match name {
        "dockerhub" | "quay" => (404, "not_found_or_no_access", "authentication required"),
        "ghcr" => (
            403,
            "registry_denied",
            "requested access to the resource is denied",
        ),
        _ => (404, "not_found", "manifest team/missing:v1 not found"),
    };
    assert_eq!(
        (status, error["error"]["data"]["name"].as_str().unwrap()),
        (want_status, want_code),
        "{name}: {error}"
    );
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(reason), "{name}: {message}");
    zoo.throttle(10);
    let (status, headers, body) = rest(&server, "zoo/public/app/v1/labels").await;
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 429, "{name}: {error}");
    let reason = match profile.throttle {
        crate::harness::zoo::profile::Throttle::Json(_) => "Rate exceeded",
        crate::harness::zoo::profile::Throttle::Text => "Too Many Requests (HAP429).",
        crate::harness::zoo::profile::Throttle::Html => "429 Too Many Requests",
    };
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(reason), "{name}: {message}");
    if let crate::harness::zoo::profile::Throttle::Json(Some(secs)) = profile.throttle {
        assert_eq!(headers["retry-after"], secs.to_string().as_str(), "{name}");
    }
    zoo.throttle(0);

    // Where credentials went: the object store never saw any, the realm on another host only on
    // its token path, and nothing reached a host the zoo does not run.
    let seen = zoo.seen();
    let store: Vec<_> = seen.iter().filter(|s| s.host == Host::Store).collect();
    assert!(
        store.iter().all(|s| s.authorization.is_none()),
        "{name}: Authorization reached the object store: {store:?}"
    );
    if matches!(
        profile.blobs,
        crate::harness::zoo::profile::Blobs::Store { .. }
    ) {
        assert!(
            store.iter().any(|s| s.status == 200),
            "{name}: blobs came through the store"
        );
    }
    let realm_path = match &profile.auth {
        crate::harness::zoo::profile::Auth::Bearer { path, .. } => Some(*path),
        _ => None,
    };
    for s in seen.iter().filter(|s| s.host == Host::Auth) {
        assert_eq!(s.path.split('?').next(), realm_path, "{name}: {s:?}");
    }
    drop(server);

    // The one-shot CLI and stdio read the same labels, with a cache of their own.
    let labels: Value = serde_json::from_slice(
        &rest(&Served::start(&cfg), "direct/team/app/v1/labels")
            .await
            .2,
    )
    .unwrap();
    assert_eq!(labels["revision"], "abc123");
    let out = dimsum(Some(&cfg), &["labels", "zoo", "team/app", "v1"], None).await;
    let printed: Value = serde_json::from_str(&out.ok()).unwrap();
    assert_eq!(printed, labels, "{name}: CLI");
    let (replies, code) = stdio(
        &cfg,
        &[json!({"jsonrpc": "2.0", "id": 7, "method": "getLabels",
            "params": {"account": "zoo", "repository": "team/app", "reference": "multi"}})
        .to_string()],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(replies[0]["result"], labels, "{name}: stdio {replies:?}");
}

macro_rules! profiles {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                every_path($name).await;
            }
        )*
        /// Every profile the zoo has is tested above.
        #[test]
        fn every_profile_is_tested() {
            assert_eq!(Profile::NAMES.to_vec(), vec![$($name),*]);
        }
    };
}

profiles! {
    dockerhub => "dockerhub",
    ghcr => "ghcr",
    ecr => "ecr",
    ecr_public => "ecr-public",
    artifact_registry => "artifact-registry",
    gcr => "gcr",
    quay => "quay",
    harbor => "harbor",
    acr => "acr",
    gitlab => "gitlab",
    nexus => "nexus",
    redhat => "redhat",
}

/// Wrong credentials get the registry's own reason, whatever the shape of its answer, and no
/// secret appears in the answer or in the debug log, even from a registry that echoes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_with_the_registrys_reason_and_no_secret() {
    let registry = backing().await;
    for (name, reason) in [
        ("dockerhub", "incorrect username or password"),
        ("quay", "Invalid Username or Password"),
        ("gitlab", "HTTP Basic: Access denied"),
        ("ecr", "Your authorization token has expired"),
        ("harbor", "unauthorized: authentication required"),
        ("acr", "authentication required"),
    ] {
        let zoo = Zoo::start(Profile::named(name), &registry.url()).await;
        zoo.echo_credentials();
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("password");
        let lines = zoo.account_lines(&password_file);
        std::fs::write(&password_file, "not-the-password\n").unwrap();
        let cfg = config(dir.path(), &account_yaml("zoo", &zoo.url, &lines));
        let out = run::dimsum_env(
            Some(&cfg),
            &["labels", "zoo", "team/app", "v1"],
            None,
            &[("RUST_LOG", std::ffi::OsStr::new("debug"))],
        )
        .await;
        out.fails(5, reason);
        assert!(
            !out.stderr.contains("not-the-password"),
            "{name}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("Basic "), "{name}: {}", out.stderr);
        assert!(
            !out.stderr.contains("zoo.harbor."),
            "{name}: a token in {}",
            out.stderr
        );
    }
    // A token the registry echoes back in its refusal is scrubbed from the message.
    let zoo = Zoo::start(Profile::named("dockerhub"), &registry.url()).await;
    zoo.echo_credentials();
    let dir = tempfile::tempdir().unwrap();
    let lines = zoo.account_lines(&dir.path().join("password"));
    let cfg = config(dir.path(), &account_yaml("zoo", &zoo.url, &lines));
    let out = dimsum(Some(&cfg), &["labels", "zoo", "forbidden/app", "v1"], None).await;
    out.fails(4, "(presented: <redacted>)");
    assert!(!out.stderr.contains("zoo.dockerhub."), "{}", out.stderr);
}

/// A password source that changes under a running service: ECR's 12-hour password rewritten by a
/// side process (file) or produced anew (command), and Nexus's Basic challenge after a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_password_is_read_again_without_a_restart() {
    let registry = backing().await;
    for name in ["ecr", "nexus"] {
        let zoo = Zoo::start(Profile::named(name), &registry.url()).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        zoo.account_lines(&file);
        let command = format!(
            "    username: {}\n    passwordCommand: cat {}\n    insecureRegistry: true\n",
            zoo.state.profile.user,
            file.display()
        );
        let cfg = config(dir.path(), &account_yaml("zoo", &zoo.url, &command));
        let server = Served::start(&cfg);
        assert_eq!(rest(&server, "zoo/team/app/v1/labels").await.0, 200);
        zoo.set_password("rotated-0123456789");
        std::fs::write(&file, "rotated-0123456789\n").unwrap();
        zoo.clear_seen();
        let (status, _, body) = rest(&server, "zoo/team/app/v2/labels").await;
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
        assert!(String::from_utf8_lossy(&body).contains("def456"));
        // One refusal of the old password, then the new one on every request.
        let refused: Vec<_> = zoo
            .seen()
            .into_iter()
            .filter(|s| s.host == Host::Registry && s.status >= 400)
            .collect();
        assert_eq!(refused.len(), 1, "{name}: {refused:?}");
    }
}

/// Docker Hub counts manifest GETs against a limit it announces in headers: dimsum exposes what
/// it last heard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_become_metrics() {
    let registry = backing().await;
    let zoo = Zoo::start(Profile::named("dockerhub"), &registry.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = zoo.account_lines(&dir.path().join("password"));
    let cfg = config(dir.path(), &account_yaml("hub", &zoo.url, &lines));
    let server = Served::start(&cfg);
    for tag in ["v1", "v2", "v3"] {
        assert_eq!(
            rest(&server, &format!("hub/team/app/{tag}/labels")).await.0,
            200
        );
    }
    let metrics = server.metrics().encode(0);
    assert!(
        metrics.contains("dimsum_registry_ratelimit_limit{account=\"hub\"} 100"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dimsum_registry_ratelimit_remaining{account=\"hub\"} 97"),
        "{metrics}"
    );
}

/// The digest of a manifest whose GET carries none (ECR) is the digest of its bytes, and a tag
/// read again through a HEAD without a digest (Red Hat) or a refused HEAD (Nexus) costs one GET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_without_the_header_and_heads_that_say_nothing() {
    let registry = backing().await;
    let pusher = Pusher::new(&registry.url(), None);
    let (bytes, _) = pusher
        .image("team/app", "moving", SCHEMA2, VA, &[VA_LAYER])
        .await;
    for name in ["ecr", "ecr-public", "redhat", "nexus", "harbor"] {
        let zoo = Zoo::start(Profile::named(name), &registry.url()).await;
        let dir = tempfile::tempdir().unwrap();
        let lines = zoo.account_lines(&dir.path().join("password"));
        // No tag cache: every lookup asks the registry again.
        let yaml = account_yaml("zoo", &zoo.url, &lines).replacen(
            "dimsum:\n",
            "dimsum:\n  cache:\n    tagTtlSeconds: 0\n",
            1,
        );
        let cfg = config(dir.path(), &yaml);
        let service = dimsum::Dimsum::new(&dimsum::Config::from_paths(&[cfg]).unwrap());
        let req = dimsum::ImageRequest {
            account: "zoo",
            repository: "team/app",
            reference: "moving",
            platform: None,
            digest: None,
            signed_by: None,
        };
        let m = service.manifest(req).await.unwrap();
        assert_eq!(m.digest.as_str(), images::digest(&bytes), "{name}");
        // The tag is asked again: a HEAD, since its digest is known.
        zoo.clear_seen();
        let again = service.manifest(req).await.unwrap();
        assert_eq!(again.digest, m.digest, "{name}");
        let gets = zoo
            .seen()
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains("/manifests/"))
            .count();
        let expected = match name {
            "redhat" | "nexus" | "harbor" => 1,
            _ => 0,
        };
        assert_eq!(gets, expected, "{name}: {:?}", zoo.seen());
    }
}

/// Signatures stored as OCI 1.1 referrers come from the referrers API where the registry has one
/// (Harbor, which labels it `application/json`, ECR, ACR, Docker Hub), and from the fallback tag
/// where it answers 404 (GHCR, GitLab, Quay, …).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_from_the_api_or_the_fallback_tag() {
    use crate::origin::{BUNDLE, EMPTY, annotated, referrer};
    let registry = backing().await;
    let p = Pusher::new(&registry.url(), None);
    let bundled = annotated(&p, "team/app", "bundled", json!({"dimsum.test": "bundled"})).await;
    referrer(&p, "team/app", &bundled, BUNDLE, EMPTY).await;
    let fallback_tag = format!("/manifests/{}", bundled.1.replacen(':', "-", 1));
    for (name, api) in [
        ("harbor", true),
        ("acr", true),
        ("ghcr", false),
        ("gitlab", false),
    ] {
        let zoo = Zoo::start(Profile::named(name), &registry.url()).await;
        let dir = tempfile::tempdir().unwrap();
        let lines = zoo.account_lines(&dir.path().join("password"));
        let cfg = config(dir.path(), &account_yaml("zoo", &zoo.url, &lines));
        let server = Served::start(&cfg);
        let (status, _, body) = rest(&server, "zoo/team/app/bundled/origin").await;
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
        let origin: Value = serde_json::from_slice(&body).unwrap();
        let found = &origin["signatures"][0];
        assert_eq!(
            (&found["kind"], &found["digest"], &found["reason"]),
            (
                &json!("sigstore-bundle"),
                &json!(bundled.1),
                &json!("the referrer has no bundle layer")
            ),
            "{name}"
        );
        let seen = zoo.seen();
        let referrers = seen
            .iter()
            .find(|s| s.path.contains("/referrers/") && s.status != 401)
            .unwrap_or_else(|| panic!("{name}: the referrers API was not asked"));
        assert_eq!(referrers.status, if api { 200 } else { 404 }, "{name}");
        let used_tag = seen
            .iter()
            .any(|s| s.path.ends_with(&fallback_tag) && s.status == 200);
        assert_eq!(used_tag, !api, "{name}: fallback tag read: {used_tag}");
    }
}
