//! What the caches save: upstream requests counted by kind, against a real registry.

use std::sync::Arc;

use dimsum::cache::SharedTier;
use dimsum::metrics::Kind;
use dimsum::{Config, Dimsum, ImageRequest, history};

use crate::harness::fault::{Fault, FaultServer};
use crate::harness::images::{Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER, VB};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::config;

/// Tags and not-founds trusted long enough that a slow test run never sees them expire: these
/// tests count what a lookup asks within a TTL (the default is a second).
const LONG_TTL: &str = "  cache:\n    tagTtlSeconds: 300\n    negativeTtlSeconds: 300\n";

fn service(url: &str, settings: &str) -> (Arc<Dimsum>, tempfile::TempDir) {
    service_with_disk(url, settings, "u", None)
}

/// A new service (a new process, as far as caches go) for `user`, keeping content in `disk`.
fn service_with_disk(
    url: &str,
    settings: &str,
    user: &str,
    disk: Option<&std::path::Path>,
) -> (Arc<Dimsum>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "dimsum:\n  retries: 0\n{settings}dockerRegistry:\n  accounts:\n  - {{name: local, address: \"{url}\", username: {user}, password: p}}\n"
    );
    let path = config(dir.path(), &yaml);
    let config = Config::from_paths(&[path]).unwrap();
    let shared = disk.and_then(SharedTier::disk);
    let metrics = Arc::new(dimsum::metrics::Metrics::default());
    (Arc::new(Dimsum::with_shared(&config, shared, metrics)), dir)
}

fn req(reference: &str) -> ImageRequest<'_> {
    ImageRequest {
        account: "local",
        repository: "team/app",
        reference,
        platform: None,
        digest: None,
        signed_by: None,
    }
}

struct Counts {
    get: u64,
    head: u64,
    blob: u64,
}

fn counts(s: &Dimsum) -> Counts {
    let m = s.metrics();
    Counts {
        get: m.upstream_count("local", Kind::manifest_get),
        head: m.upstream_count("local", Kind::manifest_head),
        blob: m.upstream_count("local", Kind::blob),
    }
}

