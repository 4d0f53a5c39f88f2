//! The three auth modes against a real registry, and where credentials may go.

use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use dimsum::{Config, Dimsum, ImageRequest, history};

use crate::harness::images::{Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{account_yaml, config, dimsum};
use crate::harness::token::Issuer;

const LEVEL0: &str = r#""revision":"abc123""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic() {
    let registry = Registry::start(Mode::Htpasswd(&[("ci", "pa55word")]));
    let basic = format!("Basic {}", STANDARD.encode("ci:pa55word"));
    let pusher = Pusher::new(&registry.url(), Some(basic));
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let oracle = pusher.oracle("team/app", "v1").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = config(
        dir.path(),
        &account_yaml(
            "local",
            &registry.url(),
            "    username: ci\n    password: pa55word\n",
        ),
    );
    assert_eq!(
        dimsum(
            Some(&good),
            &["history", "local", "team/app", "v1", "--level", "0"],
            None
        )
        .await
        .ok(),
        oracle[0]
    );
    let wrong = config(
        dir.path(),
        &account_yaml(
            "local",
            &registry.url(),
            "    username: ci\n    password: nope\n",
        ),
    );
    let out = dimsum(Some(&wrong), &["history", "local", "team/app", "v1"], None).await;
    out.fails(5, "access denied (HTTP 401)");
    assert!(!out.stderr.contains("nope"), "the password never appears");
    let anonymous = config(dir.path(), &account_yaml("local", &registry.url(), ""));
    dimsum(
        Some(&anonymous),
        &["history", "local", "team/app", "v1"],
        None,
    )
    .await
    .fails(5, "access denied");
}

async fn token_registry() -> (Issuer, Registry, Pusher) {
    let issuer = Issuer::start(&[("alice", "first-secret")]).await;
    let registry = Registry::start(Mode::Token {
        realm: &issuer.realm,
    });
    let pusher_token = |repo: &str| format!("Bearer {}", Issuer::mint(repo, &["pull", "push"]));
    for repo in ["team/app", "team/other"] {
        let pusher = Pusher::new(&registry.url(), Some(pusher_token(repo)));
        pusher.image(repo, "v1", SCHEMA2, VA, &[VA_LAYER]).await;
    }
    let pusher = Pusher::new(&registry.url(), Some(pusher_token("team/app")));
    (issuer, registry, pusher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_caches_tokens_and_rereads_a_rotated_password_file() {
    let (issuer, registry, pusher) = token_registry().await;
    let oracle = pusher.oracle("team/app", "v1").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("token");
    std::fs::write(&password_file, "first-secret\n").unwrap();
    let yaml = account_yaml(
        "local",
        &registry.url(),
        &format!(
            "    username: alice\n    passwordFile: {}\n",
            password_file.display()
        ),
    );
    let cfg = config(dir.path(), &yaml);
    assert_eq!(
        dimsum(
            Some(&cfg),
            &["history", "local", "team/app", "v1", "--level", "0"],
            None
        )
        .await
        .ok(),
        oracle[0]
    );

    // In one process: a second lookup reuses the cached token (manifest and blob included).
    let service = Dimsum::new(&Config::from_paths(&[cfg]).unwrap());
    let before = issuer.state.requests.load(Ordering::SeqCst);
    let req = |repo| ImageRequest {
        account: "local",
        repository: repo,
        reference: "v1",
        platform: None,
        digest: None,
        signed_by: None,
    };
    for _ in 0..2 {
        let (entry, _) = service
            .history_level(req("team/app"), 0, history::Options::default())
            .await
            .unwrap();
        assert_eq!(entry.get(), oracle[0]);
    }
    assert_eq!(
        issuer.state.requests.load(Ordering::SeqCst),
        before + 1,
        "one token for both lookups"
    );

    // Rotate: the issuer now wants a new password and the file says so. The next token fetch
    // (another repository needs another token) re-reads the file.
    issuer.set_password("alice", "second-secret");
    std::fs::write(&password_file, "second-secret\n").unwrap();
    let (entry, _) = service
        .history_level(req("team/other"), 0, history::Options::default())
        .await
        .unwrap();
    assert!(entry.get().contains(LEVEL0));
    let last = issuer
        .state
        .authorizations
        .lock()
        .unwrap()
        .last()
        .cloned()
        .flatten()
        .unwrap();
    assert_eq!(
        last,
        format!("Basic {}", STANDARD.encode("alice:second-secret"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_refusals() {
    let (_issuer, registry, _pusher) = token_registry().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = config(
        dir.path(),
        &account_yaml(
            "local",
            &registry.url(),
            "    username: alice\n    password: wrong\n",
        ),
    );
    dimsum(Some(&wrong), &["history", "local", "team/app", "v1"], None)
        .await
        .fails(5, "access denied");
    // Anonymous: the issuer grants nothing, the registry refuses the token. That is what a
    // missing repository looks like too, so it is said as such, not as bad credentials.
    let anonymous = config(dir.path(), &account_yaml("local", &registry.url(), ""));
    dimsum(
        Some(&anonymous),
        &["history", "local", "team/app", "v1"],
        None,
    )
    .await
    .fails(4, "not found, or no access with these credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_withheld_from_a_plain_http_realm_on_another_host() {
    let issuer = Issuer::start(&[("alice", "pw")]).await;
    // The registry names the realm by another host name over plain HTTP.
    let realm = issuer.realm.replace("127.0.0.1", "localhost");
    let registry = Registry::start(Mode::Token { realm: &realm });
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &account_yaml(
            "local",
            &registry.url(),
            "    username: alice\n    password: pw\n",
        ),
    );
    dimsum(Some(&cfg), &["history", "local", "team/app", "v1"], None)
        .await
        .fails(5, "access denied");
    let seen = issuer.state.authorizations.lock().unwrap().clone();
    assert!(!seen.is_empty(), "the realm was asked for a token");
    assert!(
        seen.iter().all(Option::is_none),
        "no credentials went to the other host: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_challenges_share_one_token_exchange() {
    let (issuer, registry, _pusher) = token_registry().await;
    let pusher = Pusher::new(
        &registry.url(),
        Some(format!(
            "Bearer {}",
            Issuer::mint("team/app", &["pull", "push"])
        )),
    );
    for i in 0..20 {
        pusher
            .image("team/app", &format!("t{i}"), SCHEMA2, VA, &[VA_LAYER])
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &account_yaml(
            "local",
            &registry.url(),
            "    username: alice\n    password: first-secret\n",
        ),
    );
    let service = std::sync::Arc::new(Dimsum::new(&Config::from_paths(&[cfg]).unwrap()));
    let before = issuer.state.requests.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            let tag = format!("t{i}");
            let req = ImageRequest {
                account: "local",
                repository: "team/app",
                reference: &tag,
                platform: None,
                digest: None,
                signed_by: None,
            };
            service.labels(req).await.unwrap()
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().contains("abc123"));
    }
    assert_eq!(
        issuer.state.requests.load(Ordering::SeqCst),
        before + 1,
        "twenty concurrent 401s, one token"
    );
    assert_eq!(
        service
            .metrics()
            .upstream_count("local", dimsum::metrics::Kind::token),
        1
    );
}
