//! Hostile input, failing registries, secrets that never leak, and the locked API.

use std::path::Path;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::harness::fault::{Fault, FaultServer};
use crate::harness::images::{Pusher, SCHEMA2};
use crate::harness::images::{VA, VA_LAYER};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::{account_yaml, config, dimsum};
use crate::harness::server::Served;
use crate::harness::token::Issuer;

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn body_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = r.bytes().await.unwrap();
    assert_eq!(
        ctype.as_deref(),
        Some("application/json"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A GET sent byte for byte: HTTP clients normalise `..` and `%2e%2e` away before sending.
async fn raw_get(base: &str, path: &str) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut response)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{path}: {head}"
    );
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_corpus() {
    let (_registry, dir, cfg) = crate::harness::open_world().await;
    let server = Served::start(&cfg);
    let long_repo = format!("team/{}", "a".repeat(300));
    let long_tag = "t".repeat(129);
    let long_platform = format!("linux/{}", "x".repeat(10_000));
    let mut checked = 0;

    // REST: path and query → status, code, and words of the message.
    let rest: Vec<(String, u16, i64, &str)> = vec![
        (
            "/local/Team/app/v1/history".into(),
            400,
            1001,
            "invalid repository name",
        ),
        (
            "/local/team/app/v1/history?level=abc".into(),
            400,
            -32602,
            "nvalid",
        ),
        (
            "/local/team/app/v1/history?level=-1".into(),
            400,
            -32602,
            "nvalid",
        ),
        (
            "/local/team/app/v1/history?level=1e3".into(),
            400,
            -32602,
            "nvalid",
        ),
        (
            "/local/team/app/v1/history?level=99999999999999999999".into(),
            400,
            -32602,
            "nvalid",
        ),
        (
            "/local/team/app/v1/history?level=5".into(),
            404,
            1004,
            "out of range",
        ),
        (
            "/local/team%2Fapp/v1/history".into(),
            400,
            -32602,
            "encoded '/'",
        ),
        (
            "/local/team/../app/v1/history".into(),
            400,
            1001,
            "invalid repository name",
        ),
        (
            "/local/team/.../v1/history".into(),
            400,
            1001,
            "invalid repository name",
        ),
        (
            "/local/team/%2e%2e/v1/history".into(),
            400,
            1001,
            "invalid repository name",
        ),
        (
            format!("/local/{long_repo}/v1/history"),
            400,
            1001,
            "at most 255 characters",
        ),
        (
            format!("/local/team/app/{long_tag}/history"),
            400,
            1001,
            "invalid reference",
        ),
        (
            "/local/team/app/v1$/history".into(),
            400,
            1001,
            "invalid reference",
        ),
        (
            "/local/team/app/sha256:xyz/history".into(),
            400,
            1001,
            "invalid reference",
        ),
        (
            "/local/team/app/md5:00/history".into(),
            400,
            1001,
            "invalid reference",
        ),
        (
            "/local/team/app/v1/history?platform=linux".into(),
            400,
            1001,
            "invalid platform",
        ),
        (
            "/local/team/app/v1/history?platform=linux/amd64/v1/x".into(),
            400,
            1001,
            "invalid platform",
        ),
        (
            "/local/team/app/v1/history?platform=linux/am%20d64".into(),
            400,
            1001,
            "invalid platform",
        ),
        (
            format!("/local/team/app/v1/labels?platform={long_platform}"),
            400,
            1001,
            "invalid platform",
        ),
        (
            "/nosuch/team/app/v1/history".into(),
            404,
            1002,
            "unknown account",
        ),
        ("//team/app/v1/history".into(), 404, 1002, "unknown account"),
        ("/local/team/app/v1/%ff".into(), 404, -32601, "no route"),
        (
            "/local/team/app/%ff/history".into(),
            400,
            -32602,
            "malformed",
        ),
        (
            "/local/team/app/%zz/history".into(),
            400,
            -32602,
            "malformed",
        ),
        ("/local/team/app/v1/foo".into(), 404, -32601, "no route"),
        ("/local/app/history".into(), 404, -32601, "no route"),
        (
            "/local/team/app/nope/metadata".into(),
            404,
            1003,
            "not found",
        ),
        (
            "/local/team/app//labels".into(),
            400,
            1001,
            "invalid reference",
        ),
    ];
    for (path, status, code, needle) in &rest {
        let (s, body) = raw_get(&server.url, path).await;
        assert_eq!(
            (s, body["error"]["code"].as_i64().unwrap()),
            (*status, *code),
            "{path}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{path}: {message:?} lacks {needle:?}"
        );
        checked += 1;
    }
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        let r = http()
            .request(
                method.clone(),
                format!("{}/local/team/app/v1/history", server.url),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(body_of(r).await.0, 405, "{method}");
        checked += 1;
    }

    // JSON-RPC over HTTP: raw bodies → code.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let call = |params: Value| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "getHistory", "params": params}).to_string()
    };
    let rpc: Vec<(String, i64)> = vec![
        ("{".into(), -32700),
        ("[]".into(), -32600),
        (r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#.into(), -32601),
        (call(json!("local")), -32602),
        (call(json!({"repository": "team/app", "reference": "v1"})), -32602),
        (call(json!({"account": 1, "repository": "team/app", "reference": "v1"})), -32602),
        (call(json!({"account": "local", "repository": "team/app", "reference": "v1", "level": "0"})), -32602),
        (call(json!({"account": "local", "repository": "team/app", "reference": "v1", "level": -1})), -32602),
        (r#"{"jsonrpc":"2.0","id":1,"method":"getHistory","params":{"account":"local","repository":"team/app","reference":"v1","level":18446744073709551616}}"#.into(), -32602),
        (call(json!({"account": "local", "repository": "team/app", "reference": "v1", "strict": "yes"})), -32602),
        (call(json!({"account": "local", "repository": "TEAM", "reference": "v1"})), 1001),
        (call(json!({"account": "local", "repository": "team/app", "reference": "v1", "tag": "v1"})), 1001),
        (call(json!({"account": "local", "repository": "team/app"})), 1001),
        (call(json!([1, 2])), -32602),
        (format!(r#"{{"jsonrpc":"2.0","id":1,"method":"getHistory","params":{deep}}}"#), -32602),
        (r#"{"jsonrpc":"1.0","id":1,"method":"getHistory"}"#.into(), -32600),
    ];
    for (body, code) in &rpc {
        let r = http()
            .post(&server.url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let bytes = r.bytes().await.unwrap();
        let v: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{body:.80}: {}", String::from_utf8_lossy(&bytes)));
        let got = v["error"]["code"]
            .as_i64()
            .or_else(|| v[0]["error"]["code"].as_i64());
        assert_eq!(got, Some(*code), "{body:.120}: {v}");
        checked += 1;
    }
    let huge = call(
        json!({"account": "local", "repository": "x".repeat(2 * 1024 * 1024), "reference": "v1"}),
    );
    let r = http()
        .post(&server.url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "bodies over 1 MiB are refused");
    checked += 1;

    // stdio: lines → code.
    let lines = [
        ("garbage".to_owned(), -32700),
        ("[]".to_owned(), -32600),
        (r#"{"jsonrpc":"2.0","id":1}"#.to_owned(), -32600),
        (
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"getLabels","params":["{}"]}}"#,
                "x".repeat(2 * 1024 * 1024)
            ),
            -32600,
        ),
        (
            call(json!({"account": "local", "repository": "TEAM", "reference": "v1"})),
            1001,
        ),
        (
            call(
                json!({"account": "local", "repository": "team/app", "reference": "v1", "level": "x"}),
            ),
            -32602,
        ),
    ];
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
        .arg("--config")
        .arg(&cfg)
        .arg("stdio")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for (line, code) in &lines {
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        let reply = tokio::time::timeout(std::time::Duration::from_secs(30), out.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(v["error"]["code"], *code, "{line:.80}: {v}");
        checked += 1;
    }
    // Still serving on the same pipe.
    stdin.write_all(call(json!({"account": "local", "repository": "team/app", "reference": "v1", "level": 0})).as_bytes()).await.unwrap();
    stdin.write_all(b"\n").await.unwrap();
    let reply = out.next_line().await.unwrap().unwrap();
    assert!(reply.contains("abc123"));
    drop(stdin);
    assert!(child.wait().await.unwrap().success());

    // CLI: arguments → exit status.
    let cli: Vec<(Vec<&str>, i32)> = vec![
        (vec!["history", "local", "Team/App", "v1"], 2),
        (
            vec!["history", "local", "team/app", "v1", "--level", "-1"],
            2,
        ),
        (
            vec!["history", "local", "team/app", "v1", "--level", "abc"],
            2,
        ),
        (
            vec!["history", "local", "team/app", "v1", "--platform", "x"],
            2,
        ),
        (vec!["history", "local", "team/app", "sha256:zz"], 2),
        (vec!["frobnicate"], 2),
        (vec!["history", "local"], 2),
        (vec!["labels", "nosuch", "team/app", "v1"], 3),
    ];
    for (args, code) in &cli {
        let out = dimsum(Some(&cfg), args, None).await;
        assert_eq!(out.code, *code, "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"));
        checked += 1;
    }

    // Configuration files → exit 3 with the problem named.
    let short_token = dir.path().join("short-token");
    std::fs::write(&short_token, "abc\n").unwrap();
    let configs: Vec<(String, &str)> = vec![
        ("dockerRegistry: [1".into(), "not valid YAML"),
        ("- a\n- b\n".into(), "top level must be a mapping"),
        ("dimsum:\n  cacheSize: 1\n".into(), "dimsum.cacheSize: unknown key"),
        ("dimsum:\n  cache:\n    ttl: 1\n".into(), "unknown field `ttl`"),
        ("dockerRegistry:\n  accounts: 7\n".into(), "must be a list"),
        ("dockerRegistry:\n  accounts:\n  - {name: a, address: h}\n  - {name: a, address: h}\n".into(), "defined twice"),
        ("dockerRegistry:\n  accounts:\n  - {name: a}\n".into(), "address: missing"),
        ("dockerRegistry:\n  accounts:\n  - {address: h}\n".into(), "name: missing"),
        ("dockerRegistry:\n  accounts:\n  - {name: a, address: \"ftp://h\"}\n".into(), "not http or https"),
        ("dockerRegistry:\n  accounts:\n  - {name: a, address: \"https://u:p@h\"}\n".into(), "credentials belong in username/password"),
        ("dockerRegistry:\n  accounts:\n  - {name: a, address: h, password: x, passwordFile: /x}\n".into(), "at most one password source"),
        ("dockerRegistry:\n  accounts:\n  - {name: a, address: h, clientTimeoutMillis: soon}\n".into(), "non-negative integer"),
        (format!("dimsum:\n  auth:\n    tokenFile: {}\n", short_token.display()), "at least 16 characters"),
        ("dockerRegistry:\n  accounts:\n  - {name: a, address: \"${DIMSUM_TEST_UNSET_VARIABLE}\"}\n".into(), "is not set"),
    ];
    for (yaml, needle) in &configs {
        let path = config(dir.path(), yaml);
        let out = dimsum(Some(&path), &["history", "a", "team/app", "v1"], None).await;
        assert_eq!(out.code, 3, "{yaml}: {}", out.stderr);
        assert!(
            out.stderr.contains(needle),
            "{yaml}: {:?} lacks {needle:?}",
            out.stderr
        );
        checked += 1;
    }

    assert!(checked >= 60, "the corpus has {checked} bad inputs");
    let (status, _) = body_of(
        http()
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "the server still answers");
    let r = http()
        .get(format!("{}/local/team/app/v1/labels", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_file_every_route_and_method_needs_the_token() {
    let (_registry, dir, _) = crate::harness::open_world().await;
    let token = "an-api-token-of-some-length";
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let yaml = format!(
        "dimsum:\n  auth:\n    tokenFile: {}\n{}",
        token_file.display(),
        account_yaml("local", &_registry.url(), "")
            .replacen("dimsum:\n", "", 1)
            .replacen("  retries: 1\n  callTimeoutMillis: 10000\n", "", 1)
    );
    let cfg = config(dir.path(), &yaml);
    let server = Served::start(&cfg);
    let requests: Vec<(reqwest::Method, String, Option<String>)> = vec![
        (reqwest::Method::GET, "/local/team/app/v1/history?level=0".into(), None),
        (reqwest::Method::GET, "/local/team/app/v1/history".into(), None),
        (reqwest::Method::GET, "/local/team/app/v1/metadata".into(), None),
        (reqwest::Method::GET, "/local/team/app/v1/manifest".into(), None),
        (reqwest::Method::GET, "/local/team/app/v1/labels".into(), None),
        (reqwest::Method::HEAD, "/local/team/app/v1/labels".into(), None),
        (reqwest::Method::POST, "/local/team/app/v1/labels".into(), None),
        (reqwest::Method::GET, "/unknown".into(), None),
        (reqwest::Method::POST, "/".into(), Some(r#"{"jsonrpc":"2.0","id":1,"method":"getLabels","params":["local","team/app","v1"]}"#.into())),
        (reqwest::Method::POST, "/".into(), Some(r#"{"jsonrpc":"2.0","id":1,"method":"getHistory","params":["local","team/app","v1",0]}"#.into())),
        (reqwest::Method::POST, "/".into(), Some(r#"{"jsonrpc":"2.0","id":1,"method":"getManifest","params":["local","team/app","v1"]}"#.into())),
        (reqwest::Method::POST, "/".into(), Some(r#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#.into())),
    ];
    for (method, path, body) in &requests {
        for auth in [
            None,
            Some("Bearer wrong-token-wrong-token"),
            Some(token),
            Some("Bearer "),
        ] {
            let mut req = http()
                .request(method.clone(), format!("{}{path}", server.url))
                .header("content-type", "application/json");
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            if let Some(b) = body {
                req = req.body(b.clone());
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {auth:?}");
            assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"dimsum\"");
        }
        let mut req = http()
            .request(method.clone(), format!("{}{path}", server.url))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        if let Some(b) = body {
            req = req.body(b.clone());
        }
        let r = req.send().await.unwrap();
        let want = if path == "/unknown" { 404 } else { 200 };
        assert_eq!(r.status(), want, "{method} {path} with the token");
    }
    // WebSocket upgrades need it too.
    use jsonrpsee::core::client::ClientT as _;
    assert!(
        jsonrpsee::ws_client::WsClientBuilder::default()
            .build(server.ws_url())
            .await
            .is_err()
    );
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let ws = jsonrpsee::ws_client::WsClientBuilder::default()
        .set_headers(headers)
        .build(server.ws_url())
        .await
        .unwrap();
    let labels: Value = ws
        .request(
            "getLabels",
            jsonrpsee::rpc_params!["local", "team/app", "v1"],
        )
        .await
        .unwrap();
    assert_eq!(labels["revision"], "abc123");
    // Health endpoints are exempt.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            http()
                .get(format!("{}{path}", server.url))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_faults_get_the_right_error_and_nothing_wrong_is_cached() {
    let cases: [(Fault, &str, i32, &str); 5] = [
        (Fault::Truncated, "", 6, "reading body"),
        (
            Fault::Drip,
            "    clientTimeoutMillis: 500\n",
            6,
            "no answer within 500ms",
        ),
        (Fault::RedirectLoop, "", 6, "too many redirects"),
        (Fault::TokenGarbage, "", 6, "token response is not JSON"),
        (Fault::TokenDown, "", 6, "registry unavailable: HTTP 503"),
    ];
    for (fault, extra, code, needle) in cases {
        let server = FaultServer::start(fault.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            &account_yaml(
                "f",
                &server.url,
                &format!("    username: u\n    password: p\n{extra}"),
            ),
        );
        let failing = Served::start(&cfg);
        let (status, body) = body_of(
            http()
                .get(format!("{}/f/fault/app/v1/history?level=0", failing.url))
                .send()
                .await
                .unwrap(),
        )
        .await;
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{fault:?}: {status} {body}"));
        assert!(message.contains(needle), "{fault:?}: {body}");
        assert!(matches!(status, 502 | 503), "{fault:?}: {status}");
        let out = dimsum(Some(&cfg), &["history", "f", "fault/app", "v1"], None).await;
        out.fails(code, needle);
        // The registry recovers: the same server answers at once, nothing bad was cached.
        *server.state.fault.lock().unwrap() = Fault::None;
        let r = http()
            .get(format!("{}/f/fault/app/v1/history?level=0", failing.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{fault:?}: recovered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restart_is_an_outage_then_a_full_recovery() {
    let (mut registry, _dir, cfg) = crate::harness::open_world().await;
    let pusher = Pusher::new(&registry.url(), None);
    pusher
        .image("team/app", "later", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let server = Served::start(&cfg);
    let get = |path: &str| http().get(format!("{}{path}", server.url)).send();
    assert_eq!(
        get("/local/team/app/v1/labels").await.unwrap().status(),
        200
    );
    registry.stop();
    // Cached answers keep flowing; what needs the registry is a retryable 503.
    assert_eq!(
        get("/local/team/app/v1/labels").await.unwrap().status(),
        200
    );
    let (status, body) = body_of(get("/local/team/app/later/labels").await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (503, Some(1010)),
        "{body}"
    );
    registry.restart();
    assert_eq!(
        get("/local/team/app/later/labels").await.unwrap().status(),
        200,
        "recovered"
    );
}

/// Runs every scenario with trace logging and looks for each secret in every byte written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_any_output() {
    let htpasswd_password = "htpasswd-secret-9f1c";
    let token_password = "issuer-secret-77ab";
    let api_token = "api-token-secret-0d2e-0d2e";
    let events_token = "events-token-secret-5e1a-5e1a";
    let redis_password = "redis-secret-77c3-77c3";
    let redis = crate::harness::redis::RedisServer::start_with(&["--requirepass", redis_password]);
    let basic_registry = Registry::start(Mode::Htpasswd(&[("ci", htpasswd_password)]));
    let pusher = Pusher::new(
        &basic_registry.url(),
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("ci:{htpasswd_password}"))
        )),
    );
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;
    let issuer = Issuer::start(&[("alice", token_password)]).await;
    let token_registry = Registry::start(Mode::Token {
        realm: &issuer.realm,
    });
    let pusher = Pusher::new(
        &token_registry.url(),
        Some(format!(
            "Bearer {}",
            Issuer::mint("team/app", &["pull", "push"])
        )),
    );
    pusher
        .image("team/app", "v1", SCHEMA2, VA, &[VA_LAYER])
        .await;

    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("pw");
    std::fs::write(&password_file, format!("{token_password}\n")).unwrap();
    let token_file = dir.path().join("api");
    std::fs::write(&token_file, api_token).unwrap();
    let events_file = dir.path().join("events");
    std::fs::write(&events_file, events_token).unwrap();
    let redis_file = dir.path().join("redis");
    std::fs::write(&redis_file, redis_password).unwrap();
    let yaml = format!(
        "dimsum:\n  retries: 0\n  auth:\n    tokenFile: {}\n  events:\n    tokenFile: {}\n  redis:\n    url: {}\n    passwordFile: {}\ndockerRegistry:\n  accounts:\n\
         \x20 - {{name: basic, address: \"{}\", username: ci, password: {htpasswd_password}}}\n\
         \x20 - {{name: wrong, address: \"{}\", username: ci, password: {htpasswd_password}-not}}\n\
         \x20 - {{name: token, address: \"{}\", username: alice, passwordFile: {}}}\n\
         \x20 - {{name: command, address: \"{}\", username: alice, passwordCommand: \"echo {token_password}\"}}\n",
        token_file.display(),
        events_file.display(),
        redis.url(),
        redis_file.display(),
        basic_registry.url(),
        basic_registry.url(),
        token_registry.url(),
        password_file.display(),
        token_registry.url()
    );
    let cfg = config(dir.path(), &yaml);
    let mut output = Vec::<u8>::new();
    let run = |args: Vec<String>| {
        let cfg = cfg.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
                .arg("--config")
                .arg(&cfg)
                .args(args)
                .env("RUST_LOG", "trace")
                .env("NO_PROXY", "127.0.0.1,localhost")
                .output()
                .await
                .unwrap()
        }
    };
    for account in ["basic", "wrong", "token", "command"] {
        for cmd in ["history", "labels", "manifest"] {
            let out = run(vec![
                cmd.into(),
                account.into(),
                "team/app".into(),
                "v1".into(),
            ])
            .await;
            output.extend(out.stdout);
            output.extend(out.stderr);
        }
    }
    // The server, with trace logs, called with and without the API token.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).await.unwrap() > 0,
            "server exited"
        );
        output.extend(line.as_bytes());
        if let Some(a) = line.trim().strip_prefix("dimsum: listening on ") {
            break a.to_owned();
        }
    };
    let drain = tokio::spawn(async move {
        let mut rest = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut rest)
            .await
            .unwrap();
        rest
    });
    for account in ["basic", "wrong", "token", "command"] {
        for auth in [
            Some(format!("Bearer {api_token}")),
            None,
            Some("Bearer nope-nope-nope-nope".into()),
        ] {
            let mut req = http().get(format!(
                "http://{addr}/{account}/team/app/v1/history?level=0"
            ));
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            output.extend(req.send().await.unwrap().bytes().await.unwrap());
        }
    }
    // Registry events, with the token in the header and, as Quay must, in the URL.
    let event = r#"{"repository":"team/app","docker_url":"x/team/app","updated_tags":["v1"]}"#;
    for (query, auth) in [
        (String::new(), Some(format!("Bearer {events_token}"))),
        (format!("&token={events_token}"), None),
        ("&token=wrong-wrong-wrong-wrong".into(), None),
    ] {
        let mut req = http()
            .post(format!("http://{addr}/events?account=basic{query}"))
            .body(event);
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        output.extend(req.send().await.unwrap().bytes().await.unwrap());
    }
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().unwrap().to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().await.unwrap();
    output.extend(drain.await.unwrap());

    let text = String::from_utf8_lossy(&output);
    assert!(
        text.contains("TRACE") || text.contains("trace"),
        "trace logging was on"
    );
    assert!(text.contains("revision"), "the scenarios did run");
    assert!(text.contains(r#""received":1"#), "the events were taken");
    assert!(
        text.contains("redis: connected"),
        "Redis was used: {text:.0}"
    );
    let mut conn = redis.connection_with_password(redis_password).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the server shared through Redis");
    for key in &keys {
        let value: Vec<u8> = match redis::cmd("GET").arg(key).query_async(&mut conn).await {
            Ok(v) => v,
            Err(_) => continue,
        };
        let value = String::from_utf8_lossy(&value);
        for secret in [
            htpasswd_password,
            token_password,
            api_token,
            events_token,
            redis_password,
        ] {
            assert!(
                !value.contains(secret) && !key.contains(secret),
                "a secret in Redis: {key}"
            );
        }
    }
    let mut secrets = vec![
        htpasswd_password.to_owned(),
        token_password.to_owned(),
        api_token.to_owned(),
        events_token.to_owned(),
        redis_password.to_owned(),
        STANDARD.encode(format!("ci:{htpasswd_password}")),
        STANDARD.encode(format!("alice:{token_password}")),
    ];
    let issued = issuer.state.issued.lock().unwrap().clone();
    assert!(!issued.is_empty(), "tokens were issued");
    // A JWT's signature is what makes it a credential.
    secrets.extend(
        issued
            .iter()
            .map(|t| t.rsplit('.').next().unwrap().to_owned()),
    );
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret leaked: {secret}");
    }
    assert!(issuer.state.requests.load(Ordering::SeqCst) > 0);
    let _ = Path::new("");
}

/// The fuzz targets' smoke run: every committed corpus input through the same entry points.
#[test]
fn fuzz_corpora_replay_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    type Target = fn(&[u8]);
    let targets: [(&str, Target); 5] = [
        ("rest_path", dimsum::fuzzing::rest_path),
        ("www_authenticate", dimsum::fuzzing::www_authenticate),
        ("manifest", dimsum::fuzzing::manifest),
        ("history", dimsum::fuzzing::history),
        ("config", dimsum::fuzzing::config),
    ];
    for (name, target) in targets {
        let mut inputs = 0;
        for entry in std::fs::read_dir(root.join(name)).unwrap() {
            target(&std::fs::read(entry.unwrap().path()).unwrap());
            inputs += 1;
        }
        assert!(inputs > 0, "{name} has a corpus");
    }
}