async fn level0(s: &Dimsum, reference: &str) -> String {
    s.history_level(req(reference), 0, history::Options::default())
        .await
        .unwrap()
        .0
        .get()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_lookups_share_one_fetch_and_warm_ones_fetch_nothing() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    let (_, digest) = pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let (s, _dir) = service(&registry.url(), LONG_TTL);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { level0(&s, "v1").await }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.iter().all(|a| *a == answers[0]));
    let c = counts(&s);
    assert_eq!(
        (c.get, c.blob, c.head),
        (1, 1, 0),
        "1000 concurrent lookups: one manifest GET, one blob GET"
    );
    // Within the tag TTL, and by digest after the first: nothing.
    for _ in 0..10 {
        level0(&s, "v1").await;
        level0(&s, &digest).await;
        s.labels(req("v1")).await.unwrap();
        s.manifest(req(&digest)).await.unwrap();
    }
    let c = counts(&s);
    assert_eq!(
        (c.get, c.blob, c.head),
        (1, 1, 0),
        "warm lookups ask the registry nothing"
    );
    assert!(
        s.metrics()
            .cache_count(dimsum::metrics::CacheName::tag, true)
            >= 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_tag_costs_one_head_and_a_moved_tag_is_followed() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    // A zero TTL makes every lookup one whose time is up.
    let (s, _dir) = service(&registry.url(), "  cache:\n    tagTtlSeconds: 0\n");
    let first = level0(&s, "v1").await;
    let c = counts(&s);
    assert_eq!((c.get, c.blob, c.head), (1, 1, 0));
    assert_eq!(level0(&s, "v1").await, first);
    let c = counts(&s);
    assert_eq!(
        (c.get, c.blob, c.head),
        (1, 1, 1),
        "unchanged tag: one HEAD, no GET"
    );
    // The tag moves: the HEAD sees the new digest, which is fetched by digest.
    pusher
        .image("team/app", "v1", SCHEMA2, VB, &[b"layer-a", b"layer-b"])
        .await;
    let moved = level0(&s, "v1").await;
    assert_ne!(moved, first);
    let c = counts(&s);
    assert_eq!((c.get, c.blob, c.head), (2, 2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_remembered_briefly_and_the_cache_stays_within_its_bytes() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    let settings = format!("{LONG_TTL}    maxBytes: 20000\n");
    let (s, _dir) = service(&registry.url(), &settings);
    for _ in 0..3 {
        let e = s
            .history(req("nope"), history::Options::default())
            .await
            .unwrap_err();
        assert_eq!(e.code(), dimsum_rest::Code::NotFound);
    }
    assert_eq!(
        counts(&s).get,
        1,
        "two of three not-founds came from the negative cache"
    );
    for i in 0..40 {
        let config = format!(
            r#"{{"config":{{"Labels":{{"i":"{i}","pad":"{}"}}}},"history":[{{"created_by":"x"}}],"rootfs":{{"diff_ids":["x"]}}}}"#,
            "p".repeat(400)
        );
        pusher
            .image(
                "team/app",
                &format!("t{i}"),
                SCHEMA2,
                config.as_bytes(),
                &[format!("layer {i}").as_bytes()],
            )
            .await;
        let top = level0(&s, &format!("t{i}")).await;
        assert!(top.contains(&format!(r#""i":"{i}""#)));
        assert!(
            s.cached_bytes().await <= 20000,
            "the cache never exceeds its configured bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_that_failed_verification_is_cached() {
    let server = FaultServer::start(Fault::WrongBlob).await;
    let (s, _dir) = service(&server.url, "");
    let req = ImageRequest {
        account: "local",
        repository: "fault/app",
        reference: "v1",
        platform: None,
        digest: None,
        signed_by: None,
    };
    let e = s
        .history(req, history::Options::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), dimsum_rest::Code::RegistryBadResponse);
    *server.state.fault.lock().unwrap() = Fault::None;
    let h = s.history(req, history::Options::default()).await.unwrap();
    assert!(h.entries[0].get().contains("abc123"));
    assert_eq!(
        s.metrics().upstream_count("local", Kind::blob),
        2,
        "the bad blob was not cached: fetched again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_registry_is_down_a_known_tag_is_served_stale() {
    let mut registry = Registry::start(Mode::Open);
    Pusher::new(&registry.url(), None)
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let (s, _dir) = service(&registry.url(), "  cache:\n    tagTtlSeconds: 0\n");
    let before = level0(&s, "v1").await;
    registry.stop();
    assert_eq!(
        level0(&s, "v1").await,
        before,
        "the last known digest answers during the outage"
    );
    let e = s
        .history(req("never-seen"), history::Options::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        dimsum_rest::Code::RegistryUnavailable,
        "an unknown tag is an honest outage"
    );
    registry.restart();
    assert_eq!(level0(&s, "v1").await, before);
    assert_eq!(
        counts(&s).head,
        2,
        "one HEAD each time the tag's time was up, the failed one included"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_disk_cache_a_new_process_asks_one_head_and_never_serves_stale_from_disk() {
    let mut registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    let (_, va) = pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let disk = tempfile::tempdir().unwrap();
    let url = registry.url();
    let fresh = || service_with_disk(&url, LONG_TTL, "u", Some(disk.path()));

    let (s, _d) = fresh();
    let first = level0(&s, "v1").await;
    let c = counts(&s);
    assert_eq!(
        (c.get, c.blob, c.head),
        (1, 1, 0),
        "an empty disk: a cold lookup"
    );

    let (s, _d) = fresh();
    assert_eq!(level0(&s, "v1").await, first);
    assert_eq!(level0(&s, &va).await, first);
    let c = counts(&s);
    assert_eq!(
        (c.get, c.blob, c.head),
        (0, 0, 1),
        "the next process: the tag revalidated by one HEAD, content from disk, by digest nothing"
    );

    // The tag moves: the next process follows it, and fetches only what it has not seen.
    let (_, vb) = pusher
        .image("team/app", "v1", SCHEMA2, VB, &[b"layer-a", b"layer-b"])
        .await;
    let (s, _d) = fresh();
    let moved = level0(&s, "v1").await;
    assert_ne!(moved, first);
    let c = counts(&s);
    assert_eq!((c.get, c.blob, c.head), (1, 1, 1));
    let (s, _d) = fresh();
    assert_eq!(level0(&s, &vb).await, moved);
    assert_eq!(level0(&s, &va).await, first);
    let c = counts(&s);
    assert_eq!((c.get, c.blob, c.head), (0, 0, 0));

    // Tampered content is detected, ignored and fetched again.
    for f in std::fs::read_dir(disk.path()).unwrap() {
        let path = f.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("blob-")
        {
            std::fs::write(&path, br#"{"architecture":"evil"}"#).unwrap();
        }
    }
    let (s, _d) = fresh();
    assert_eq!(level0(&s, &va).await, first);
    assert_eq!(counts(&s).blob, 1);
    let (s, _d) = fresh();
    assert_eq!(level0(&s, &va).await, first);
    assert_eq!(counts(&s).blob, 0, "and kept again, intact");

    // Another identity's cache says nothing about this one.
    let (other, _d) = service_with_disk(&url, "", "someone-else", Some(disk.path()));
    assert_eq!(level0(&other, &va).await, first);
    let c = counts(&other);
    assert_eq!((c.get, c.blob), (1, 1));

    // A digest remembered on disk is a hint to revalidate, never an answer during an outage.
    registry.stop();
    let (s, _d) = fresh();
    let e = s
        .history(req("v1"), history::Options::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), dimsum_rest::Code::RegistryUnavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_keeps_its_disk_cache_where_told_and_only_there() {
    use crate::harness::run::dimsum_env;
    let (_registry, dir, cfg) = crate::harness::open_world().await;
    let home = dir.path().join("home");
    let env = [("HOME", home.as_os_str())];
    let args = ["history", "local", "team/app", "v1", "--level", "0"];
    let first = dimsum_env(Some(&cfg), &args, None, &env).await.ok();
    let default_dir = home.join(".cache/dimsum");
    let files = |d: &std::path::Path| std::fs::read_dir(d).map_or(0, Iterator::count);
    assert_eq!(
        files(&default_dir),
        3,
        "manifest, config and tag under ~/.cache/dimsum"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&default_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(dimsum_env(Some(&cfg), &args, None, &env).await.ok(), first);

    let given = dir.path().join("given");
    let mut with_dir: Vec<&str> = vec!["--cache-dir", given.to_str().unwrap()];
    with_dir.extend(args);
    assert_eq!(
        dimsum_env(Some(&cfg), &with_dir, None, &env).await.ok(),
        first
    );
    assert_eq!(files(&given), 3);

    let empty_home = dir.path().join("empty");
    let env = [("HOME", empty_home.as_os_str())];
    let mut off = vec!["--no-disk-cache"];
    off.extend(args);
    assert_eq!(dimsum_env(Some(&cfg), &off, None, &env).await.ok(), first);
    assert!(!empty_home.exists(), "--no-disk-cache writes nothing");

    // A directory that cannot be made is no cache, not a failure.
    let not_a_dir = cfg.to_str().unwrap();
    let mut unusable = vec!["--cache-dir", not_a_dir];
    unusable.extend(args);
    assert_eq!(
        dimsum_env(Some(&cfg), &unusable, None, &env).await.ok(),
        first
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_disk_cache_the_command_line_gave() {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let disk = tempfile::tempdir().unwrap();
    let (s, dir) = service_with_disk(&registry.url(), LONG_TTL, "u", Some(disk.path()));
    let first = level0(&s, "v1").await;
    // What a reload reads: the same files, which name no cache directory.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    let reloaded = s.reconfigured(&Config::from_paths(&files).unwrap());
    assert_eq!(level0(&reloaded, "v1").await, first);
    let c = counts(&reloaded);
    assert_eq!(
        (c.get, c.blob, c.head),
        (1, 1, 0),
        "nothing fetched again: the caches carried over"
    );
    let files_on_disk = std::fs::read_dir(disk.path()).unwrap().count();
    assert_eq!(files_on_disk, 3);
}
