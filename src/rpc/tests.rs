//! RPC methods through `RpcModule::call`, without a socket.

use std::collections::BTreeSet;
use std::sync::Arc;

use dimsum_rest::Code;
use serde_json::Value;

use super::*;
use crate::config::Config;

fn module() -> jsonrpsee::RpcModule<Rpc> {
    let service = crate::Dimsum::new(&Config::builtin());
    let settings = crate::config::Settings::default();
    Rpc::new(Arc::new(crate::reload::Live::new(
        service,
        &settings,
        Vec::new(),
    )))
    .into_rpc()
}

#[tokio::test]
async fn discover_describes_every_method_and_code() {
    let doc: Value = module()
        .call("rpc.discover", jsonrpsee::rpc_params![])
        .await
        .unwrap();
    let methods: BTreeSet<&str> = doc["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let registered: BTreeSet<&str> = module().method_names().collect();
    assert_eq!(methods, registered);
    let codes: BTreeSet<i64> = doc["methods"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_i64().unwrap())
        .collect();
    for code in Code::ALL {
        assert!(
            codes.contains(&i64::from(code.number())),
            "{} undocumented",
            code.name()
        );
        let entry = doc["methods"][0]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["code"] == code.number())
            .unwrap();
        assert_eq!(entry["data"]["httpStatus"], code.http_status());
        assert_eq!(entry["message"], code.name());
    }
}

async fn error_of(method: &str, params: Value) -> (i32, Value) {
    let params = params.as_object().unwrap().clone();
    let mut object = jsonrpsee::core::params::ObjectParams::new();
    for (k, v) in params {
        object.insert(&k, v).unwrap();
    }
    match module().call::<_, Value>(method, object).await {
        Err(jsonrpsee::core::server::MethodsError::JsonRpc(e)) => (
            e.code(),
            e.data()
                .map(|d| serde_json::from_str(d.get()).unwrap())
                .unwrap_or(Value::Null),
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn errors_carry_code_name_and_status() {
    let (code, data) = error_of(
        "getHistory",
        serde_json::json!({"account": "nosuch", "repository": "a", "reference": "b"}),
    )
    .await;
    assert_eq!(code, Code::UnknownAccount.number());
    assert_eq!(
        data,
        serde_json::json!({"name": "unknown_account", "httpStatus": 404})
    );
    let (code, _) = error_of(
        "getHistory",
        serde_json::json!({"account": "dockerhub", "repository": "a"}),
    )
    .await;
    assert_eq!(
        code,
        Code::InvalidReference.number(),
        "no reference and no tag"
    );
    let (code, _) = error_of("getLabels", serde_json::json!({"account": "dockerhub", "repository": "a", "reference": "b", "tag": "c"})).await;
    assert_eq!(
        code,
        Code::InvalidReference.number(),
        "both reference and tag"
    );
    let (code, _) = error_of(
        "getHistory",
        serde_json::json!({"account": "dockerhub", "repository": "A", "tag": "b"}),
    )
    .await;
    assert_eq!(code, Code::InvalidReference.number());
    let (code, _) = error_of(
        "getHistory",
        serde_json::json!({"account": "dockerhub", "repository": "a", "tag": "b", "level": -1}),
    )
    .await;
    assert_eq!(code, -32602, "a negative level is invalid params");
}

async fn invalid_params(method: &str, params: Value) -> String {
    let raw = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (reply, _) = module()
        .raw_json_request(&raw.to_string(), 1)
        .await
        .unwrap();
    let reply: Value = serde_json::from_str(reply.get()).unwrap();
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert_eq!(
        reply["error"]["data"],
        serde_json::json!({"name": "invalid_params", "httpStatus": 400})
    );
    reply["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn no_param_is_ignored() {
    let image = |extra: Value| {
        let mut p = serde_json::json!({"account": "dockerhub", "repository": "a", "tag": "b"});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    for method in [
        "getHistory",
        "getManifest",
        "getLabels",
        "getOrigin",
        "getConfig",
    ] {
        let m = invalid_params(method, image(serde_json::json!({"signedby": "ci"}))).await;
        assert!(
            m.contains("unknown parameter \"signedby\" (did you mean \"signedBy\"?)"),
            "{method}: {m}"
        );
        let m = invalid_params(method, image(serde_json::json!({"plaform": "linux/arm64"}))).await;
        assert!(m.contains("did you mean \"platform\""), "{method}: {m}");
    }
    let m = invalid_params("getLabels", image(serde_json::json!({"level": 0}))).await;
    assert!(m.contains("unknown parameter \"level\""), "{m}");
    let m = invalid_params(
        "getDigest",
        image(serde_json::json!({"platform": "linux/amd64"})),
    )
    .await;
    assert!(m.contains("unknown parameter \"platform\""), "{m}");
    for (value, expected) in [
        (
            serde_json::json!({"strict": "true"}),
            "strict must be true or false",
        ),
        (
            serde_json::json!({"level": "0"}),
            "level must be a non-negative integer",
        ),
        (
            serde_json::json!({"level": -1}),
            "level must be a non-negative integer",
        ),
        (
            serde_json::json!({"level": 1.5}),
            "level must be a non-negative integer",
        ),
        (
            serde_json::json!({"signedBy": true}),
            "signedBy must be a string",
        ),
    ] {
        let m = invalid_params("getHistory", image(value.clone())).await;
        assert!(m.contains(expected), "{value}: {m}");
    }
    let m = invalid_params(
        "getLabels",
        serde_json::json!(["dockerhub", "a", "b", null, null, null, null, "extra"]),
    )
    .await;
    assert!(m.contains("8 positional params given"), "{m}");
    let m = invalid_params(
        "getLabels",
        serde_json::json!({"repository": "a", "tag": "b"}),
    )
    .await;
    assert!(m.contains("missing field `account`"), "{m}");
    invalid_params("rpc.discover", serde_json::json!({"x": 1})).await;
}
