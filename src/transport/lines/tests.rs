use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::RpcModule;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::Notify;

use super::*;

fn methods() -> Methods {
    let mut m = RpcModule::new(Arc::new(Notify::new()));
    m.register_method("echo", |params, _, _| {
        params.parse::<Value>().unwrap_or(Value::Null)
    })
    .unwrap();
    m.register_async_method("wait", |_, notify, _| async move {
        notify.notified().await;
        "released"
    })
    .unwrap();
    m.register_method("release", |_, notify, _| {
        notify.notify_one();
        "ok"
    })
    .unwrap();
    m.into()
}

/// Runs the transport over a duplex pipe: writes `input`, closes it, returns the reply lines.
async fn exchange(input: &str, max_line: usize) -> Vec<Value> {
    let (client, server) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server);
    let task = tokio::spawn(serve(
        methods(),
        BufReader::new(server_read),
        server_write,
        max_line,
    ));
    let (client_read, mut client_write) = tokio::io::split(client);
    client_write.write_all(input.as_bytes()).await.unwrap();
    client_write.shutdown().await.unwrap();
    let mut lines = BufReader::new(client_read).lines();
    let mut out = Vec::new();
    let bounded = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            out.push(serde_json::from_str(&line).unwrap());
        }
    });
    bounded.await.expect("transport hung");
    task.await.unwrap().unwrap();
    out
}

#[tokio::test]
async fn single_requests_batches_and_notifications() {
    let input = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":"echo","params":[2]}"#,
        "\n",
        "\n",
        r#"[{"jsonrpc":"2.0","id":"a","method":"echo","params":{"x":1}},{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","id":null,"method":"echo","params":[3]}]"#,
        "\n",
        r#"[{"jsonrpc":"2.0","method":"echo"}]"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"nope"}"#,
    );
    let mut replies = exchange(input, DEFAULT_MAX_LINE).await;
    replies.sort_by_key(|r| r.to_string());
    let want = [
        json!([{"jsonrpc":"2.0","id":"a","result":{"x":1}},{"jsonrpc":"2.0","id":null,"result":[3]}]),
        json!({"jsonrpc":"2.0","id":1,"result":[1]}),
        json!({"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found: \"nope\"; the methods are echo, release, wait","data":{"name":"method_not_found","httpStatus":404}}}),
    ];
    let mut want: Vec<Value> = want.into();
    want.sort_by_key(|r| r.to_string());
    assert_eq!(replies, want);
}

#[tokio::test]
async fn errors_per_spec() {
    let input = concat!(
        r#"{"jsonrpc":"2.0","method":"echo","params":"bar","#,
        "\n",
        "[]\n",
        "[1,2]\n",
        "42\n",
        r#"{"jsonrpc":"1.0","id":7,"method":"echo"}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":{"a":1},"method":"echo"}"#,
        "\n",
    );
    let replies = exchange(input, DEFAULT_MAX_LINE).await;
    let codes: Vec<(i64, Value)> = replies
        .iter()
        .map(|r| (r["error"]["code"].as_i64().unwrap_or(0), r["id"].clone()))
        .collect();
    assert!(codes.contains(&(-32700, Value::Null)), "{replies:?}");
    assert!(codes.contains(&(-32600, json!(7))), "{replies:?}");
    let batch = replies
        .iter()
        .find(|r| r.is_array())
        .expect("[1,2] is a batch of two invalid requests");
    assert_eq!(batch.as_array().unwrap().len(), 2);
    assert_eq!(replies.len(), 7, "every bad line is answered: {replies:?}");
}

#[tokio::test]
async fn requests_run_concurrently_and_long_lines_are_refused() {
    // "wait" finishes only after "release" runs: sequential handling would hang (bounded above).
    let input = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"wait"}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"release"}"#,
        "\n",
    );
    let replies = exchange(input, DEFAULT_MAX_LINE).await;
    assert_eq!(replies[0]["id"], 2, "the fast request answers first");
    assert_eq!(replies[1]["result"], "released");

    let long = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[\"{}\"]}}\n",
        "x".repeat(200)
    );
    let input = format!(
        "{long}{}\n",
        r#"{"jsonrpc":"2.0","id":2,"method":"echo","params":[2]}"#
    );
    let replies = exchange(&input, 100).await;
    assert_eq!(replies[0]["error"]["code"], -32600);
    assert!(
        replies[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than 100 bytes")
    );
    assert_eq!(
        replies[1]["result"],
        json!([2]),
        "the next line is still served"
    );
}
