//! A bounded load test: 100,000 mixed requests over 64 connections while the registry is
//! restarted twice. No crash, no hang, no dropped connection; only transient errors during the
//! outages; memory flat afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncBufReadExt as _;

use crate::harness::images::{Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::config;

const TOTAL: u64 = 100_000;
const WORKERS: u64 = 64;
const COLD_TAGS: u64 = 200;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_with_two_registry_restarts() {
    let mut registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    for i in 0..COLD_TAGS {
        let config = format!(
            r#"{{"config":{{"Labels":{{"i":"{i}"}}}},"history":[{{}}],"rootfs":{{"diff_ids":["x"]}}}}"#
        );
        pusher
            .image(
                "team/app",
                &format!("t{i}"),
                SCHEMA2,
                config.as_bytes(),
                &[b"layer"],
            )
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "dimsum:\n  retries: 0\ndockerRegistry:\n  accounts:\n  - {{name: local, address: \"{}\"}}\n",
        registry.url()
    );
    let cfg = config(dir.path(), &yaml);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = stderr.next_line().await.unwrap().expect("dimsum exited");
        if let Some(a) = line.strip_prefix("dimsum: listening on ") {
            break a.to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(WORKERS as usize)
        .build()
        .unwrap();

    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let (progress, mut watch) = tokio::sync::watch::channel(0u64);
    let progress = Arc::new(progress);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (client, addr, sent, done, progress) = (
            client.clone(),
            addr.clone(),
            sent.clone(),
            done.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            // (kind, status) counts for this worker.
            let mut seen: Vec<(&'static str, u16)> = Vec::new();
            loop {
                let n = sent.fetch_add(1, Ordering::SeqCst);
                if n >= TOTAL {
                    return seen;
                }
                let (kind, path) = match n % 10 {
                    0..=3 => ("warm", "/local/team/app/v1/history?level=0".to_owned()),
                    4 | 5 => ("warm", "/local/team/app/v1/labels".to_owned()),
                    6 | 7 => ("cold", format!("/local/team/app/t{}/labels", n % COLD_TAGS)),
                    8 => (
                        "missing",
                        format!("/local/team/app/missing{}/labels", n % 50),
                    ),
                    _ => ("invalid", "/local/Team/x/v1/labels".to_owned()),
                };
                let response = client
                    .get(format!("http://{addr}{path}"))
                    .send()
                    .await
                    .expect("no connection is dropped");
                seen.push((kind, response.status().as_u16()));
                let _ = response.bytes().await.expect("every body arrives");
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                if finished % 1000 == 0 {
                    let _ = progress.send(finished);
                }
            }
        }));
    }
    let mut rss_mid = 0;
    for (stop_at, start_at) in [(20_000, 30_000), (60_000, 70_000)] {
        watch.wait_for(|n| *n >= stop_at).await.unwrap();
        if rss_mid == 0 {
            rss_mid = rss_kib(pid);
        }
        registry.stop();
        watch.wait_for(|n| *n >= start_at).await.unwrap();
        registry.restart();
    }
    let mut counts = std::collections::BTreeMap::<(&str, u16), u64>::new();
    for w in workers {
        for key in w.await.unwrap() {
            *counts.entry(key).or_default() += 1;
        }
    }
    let total: u64 = counts.values().sum();
    assert_eq!(total, TOTAL, "every request answered: {counts:?}");
    for ((kind, status), n) in &counts {
        let allowed: &[u16] = match *kind {
            "warm" => &[200],
            "cold" => &[200, 503],
            "missing" => &[404, 503],
            _ => &[400],
        };
        assert!(
            allowed.contains(status),
            "{n} {kind} requests got {status}: {counts:?}"
        );
    }
    assert!(counts.get(&("cold", 200)).copied().unwrap_or(0) > 0);
    // After the outages everything answers normally again.
    let r = client
        .get(format!(
            "http://{addr}/local/team/app/t{}/labels",
            COLD_TAGS - 1
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rss_end = rss_kib(pid);
    eprintln!("load: {counts:?}; RSS {rss_mid} KiB at 20k requests, {rss_end} KiB at {TOTAL}");
    assert!(
        rss_end < rss_mid + 32 * 1024,
        "memory flat: {rss_mid} KiB → {rss_end} KiB"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "dimsum is still running"
    );
}
