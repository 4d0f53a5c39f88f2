//! The three transports over real sockets and pipes: the same bytes everywhere, every error code
//! with its HTTP status, stdio as a child process, and a client not written in Rust.

use std::path::PathBuf;

use dimsum_rest::Code;
use jsonrpsee::core::client::ClientT as _;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::harness::fault::{Fault, FaultServer};
use crate::harness::images::{LIST, OCI, Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{config, dimsum, stdio};
use crate::harness::server::Served;

/// A registry with images, fault servers for what it cannot do, and a config naming them all.
struct World {
    _registry: Registry,
    _faults: Vec<FaultServer>,
    _dir: tempfile::TempDir,
    config: PathBuf,
    digest: String,
    manifest: Vec<u8>,
}

async fn world() -> World {
    let registry = Registry::start(Mode::Open);
    let pusher = Pusher::new(&registry.url(), None);
    let (manifest, digest) = pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    pusher
        .image("team/app", "v1-oci", OCI, VA, &[VA_LAYER])
        .await;
    pusher.image("solo", "v1", SCHEMA2, VA, &[VA_LAYER]).await;
    let entry = json!({"mediaType": SCHEMA2, "size": manifest.len(), "digest": digest, "platform": {"os": "linux", "architecture": "amd64"}});
    let list =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": LIST, "manifests": [entry]}))
            .unwrap();
    pusher.manifest("team/app", "multi", LIST, &list).await;
    pusher
        .image(
            "team/app",
            "no-history",
            SCHEMA2,
            br#"{"rootfs":{"diff_ids":["x"]}}"#,
            &[b"l"],
        )
        .await;
    pusher
        .image_typed(
            "team/app",
            "chart",
            OCI,
            "application/vnd.cncf.helm.config.v1+json",
            "application/tar",
            b"{}",
            &[b"c"],
        )
        .await;
    let anonymous = FaultServer::start(Fault::None).await;
    let limited = FaultServer::start(Fault::Burst(429, usize::MAX)).await;
    let liar = FaultServer::start(Fault::WrongDigestHeader).await;
    let silent = FaultServer::start(Fault::Silence).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let creds = "username: u, password: p";
    let accounts = [
        format!("{{name: local, address: \"{}\"}}", registry.url()),
        format!("{{name: anonymous, address: \"{}\"}}", anonymous.url),
        format!("{{name: limited, address: \"{}\", {creds}}}", limited.url),
        format!("{{name: liar, address: \"{}\", {creds}}}", liar.url),
        format!(
            "{{name: silent, address: \"{}\", {creds}, clientTimeoutMillis: 300}}",
            silent.url
        ),
        format!("{{name: down, address: \"http://127.0.0.1:{closed}\"}}"),
        format!(
            "{{name: sealed, address: \"http://127.0.0.1:{closed}\", username: u, password: \"encrypted:vault!e:secret!k:pw\"}}"
        ),
    ];
    let yaml = format!(
        "dimsum:\n  retries: 0\ndockerRegistry:\n  accounts:\n  - {}\n",
        accounts.join("\n  - ")
    );
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &yaml);
    World {
        _registry: registry,
        _faults: vec![anonymous, limited, liar, silent],
        _dir: dir,
        config,
        digest,
        manifest,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str) -> (u16, Option<String>, reqwest::header::HeaderMap, Vec<u8>) {
    let r = http().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let ctype = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, ctype, headers, r.bytes().await.unwrap().to_vec())
}

