//! Every answer on the port is JSON and right, over raw sockets where a client library would
//! hide the bytes: h2c upgrade offers are ignored, refusals are our JSON errors with the right
//! status, object ids are invalid requests on every transport, repeated parameters are refused.

use std::path::Path;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::open_world;
use crate::harness::server::Served;

/// One raw HTTP/1.1 exchange: the status, the headers (lower-case names) and the body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `head` (request line and headers, without the blank line), `Connection: close` and
/// `body`, and reads the whole answer.
async fn raw(served: &Served, head: &str, body: &[u8]) -> Raw {
    let addr = served.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{head}\r\nHost: x\r\nConnection: close\r\n").into_bytes();
    if !body.is_empty() {
        request.extend(format!("Content-Length: {}\r\n", body.len()).bytes());
    }
    request.extend(b"\r\n");
    request.extend(body);
    s.write_all(&request).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut got))
        .await
        .expect("no answer")
        .unwrap();
    let split = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8(got[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = got[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Raw {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 4 + size..];
    }
}

const H2C: &str = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_upgrade_offer_gets_the_same_bytes_as_a_plain_request() {
    let (_registry, _dir, cfg) = open_world().await;
    let served = Served::start(&cfg);
    for path in [
        "/local/team/app/v1/history?level=0",
        "/local/team/app/v1/labels",
        "/local/team/app/v1/metadata",
        "/local/team/app/nope/labels",
        "/healthz",
    ] {
        let plain = raw(&served, &format!("GET {path} HTTP/1.1"), b"").await;
        let offered = raw(&served, &format!("GET {path} HTTP/1.1\r\n{H2C}"), b"").await;
        assert_eq!(
            (offered.status, &offered.body),
            (plain.status, &plain.body),
            "{path}"
        );
        assert_eq!(offered.header("content-type"), Some("application/json"));
        assert_ne!(offered.status, 101, "never switched");
    }
    let call =
        br#"{"jsonrpc":"2.0","id":1,"method":"getLabels","params":["local","team/app","v1"]}"#;
    let head = format!("POST / HTTP/1.1\r\nContent-Type: application/json\r\n{H2C}");
    let answer = raw(&served, &head, call).await;
    let v: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(v["result"]["revision"], "abc123", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_http_client_with_its_defaults_gets_json() {
    crate::harness::require("java", "default-jdk-headless");
    let (_registry, _dir, cfg) = open_world().await;
    let served = Served::start(&cfg);
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/Get.java");
    let url = format!("{}/local/team/app/v1/history?level=0", served.url);
    let out = tokio::process::Command::new("java")
        .arg(&client)
        .arg(&url)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.splitn(3, '\n');
    assert_eq!(lines.next(), Some("200"), "{text}");
    assert_eq!(lines.next(), Some("application/json"));
    let body: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(body["config"]["Labels"]["revision"], "abc123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_on_the_port_has_a_body_that_is_not_json() {
    let (_registry, _dir, cfg) = open_world().await;
    let served = Served::start(&cfg);
    let request = br#"{"jsonrpc":"2.0","id":1,"method":"rpc.discover"}"#.as_slice();
    let object_id = br#"{"jsonrpc":"2.0","id":{"a":1},"method":"rpc.discover"}"#.as_slice();
    let bodies: [&[u8]; 5] = [b"", request, object_id, b"garbage", b"[]"];
    let mut seen = std::collections::BTreeSet::new();
    for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        for path in [
            "/",
            "/healthz",
            "/events",
            "/local/team/app/v1/labels",
            "/local/team/app/v1/history?level=0&level=1",
            "/nope",
        ] {
            for content_type in ["application/json", "text/plain", ""] {
                for body in bodies {
                    let mut head = format!("{method} {path} HTTP/1.1");
                    if !content_type.is_empty() {
                        head.push_str(&format!("\r\nContent-Type: {content_type}"));
                    }
                    let r = raw(&served, &head, body).await;
                    seen.insert(r.status);
                    let what = format!("{head} {}", String::from_utf8_lossy(body));
                    if r.status == 405 {
                        assert!(r.header("allow").is_some(), "405 without Allow: {what}");
                    }
                    if r.body.is_empty() {
                        assert!(
                            method == "HEAD" || r.status == 204,
                            "{}: empty {what}",
                            r.status
                        );
                        continue;
                    }
                    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
                    serde_json::from_slice::<Value>(&r.body).unwrap_or_else(|_| {
                        panic!(
                            "{}: not JSON: {what}: {}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        )
                    });
                }
            }
        }
    }
    for status in [200, 400, 404, 405, 415] {
        assert!(seen.contains(&status), "{status} was exercised: {seen:?}");
    }
    let empty = raw(
        &served,
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        b"",
    )
    .await;
    let v: Value = serde_json::from_slice(&empty.body).unwrap();
    assert_eq!(v["error"]["code"], -32700, "an empty body is not JSON: {v}");
    let huge = vec![b' '; 2 << 20];
    let r = raw(
        &served,
        "POST / HTTP/1.1\r\nContent-Type: application/json",
        &huge,
    )
    .await;
    assert_eq!(r.status, 413);
    serde_json::from_slice::<Value>(&r.body).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_ids_are_invalid_requests_over_http_and_websocket() {
    let (_registry, _dir, cfg) = open_world().await;
    let served = Served::start(&cfg);
    let invalid = json!({"jsonrpc": "2.0", "error": {"code": -32600}, "id": null});
    let single = r#"{"jsonrpc":"2.0","id":{"a":1},"method":"rpc.discover"}"#;
    let batch = r#"[{"jsonrpc":"2.0","id":[1],"method":"rpc.discover"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#;
    let check_single = |v: &Value| {
        assert_eq!(v["error"]["code"], invalid["error"]["code"], "{v}");
        assert_eq!(v["id"], Value::Null, "{v}");
    };
    let check_batch = |v: &Value| {
        let items = v
            .as_array()
            .unwrap_or_else(|| panic!("a batch answer: {v}"));
        assert_eq!(items.len(), 2, "both members answered: {v}");
        assert_eq!(items[0]["error"]["code"], -32600);
        assert_eq!(items[0]["id"], Value::Null);
        assert_eq!(items[1]["error"]["code"], -32601);
        assert_eq!(items[1]["id"], 2);
    };
    let http = |body: &'static str| {
        let served = &served;
        async move {
            let r = raw(
                served,
                "POST / HTTP/1.1\r\nContent-Type: application/json",
                body.as_bytes(),
            )
            .await;
            assert_eq!(r.status, 200);
            serde_json::from_slice::<Value>(&r.body).unwrap()
        }
    };
    check_single(&http(single).await);
    check_batch(&http(batch).await);

    let (mut ws, _) = tokio_tungstenite::connect_async(served.ws_url())
        .await
        .unwrap();
    for (text, check) in [
        (single, &check_single as &dyn Fn(&Value)),
        (batch, &check_batch),
    ] {
        ws.send(Message::text(text)).await.unwrap();
        let reply = loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Text(t) => break t,
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        };
        check(&serde_json::from_str(reply.as_str()).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_parameter_is_refused_naming_it() {
    let (_registry, _dir, cfg) = open_world().await;
    let served = Served::start(&cfg);
    for (query, name) in [
        ("level=0&level=zz", "level"),
        ("platform=linux/amd64&platform=linux/arm64", "platform"),
        ("strict=true&strict=false", "strict"),
        ("digest=&digest=sha256:abc", "digest"),
    ] {
        let r = raw(
            &served,
            &format!("GET /local/team/app/v1/history?{query} HTTP/1.1"),
            b"",
        )
        .await;
        assert_eq!(r.status, 400, "{query}");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["code"], -32602);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(name), "{message}");
    }
}
