//! Bad input, configuration errors and registry refusals: a clear line and the documented exit.

use crate::harness::images::{Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{account_yaml, config, dimsum};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_missing_things() {
    let (_registry, _dir, cfg) = crate::harness::open_world().await;
    let run = |args: &'static [&'static str]| {
        let cfg = cfg.clone();
        async move { dimsum(Some(&cfg), args, None).await }
    };
    run(&["history", "nosuch", "team/app", "v1"])
        .await
        .fails(3, "unknown account \"nosuch\" (configured: local)");
    run(&["history", "local", "team/app", "v2"])
        .await
        .fails(4, "manifest team/app:v2 from 127.0.0.1");
    run(&["history", "local", "team/nope", "v1"])
        .await
        .fails(4, "not found");
    run(&["history", "local", "team/app", "v1", "--level", "2"])
        .await
        .fails(
            4,
            "level 2 is out of range: the image has 2 history entries (levels 0 to 1)",
        );
    run(&["history", "local", "Team/App", "v1"])
        .await
        .fails(2, "invalid repository name \"Team/App\"");
    run(&["history", "local", "team/../app", "v1"])
        .await
        .fails(2, "invalid repository name");
    run(&["history", "local", "team/app", "sha256:abc"])
        .await
        .fails(2, "invalid reference \"sha256:abc\"");
    run(&["history", "local", "team/app", "v1", "--platform", "linux"])
        .await
        .fails(2, "invalid platform");
    let missing_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let out = dimsum(
        Some(&cfg),
        &["manifest", "local", "team/app", missing_digest],
        None,
    )
    .await;
    out.fails(4, "not found");
    // clap rejects a malformed level before anything runs.
    let out = run(&["history", "local", "team/app", "v1", "--level", "-1"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = run(&["history", "local", "team/app", "v1", "--level", "abc"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry() {
    // Bind and drop a listener to get a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &account_yaml("local", &format!("http://127.0.0.1:{port}"), ""),
    );
    dimsum(Some(&cfg), &["history", "local", "team/app", "v1"], None)
        .await
        .fails(6, "registry unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_name_file_account_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clouddriver-local.yml");
    std::fs::write(
        &path,
        "dockerRegistry:\n  accounts:\n  - name: ecr\n    address: https://1234.dkr.ecr.us-east-1.amazonaws.com\n    username: AWS\n    passwordFile: /var/run/ecr/token\n",
    )
    .unwrap();
    let out = dimsum(Some(&path), &["history", "ecr", "team/app", "v1"], None).await;
    out.fails(3, "clouddriver-local.yml: account \"ecr\": passwordFile /var/run/ecr/token: No such file or directory");
    let out = dimsum(
        Some(&dir.path().join("absent.yml")),
        &["history", "ecr", "team/app", "v1"],
        None,
    )
    .await;
    out.fails(3, "absent.yml: No such file or directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_files_and_the_builtin_default() {
    let dir = tempfile::tempdir().unwrap();
    let base = config(
        dir.path(),
        "dockerRegistry:\n  accounts:\n  - {name: a, address: \"http://127.0.0.1:1\"}\n",
    );
    let local = config(
        dir.path(),
        "dockerRegistry:\n  accounts:\n  - {name: b, address: \"http://127.0.0.1:1\"}\n",
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
        .args(["history", "nosuch", "x", "y"])
        .env(
            "DIMSUM_CONFIG",
            format!("{}:{}", base.display(), local.display()),
        )
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("(configured: a, b)"));
    // No config anywhere: the built-in Docker Hub account, announced on stderr. An unknown account
    // keeps this test off the network.
    let empty = tempfile::tempdir().unwrap();
    let out = dimsum(None, &["history", "nosuch", "x", "y"], Some(empty.path())).await;
    assert_eq!(out.code, 3);
    assert!(
        out.stderr
            .contains("built-in anonymous Docker Hub account \"dockerhub\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("(configured: dockerhub)"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_registry_accepts_a_self_signed_certificate_and_nothing_else_does() {
    let registry = Registry::start(Mode::OpenTls);
    let pusher = Pusher::new_insecure(&registry.url());
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let secure = config(dir.path(), &account_yaml("local", &registry.url(), ""));
    let out = dimsum(Some(&secure), &["history", "local", "team/app", "v1"], None).await;
    out.fails(6, "registry unavailable");
    assert!(
        out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );
    // Without a scheme the address means https://.
    let address = registry.url().trim_start_matches("https://").to_owned();
    let insecure = config(
        dir.path(),
        &account_yaml("local", &address, "    insecureRegistry: true\n"),
    );
    let level0 = dimsum(
        Some(&insecure),
        &["history", "local", "team/app", "v1", "--level", "0"],
        None,
    )
    .await;
    assert!(level0.ok().contains(r#""revision":"abc123""#));
}
