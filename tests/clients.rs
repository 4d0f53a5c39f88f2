//! Slow clients, over raw sockets: half-sent headers and idle keep-alive connections are closed,
//! the connection cap counts every socket, a slow body gets 408, and what is slow but moving (an
//! answer read slowly, a quiet WebSocket) is left alone.

use std::path::PathBuf;
use std::time::Duration;

use jsonrpsee::core::client::ClientT as _;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::harness::images::{Pusher, SCHEMA2};
use crate::harness::registry::{Mode, Registry};
use crate::harness::run::config;
use crate::harness::server::Served;
use crate::harness::until;

/// Small bounds, so the tests take a second, not the defaults' ten.
const SERVER: &str = "dimsum:\n  server:\n    maxConnections: 16\n    headerTimeoutMillis: 300\n    bodyTimeoutMillis: 300\n";

fn served(dir: &std::path::Path, registry: &str) -> (Served, PathBuf) {
    let cfg = config(
        dir,
        &format!(
            "{SERVER}dockerRegistry:\n  accounts:\n  - {{name: local, address: \"{registry}\"}}\n"
        ),
    );
    (Served::start(&cfg), cfg)
}

fn addr(served: &Served) -> String {
    served.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; a guard against hanging, not a timing check.
async fn read_to_close(socket: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    read.await.expect("the server never closed the connection");
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_silent_sockets_and_idle_keep_alive_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (served, _) = served(dir.path(), "http://127.0.0.1:9");
    let m = served.metrics();

    let mut half = TcpStream::connect(addr(&served)).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_to_close(&mut half).await,
        b"",
        "closed without an answer"
    );
    let mut silent = TcpStream::connect(addr(&served)).await.unwrap();
    assert_eq!(read_to_close(&mut silent).await, b"");
    assert!(m.shed_count("timeout") >= 1);

    let mut idle = TcpStream::connect(addr(&served)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut idle).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(r#"{"status":"ok"}"#),
        "answered, then closed when idle: {answer}"
    );
    until("every connection is closed", || m.connections_open() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_counts_every_socket_and_a_normal_request_gets_in_after_the_slow_ones_go() {
    let dir = tempfile::tempdir().unwrap();
    let (served, _) = served(dir.path(), "http://127.0.0.1:9");
    let m = served.metrics();
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(addr(&served)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    until("all 40 are accepted or refused", || {
        m.connections_open() as u64 + m.shed_count("cap") == 40
    })
    .await;
    assert_eq!(m.connections_open(), 16, "never more than the cap");
    assert_eq!(m.shed_count("cap"), 24, "the rest closed at once");
    let mut closed = 0;
    for s in &mut slow {
        assert_eq!(read_to_close(s).await, b"", "no answer to a half request");
        closed += 1;
    }
    assert_eq!(closed, 40);
    until("the slow ones are shed", || m.connections_open() == 0).await;
    let r = reqwest::get(format!("{}/healthz", served.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_gets_408_and_slow_but_moving_answers_and_quiet_websockets_are_kept() {
    let registry = Registry::start(Mode::Open);
    // A 1 MiB config: its history entry is an answer larger than the socket buffers.
    let labels = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1 << 20));
    let big = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{labels}}},"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}},"history":[{{"created_by":"x"}}]}}"#,
        "1".repeat(64)
    );
    Pusher::new(&registry.url(), None)
        .image("team/app", "big", SCHEMA2, big.as_bytes(), &[b"layer"])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (served, _) = served(dir.path(), &registry.url());

    // A JSON-RPC body that stops halfway.
    let mut s = TcpStream::connect(addr(&served)).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":")
        .await
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut s).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("application/json") && answer.contains("did not arrive"),
        "{answer}"
    );

    // An answer read slowly, over several header timeouts, arrives whole.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket
        .connect(addr(&served).parse().unwrap())
        .await
        .unwrap();
    s.write_all(
        b"GET /local/team/app/big/history?level=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("the answer stalled")
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        // The slow reader is the fault under test, not a wait for something.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let text = String::from_utf8(got).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "{}",
        &text[..200.min(text.len())]
    );
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let entry: serde_json::Value = serde_json::from_str(body).expect("the whole answer");
    assert_eq!(
        entry["config"]["Labels"]["pad"].as_str().unwrap().len(),
        1 << 20
    );

    // A WebSocket quiet for longer than the header timeout stays open.
    let ws = WsClientBuilder::default()
        .build(served.ws_url())
        .await
        .unwrap();
    let _: serde_json::Value = ws.request("rpc.discover", rpc_params![]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let doc: serde_json::Value = ws.request("rpc.discover", rpc_params![]).await.unwrap();
    assert_eq!(doc["openrpc"], "1.2.6");
    let m = served.metrics();
    until("only the WebSocket is left, and it still counts", || {
        m.connections_open() == 1
    })
    .await;
    drop(ws);
    until("the closed WebSocket gives its place back", || {
        m.connections_open() == 0
    })
    .await;
}