/// The raw `result` of a JSON-RPC reply line, byte for byte.
fn raw_result(reply: &str) -> String {
    #[derive(serde::Deserialize)]
    struct R<'a> {
        #[serde(borrow)]
        result: &'a RawValue,
    }
    serde_json::from_str::<R<'_>>(reply)
        .unwrap()
        .result
        .get()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_gives_the_same_bytes() {
    let w = world().await;
    let server = Served::start(&w.config);
    let http_client = HttpClientBuilder::default().build(&server.url).unwrap();
    let ws_client = WsClientBuilder::default()
        .build(server.ws_url())
        .await
        .unwrap();
    for (repo, reference) in [
        ("team/app", "v1"),
        ("team/app", "v1-oci"),
        ("solo", "v1"),
        ("team/app", w.digest.as_str()),
        ("team/app", "multi"),
    ] {
        let cli_level0 = dimsum(
            Some(&w.config),
            &["history", "local", repo, reference, "--level", "0"],
            None,
        )
        .await
        .ok();
        let cli_list = dimsum(
            Some(&w.config),
            &["history", "local", repo, reference],
            None,
        )
        .await
        .ok();
        let cli_labels = dimsum(Some(&w.config), &["labels", "local", repo, reference], None)
            .await
            .ok();

        let (status, ctype, _, body) = get(&format!(
            "{}/local/{repo}/{reference}/history?level=0",
            server.url
        ))
        .await;
        assert_eq!((status, ctype.as_deref()), (200, Some("application/json")));
        assert_eq!(
            String::from_utf8(body).unwrap(),
            cli_level0,
            "REST level 0 {repo} {reference}"
        );
        let (_, _, _, body) =
            get(&format!("{}/local/{repo}/{reference}/history", server.url)).await;
        assert_eq!(String::from_utf8(body).unwrap(), cli_list, "REST list");
        let (_, _, _, body) = get(&format!("{}/local/{repo}/{reference}/labels", server.url)).await;
        assert_eq!(String::from_utf8(body).unwrap(), cli_labels, "REST labels");

        let mut named = ObjectParams::new();
        named.insert("account", "local").unwrap();
        named.insert("repository", repo).unwrap();
        named.insert("tag", reference).unwrap();
        named.insert("level", 0).unwrap();
        let by_name: Box<RawValue> = http_client.request("getHistory", named).await.unwrap();
        assert_eq!(
            by_name.get(),
            cli_level0,
            "JSON-RPC over HTTP, by name with the tag alias"
        );
        let by_position: Box<RawValue> = ws_client
            .request("getHistory", rpc_params!["local", repo, reference, 0])
            .await
            .unwrap();
        assert_eq!(
            by_position.get(),
            cli_level0,
            "JSON-RPC over WebSocket, by position"
        );
        let list: Box<RawValue> = ws_client
            .request("getHistory", rpc_params!["local", repo, reference])
            .await
            .unwrap();
        assert_eq!(format!("{}\n", list.get()), cli_list);
        let labels: Box<RawValue> = http_client
            .request("getLabels", rpc_params!["local", repo, reference])
            .await
            .unwrap();
        assert_eq!(labels.get(), cli_labels);

        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "getHistory", "params": {"account": "local", "repository": repo, "reference": reference, "level": 0}});
        let (replies, code) = stdio(&w.config, &[request.to_string()]).await;
        assert_eq!(code, 0);
        assert_eq!(
            raw_result(&replies[0].to_string()),
            serde_json::to_string(&serde_json::from_str::<Value>(&cli_level0).unwrap()).unwrap()
        );
    }
    // The manifest route returns the manifest itself with its digest.
    let (status, ctype, headers, body) =
        get(&format!("{}/local/team/app/v1/metadata", server.url)).await;
    assert_eq!((status, ctype.as_deref()), (200, Some("application/json")));
    assert_eq!(body, w.manifest);
    assert_eq!(headers["docker-content-digest"], w.digest.as_str());
    let (_, _, _, alias) = get(&format!("{}/local/team/app/v1/manifest", server.url)).await;
    assert_eq!(alias, w.manifest);
    let m: Value = http_client
        .request("getManifest", rpc_params!["local", "team/app", "v1"])
        .await
        .unwrap();
    assert_eq!(m["digest"], w.digest.as_str());
    assert_eq!(m["mediaType"], SCHEMA2);
    assert_eq!(
        m["manifest"],
        serde_json::from_slice::<Value>(&w.manifest).unwrap()
    );
    let discover: Value = ws_client
        .request("rpc.discover", rpc_params![])
        .await
        .unwrap();
    assert_eq!(discover["openrpc"], "1.2.6");
    // HEAD and POST (Orca's default method) work on REST routes too.
    let head = http()
        .head(format!("{}/local/team/app/v1/history?level=0", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let post = http()
        .post(format!("{}/local/team/app/v1/labels", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_has_its_status_over_rest_and_json_rpc() {
    let w = world().await;
    let server = Served::start(&w.config);
    let client = HttpClientBuilder::default().build(&server.url).unwrap();
    let cases: [(&str, Code); 13] = [
        ("local/Team/App/v1/history", Code::InvalidReference),
        ("nosuch/team/app/v1/history", Code::UnknownAccount),
        ("local/team/app/v9/history", Code::NotFound),
        ("local/team/app/v1/history?level=2", Code::LevelOutOfRange),
        (
            "local/team/app/multi/history?platform=linux/s390x",
            Code::NoMatchingPlatform,
        ),
        ("local/team/app/chart/history", Code::UnsupportedManifest),
        (
            "local/team/app/no-history/history?strict=true",
            Code::HistoryUnconvertible,
        ),
        ("anonymous/fault/app/v1/history", Code::RegistryDenied),
        ("limited/fault/app/v1/history", Code::RegistryRateLimited),
        ("down/team/app/v1/history", Code::RegistryUnavailable),
        ("liar/fault/app/v1/history", Code::RegistryBadResponse),
        ("sealed/team/app/v1/history", Code::AccountUnusable),
        ("silent/fault/app/v1/history", Code::UpstreamTimeout),
    ];
    for (path, code) in cases {
        let (status, ctype, headers, body) = get(&format!("{}/{path}", server.url)).await;
        assert_eq!(
            status,
            code.http_status(),
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(ctype.as_deref(), Some("application/json"), "{path}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], code.number(), "{path}");
        assert_eq!(body["error"]["data"]["name"], code.name());
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        if code == Code::RegistryRateLimited {
            assert_eq!(headers["retry-after"], "1");
            assert_eq!(body["error"]["data"]["retryAfter"], 1);
        }
        // The same through JSON-RPC.
        let mut parts: Vec<&str> = path.split('?').next().unwrap().split('/').collect();
        parts.pop();
        let reference = parts.pop().unwrap();
        let account = parts.remove(0);
        let mut params = ObjectParams::new();
        params.insert("account", account).unwrap();
        params.insert("repository", parts.join("/")).unwrap();
        params.insert("reference", reference).unwrap();
        if let Some(q) = path.split_once('?').map(|(_, q)| q) {
            let (k, v) = q.split_once('=').unwrap();
            match k {
                "level" => params.insert("level", v.parse::<u64>().unwrap()).unwrap(),
                "strict" => params.insert("strict", true).unwrap(),
                _ => params.insert(k, v).unwrap(),
            }
        }
        match client.request::<Value, _>("getHistory", params).await {
            Err(jsonrpsee::core::client::Error::Call(e)) => {
                assert_eq!(e.code(), code.number(), "{path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    // Malformed levels, unknown routes and methods: JSON answers, never a dropped connection.
    for (path, status, code) in [
        ("local/team/app/v1/history?level=abc", 400, -32602),
        ("local/team/app/v1/history?level=-1", 400, -32602),
        (
            "local/team/app/v1/history?level=99999999999999999999",
            400,
            -32602,
        ),
        ("local/team/app/v1/nothing", 404, -32601),
        ("healthz/x", 404, -32601),
        ("local/te%zzam/v1/history", 400, -32602),
    ] {
        let (s, ctype, _, body) = get(&format!("{}/{path}", server.url)).await;
        assert_eq!(
            (s, ctype.as_deref()),
            (status, Some("application/json")),
            "{path}"
        );
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    let put = http()
        .put(format!("{}/local/team/app/v1/history", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    let garbage = http()
        .post(&server.url)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&garbage.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], -32700);
    let (status, _, _, body) = get(&format!("{}/healthz", server.url)).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &br#"{"status":"ok"}"#[..]),
        "still serving"
    );
    let (status, _, _, _) = get(&format!("{}/readyz", server.url)).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_speaks_json_rpc_per_spec_and_exits_at_eof() {
    let w = world().await;
    let lines = [
        r#"{"jsonrpc":"2.0","id":1,"method":"getLabels","params":["local","team/app","v1"]}"#,
        r#"[{"jsonrpc":"2.0","id":2,"method":"getHistory","params":{"account":"local","repository":"solo","tag":"v1","level":1}},{"jsonrpc":"2.0","method":"getLabels","params":["local","solo","v1"]},{"jsonrpc":"2.0","id":3,"method":"getHistory","params":["nosuch","a","b"]}]"#,
        r#"{"jsonrpc":"2.0","method":"getLabels","params":["local","solo","v1"]}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"getManifest","params":["local","team/app","v1"]}"#,
        "{broken",
        r#"{"jsonrpc":"2.0","id":5}"#,
    ];
    let (replies, code) = stdio(&w.config, &lines.map(str::to_owned)).await;
    assert_eq!(code, 0, "EOF ends the transport cleanly");
    assert_eq!(replies.len(), 5, "notifications get no reply: {replies:?}");
    let by_id = |id: Value| replies.iter().find(|r| r["id"] == id).cloned();
    assert_eq!(by_id(json!(1)).unwrap()["result"]["revision"], "abc123");
    let batch = replies
        .iter()
        .find(|r| r.is_array())
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch[0]["result"]["throwaway"] == true, "{batch:?}");
    assert_eq!(batch[1]["error"]["code"], Code::UnknownAccount.number());
    assert_eq!(
        by_id(json!(4)).unwrap()["result"]["digest"],
        w.digest.as_str()
    );
    assert!(
        replies
            .iter()
            .any(|r| r["error"]["code"] == -32700 && r["id"].is_null())
    );
    assert!(by_id(json!(5)).unwrap()["error"]["code"] == -32600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_standard_library_client_sees_the_same_wire() {
    crate::harness::require("python3", "python3");
    let w = world().await;
    let server = Served::start(&w.config);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/client.py");
    let out = tokio::process::Command::new("python3")
        .args([
            script,
            &server.url,
            env!("CARGO_BIN_EXE_dimsum"),
            w.config.to_str().unwrap(),
            "local",
            "team/app",
            "v1",
        ])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli_level0 = dimsum(
        Some(&w.config),
        &["history", "local", "team/app", "v1", "--level", "0"],
        None,
    )
    .await
    .ok();
    let cli_labels = dimsum(
        Some(&w.config),
        &["labels", "local", "team/app", "v1"],
        None,
    )
    .await
    .ok();
    assert_eq!(
        seen["rest_level0"],
        json!({"status": 200, "contentType": "application/json", "body": cli_level0})
    );
    assert_eq!(seen["rest_labels"]["body"], cli_labels.as_str());
    assert_eq!(seen["rest_missing"]["status"], 404);
    assert_eq!(
        seen["rest_missing"]["body"]["error"]["code"],
        Code::NotFound.number()
    );
    let level0: Value = serde_json::from_str(&cli_level0).unwrap();
    assert_eq!(
        seen["rpc_level0"],
        json!({"jsonrpc": "2.0", "id": 7, "result": level0})
    );
    assert_eq!(seen["rpc_labels"]["result"]["revision"], "abc123");
    assert_eq!(seen["stdio_exit"], 0);
    let stdio = seen["stdio"].as_array().unwrap();
    assert_eq!(
        stdio.len(),
        3,
        "two answers and a parse error; the notification is silent: {stdio:?}"
    );
    assert_eq!(stdio[0]["result"], level0);
    assert_eq!(stdio[1]["id"], Value::Null);
    assert_eq!(stdio[1]["error"]["code"], -32700);
    assert_eq!(stdio[2]["id"], "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orca_stage_urls_are_answered() {
    let w = world().await;
    let server = Served::start(&w.config);
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plugin/orca/preconfigured-webhooks.yml"
    ))
    .unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    // Without a digest (Orca's Elvis gives ''), and with the one trackDigests puts there.
    for digest in ["", w.digest.as_str()] {
        let trigger = [
            ("account", "local"),
            ("repository", "team/app"),
            ("tag", "v1"),
            ("digest", digest),
        ];
        for entry in doc["webhook"]["preconfigured"].as_sequence().unwrap() {
            let mut url = entry["url"].as_str().unwrap().to_owned();
            for p in entry["parameters"].as_sequence().unwrap() {
                let mut value = p["defaultValue"].as_str().unwrap().to_owned();
                for (k, v) in trigger {
                    value = value.replace(&format!("${{trigger['{k}']}}"), v);
                    value = value.replace(&format!("${{trigger['{k}'] ?: ''}}"), v);
                }
                url = url.replace(
                    &format!("${{parameterValues['{}']}}", p["name"].as_str().unwrap()),
                    &value,
                );
            }
            assert!(!url.contains("${"), "{url}");
            answered_like_the_stage(&server, &url, entry["type"].as_str().unwrap()).await;
        }
    }
}

/// Calls an Orca stage's URL on `server` and reads the label the SpEL in docs/spinnaker.md reads.
async fn answered_like_the_stage(server: &Served, url: &str, stage: &str) {
    // Point the stage's host at the test server.
    let path = &url[url.find("://").unwrap() + 3..];
    let url = format!("{}{}", server.url, &path[path.find('/').unwrap()..]);
    let r = http()
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    // What the SpEL in docs/spinnaker.md reads: …['webhook']['body']['config']['Labels']['revision'].
    let revision = match stage {
        "dimsum" => &body["config"]["Labels"]["revision"],
        // Dimsum origin: ${#stage('Dimsum origin')['context']['webhook']['body']['revision']}.
        _ => &body["revision"],
    };
    assert_eq!(revision, "abc123", "{url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_command_listens_and_stops_on_sigterm() {
    let w = world().await;
    let (mut child, addr) = crate::harness::run::serve_process(&w.config).await;
    let (status, _, _, body) = get(&format!("http://{addr}/local/team/app/v1/labels")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("abc123"));
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let exit = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}
