//! Operating dimsum: metrics that move, live reload (SIGHUP and file change, broken files kept
//! out), `config check`, completions and JSON logs.

use std::path::Path;

use tokio::io::AsyncBufReadExt as _;

use crate::harness::images::{Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::dimsum;

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A `dimsum serve` child whose stderr lines can be awaited one by one.
struct Server {
    child: tokio::process::Child,
    addr: String,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
}

impl Server {
    async fn start(config: &Path, extra: &[&str]) -> Server {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
            .arg("--config")
            .arg(config)
            .args(extra)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        // "dimsum: listening on A" in text; in JSON, an event whose message says so.
        let listening = |line: &str| {
            if let Some(a) = line.strip_prefix("dimsum: listening on ") {
                return Some(a.to_owned());
            }
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let message = v["fields"]["message"].as_str()?;
            message.strip_prefix("listening on ").map(str::to_owned)
        };
        let find = async {
            loop {
                let line = lines.next_line().await.unwrap().expect("dimsum exited");
                if let Some(a) = listening(&line) {
                    break a;
                }
            }
        };
        let addr = tokio::time::timeout(std::time::Duration::from_secs(30), find)
            .await
            .expect("no listening line within 30 s");
        Server { child, addr, lines }
    }

    /// Reads stderr until a line contains `needle` (bounded), returning it.
    async fn wait_for(&mut self, needle: &str) -> String {
        let read = async {
            loop {
                let line = self
                    .lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("dimsum exited");
                if line.contains(needle) {
                    return line;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), read)
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} on stderr"))
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = http()
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        assert!(
            std::process::Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_under_load() {
    let registry = Registry::start(Mode::Open);
    Pusher::new(&registry.url(), None)
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(
        &cfg,
        format!(
            "dockerRegistry:\n  accounts:\n  - {{name: local, address: \"{}\"}}\n",
            registry.url()
        ),
    )
    .unwrap();
    let mut server = Server::start(&cfg, &["--log-format", "json"]).await;
    let (_, before) = server.get("/metrics").await;
    for _ in 0..20 {
        assert_eq!(
            server.get("/local/team/app/v1/history?level=0").await.0,
            200
        );
    }
    assert_eq!(server.get("/local/team/app/nope/labels").await.0, 404);
    let (status, after) = server.get("/metrics").await;
    assert_eq!(status, 200);
    let series = [
        "dimsum_http_requests_total{route=\"history\",method=\"GET\",status=\"200\"}",
        "dimsum_http_request_duration_seconds_count{route=\"history\"}",
        "dimsum_upstream_requests_total{account=\"local\",kind=\"manifest_get\"",
        "dimsum_upstream_requests_total{account=\"local\",kind=\"blob\"",
        "dimsum_cache_lookups_total{cache=\"tag\",result=\"hit\"}",
        "dimsum_cache_bytes",
    ];
    for s in series {
        assert!(
            metric(&after, s) > metric(&before, s),
            "{s} did not move:\n{after}"
        );
    }
    assert!(
        after.contains(
            "dimsum_http_requests_total{route=\"labels\",method=\"GET\",status=\"404\"} 1"
        )
    );
    // One JSON log line per request, with its id.
    let line = server.wait_for("\"request\"").await;
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        v["fields"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("dimsum-"),
        "{line}"
    );
    let r = http()
        .get(format!("http://{}/healthz", server.addr))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}

/// With `--log-format json --log-level debug`: every stderr line is JSON, each registry request
/// and cache decision is a line carrying the request id, errors carry it too, durations are
/// numbers to a hundredth, and nothing is printed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_an_operator_can_use() {
    let registry = crate::harness::htpasswd_world().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::harness::run::config(
        dir.path(),
        &crate::harness::run::account_yaml(
            "local",
            &registry.url(),
            "    username: ci\n    password: pa55word\n",
        ),
    );
    let mut server = Server::start(&cfg, &["--log-format", "json", "--log-level", "debug"]).await;
    let fetch = |path: &'static str, id: &'static str| {
        http()
            .get(format!("http://{}{path}", server.addr))
            .header("x-request-id", id)
            .send()
    };
    assert_eq!(
        fetch("/local/team/app/v1/labels", "ok-1")
            .await
            .unwrap()
            .status(),
        200
    );
    // A WebSocket's messages are logged under its upgrade's request id.
    {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut upgrade = format!("ws://{}/", server.addr)
            .into_client_request()
            .unwrap();
        upgrade
            .headers_mut()
            .insert("x-request-id", "ws-3".parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(upgrade).await.unwrap();
        let call =
            r#"{"jsonrpc":"2.0","id":1,"method":"getLabels","params":["local","team/app","gone"]}"#;
        ws.send(tokio_tungstenite::tungstenite::Message::text(call))
            .await
            .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert!(reply.to_text().unwrap().contains("not_found"), "{reply}");
    }
    assert_eq!(
        fetch("/local/team/app/nope/labels", "missing-2")
            .await
            .unwrap()
            .status(),
        404
    );
    // The second request's own "request" line comes after everything it caused.
    let mut lines = Vec::new();
    let read = async {
        loop {
            let line = server
                .lines
                .next_line()
                .await
                .unwrap()
                .expect("dimsum exited");
            let done = line.contains("missing-2") && line.contains("\"message\":\"request\"");
            lines.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("no request line within 30 s");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let id_of = |e: &serde_json::Value| e["span"]["request_id"].as_str().map(str::to_owned);
    let registry_requests: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["fields"]["message"] == "registry request")
        .collect();
    assert!(
        registry_requests.len() >= 3,
        "manifest, blob, and the 404: {lines:#?}"
    );
    for e in &registry_requests {
        let f = &e["fields"];
        assert_eq!(f["account"], "local");
        assert!(
            f["url"].as_str().unwrap().starts_with(&registry.url()),
            "{e}"
        );
        assert!(f["status"].is_u64() && f["method"].is_string(), "{e}");
        let ms = f["ms"].as_f64().unwrap();
        assert_eq!((ms * 100.0).round() / 100.0, ms, "a hundredth at most: {e}");
        assert!(
            id_of(e).is_some(),
            "a registry request carries its request id: {e}"
        );
    }
    assert!(
        registry_requests
            .iter()
            .any(|e| id_of(e).as_deref() == Some("ok-1"))
    );
    assert!(
        registry_requests
            .iter()
            .any(|e| id_of(e).as_deref() == Some("missing-2") && e["fields"]["status"] == 404),
        "{lines:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["fields"]["message"] == "cache" && id_of(e).is_some()),
        "cache decisions: {lines:#?}"
    );
    let error = events
        .iter()
        .find(|e| e["fields"]["code"] == "not_found" && id_of(e).as_deref() == Some("missing-2"))
        .unwrap_or_else(|| panic!("the error is logged: {lines:#?}"));
    assert_eq!(id_of(error).as_deref(), Some("missing-2"), "{error}");
    assert!(
        events
            .iter()
            .any(|e| e["fields"]["code"] == "not_found" && id_of(e).as_deref() == Some("ws-3")),
        "the WebSocket's error carries its upgrade's id: {lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("password") || l.contains("pa55word") || l.contains("Basic ")),
        "no secret: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_on_sighup_and_on_file_change_and_a_broken_file_changes_nothing() {
    let registry = Registry::start(Mode::Open);
    Pusher::new(&registry.url(), None)
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("clouddriver.yml");
    let account = |name: &str| format!("  - {{name: {name}, address: \"{}\"}}\n", registry.url());
    std::fs::write(
        &cfg,
        format!("dockerRegistry:\n  accounts:\n{}", account("first")),
    )
    .unwrap();
    let mut server = Server::start(&cfg, &[]).await;
    assert_eq!(server.get("/first/team/app/v1/labels").await.0, 200);
    assert_eq!(server.get("/second/team/app/v1/labels").await.0, 404);

    // A new account by SIGHUP.
    std::fs::write(
        &cfg,
        format!(
            "dockerRegistry:\n  accounts:\n{}{}",
            account("first"),
            account("second")
        ),
    )
    .unwrap();
    server.signal("-HUP");
    server.wait_for("configuration reloaded").await;
    assert_eq!(
        server.get("/second/team/app/v1/labels").await.0,
        200,
        "answers without a restart"
    );

    // A broken file: one clear error, the old configuration keeps serving.
    std::fs::write(&cfg, "dockerRegistry:\n  accounts:\n  - {name: second}\n").unwrap();
    server.signal("-HUP");
    let line = server.wait_for("configuration not reloaded").await;
    assert!(line.contains("address: missing"), "{line}");
    assert_eq!(server.get("/second/team/app/v1/labels").await.0, 200);
    assert_eq!(server.get("/first/team/app/v1/labels").await.0, 200);

    // A changed file is noticed without a signal.
    std::fs::write(
        &cfg,
        format!("dockerRegistry:\n  accounts:\n{}", account("third")),
    )
    .unwrap();
    server
        .wait_for("configuration reloaded (a configuration file changed)")
        .await;
    assert_eq!(server.get("/third/team/app/v1/labels").await.0, 200);
    assert_eq!(
        server.get("/first/team/app/v1/labels").await.0,
        404,
        "removed accounts are gone"
    );
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains("dimsum_config_reloads_total{result=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dimsum_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_completions_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(
        &cfg,
        "dockerRegistry:\n  accounts:\n  - {name: a, address: \"https://r.example\", username: u, password: hunter2-secret}\n  - {name: b, address: r2.example, passwordCommand: \"echo x\"}\n",
    )
    .unwrap();
    let out = dimsum(Some(&cfg), &["config", "check"], None).await;
    let text = out.ok();
    assert!(
        text.contains("configuration is valid: 2 accounts"),
        "{text}"
    );
    assert!(
        text.contains("a: https://r.example/ user=u password=password <redacted>"),
        "{text}"
    );
    assert!(text.contains("b: https://r2.example/"), "{text}");
    assert!(
        !text.contains("hunter2-secret") && !text.contains("echo x"),
        "secrets redacted: {text}"
    );
    std::fs::write(&cfg, "dockerRegistry:\n  accounts:\n  - {name: a}\n").unwrap();
    let out = dimsum(Some(&cfg), &["config", "check"], None).await;
    out.fails(3, "address: missing");
    for shell in ["bash", "zsh", "fish"] {
        let out = dimsum(None, &["completions", shell], None).await;
        assert!(out.ok().contains("history"), "{shell}");
    }
    let out = dimsum(None, &["--version"], None).await;
    assert_eq!(
        out.ok().trim(),
        format!("dimsum {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_the_api_token() {
    let registry = Registry::start(Mode::Open);
    Pusher::new(&registry.url(), None)
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "first-token-first-token\n").unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(
        &cfg,
        format!("dimsum:\n  auth:\n    tokenFile: {}\ndockerRegistry:\n  accounts:\n  - {{name: local, address: \"{}\"}}\n", token_file.display(), registry.url()),
    )
    .unwrap();
    let mut server = Server::start(&cfg, &[]).await;
    let get = |addr: String, token: &'static str| async move {
        let r = http()
            .get(format!("http://{addr}/local/team/app/v1/labels"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    };
    assert_eq!(
        get(server.addr.clone(), "first-token-first-token").await,
        200
    );
    std::fs::write(&token_file, "second-token-second-token\n").unwrap();
    server.signal("-HUP");
    server.wait_for("configuration reloaded").await;
    assert_eq!(
        get(server.addr.clone(), "first-token-first-token").await,
        401
    );
    assert_eq!(
        get(server.addr.clone(), "second-token-second-token").await,
        200
    );
}

/// On stdio each line is a request of its own in the log: an error names `stdio-<line>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_errors_carry_their_line_as_request_id() {
    use tokio::io::AsyncWriteExt as _;
    let (_registry, _dir, cfg) = crate::harness::open_world().await;
    let mut child =
        crate::harness::run::stdio_child(&cfg, &["--log-format", "json", "--log-level", "info"]);
    let mut stdin = child.stdin.take().unwrap();
    let lines = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"getLabels","params":["local","team/app","v1"]}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"getLabels","params":["local","team/app","nope"]}"#,
        "\n"
    );
    stdin.write_all(lines.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|_| panic!("{l}")))
        .find(|e| e["fields"]["code"] == "not_found")
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(error["span"]["request_id"], "stdio-2", "{error}");
}
