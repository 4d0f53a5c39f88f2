//! The Orca YAML this crate ships: every URL, filled from a Docker trigger, is a route of the
//! shim with the expected action and params; and orca-config/ embeds the same entries.

use dimsum_rest::routes::{Action, route};
use serde_yaml::Value;

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn entries(webhook_root: &Value) -> Vec<Value> {
    webhook_root["webhook"]["preconfigured"]
        .as_sequence()
        .unwrap()
        .clone()
}

/// Fills `${parameterValues['x']}` with each parameter's default, and `${trigger['k']}` from a
/// Docker trigger, the way Deck and Orca do; `${trigger['k'] ?: ''}` is empty when the trigger
/// has no `k` (SpEL's Elvis operator on a missing map key).
fn fill(entry: &Value, trigger: &[(&str, &str)]) -> String {
    let mut url = entry["url"].as_str().unwrap().to_owned();
    for p in entry["parameters"].as_sequence().unwrap() {
        let mut value = p["defaultValue"].as_str().unwrap().to_owned();
        for (k, v) in trigger {
            value = value.replace(&format!("${{trigger['{k}']}}"), v);
            value = value.replace(&format!("${{trigger['{k}'] ?: ''}}"), v);
        }
        value = value.replace("${trigger['digest'] ?: ''}", "");
        url = url.replace(
            &format!("${{parameterValues['{}']}}", p["name"].as_str().unwrap()),
            &value,
        );
    }
    assert!(!url.contains("${"), "unfilled expression in {url}");
    url
}

#[test]
fn every_url_is_a_route() {
    let root = load("orca/preconfigured-webhooks.yml");
    let triggers: [&[(&str, &str)]; 4] = [
        &[
            ("account", "my-registry"),
            ("repository", "team/app"),
            ("tag", "v1.2.3"),
        ],
        &[
            ("account", "dockerhub"),
            ("repository", "library/nginx"),
            (
                "tag",
                "sha256:3d5ef317fb4ef071eebe08e1a58ffca6a4f1ab92fa7b98f97a2cf472659ddc2a",
            ),
        ],
        &[
            ("account", "ecr"),
            ("repository", "a/b/c"),
            ("tag", "latest"),
        ],
        // trackDigests or inspectDigests: the trigger carries a digest.
        &[
            ("account", "ecr"),
            ("repository", "a/b/c"),
            ("tag", "latest"),
            (
                "digest",
                "sha256:3d5ef317fb4ef071eebe08e1a58ffca6a4f1ab92fa7b98f97a2cf472659ddc2a",
            ),
        ],
    ];
    let mut types = Vec::new();
    for entry in entries(&root) {
        assert_eq!(
            entry["method"], "GET",
            "Orca's default is POST; the entry must say GET"
        );
        assert_eq!(entry["customHeaders"]["Accept"][0], "application/json");
        assert_eq!(
            entry["customHeaders"]["X-Dimsum-User"][0], "${execution.authentication.user}",
            "the stage names who runs the pipeline, for dimsum's Fiat check"
        );
        types.push(entry["type"].as_str().unwrap().to_owned());
        for trigger in triggers {
            let url = fill(&entry, trigger);
            let after_scheme = url.split_once("://").unwrap().1;
            let path_and_query = &after_scheme[after_scheme.find('/').unwrap()..];
            let (path, query) = match path_and_query.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (path_and_query, None),
            };
            let call = route(path, query).unwrap_or_else(|e| panic!("{url}: {e:?}"));
            assert_eq!(
                [&call.account, &call.repository, &call.reference],
                [trigger[0].1, trigger[1].1, trigger[2].1]
            );
            let digest = trigger
                .iter()
                .find(|(k, _)| *k == "digest")
                .map(|(_, v)| *v);
            assert_eq!(call.digest.as_deref(), digest, "{url}");
            // signedBy defaults to empty: no check unless the pipeline names a key.
            assert_eq!(call.signed_by, None, "{url}");
            match entry["type"].as_str().unwrap() {
                "dimsum" => assert_eq!(
                    call.action,
                    Action::History {
                        level: Some(0),
                        strict: false
                    }
                ),
                "dimsumLabels" => assert_eq!(call.action, Action::Labels),
                "dimsumOrigin" => assert_eq!(call.action, Action::Origin),
                other => panic!("unexpected type {other}"),
            }
        }
    }
    types.sort();
    types.dedup();
    assert_eq!(types.len(), entries(&root).len(), "types are unique");
}

#[test]
fn orca_config_embeds_the_same_entries() {
    let shipped = entries(&load("orca/preconfigured-webhooks.yml"));
    let halyard = load("../orca-config/orca-local.yml");
    assert_eq!(entries(&halyard), shipped, "orca-local.yml drifted");
    let operator = load("../orca-config/spinnakerservice-patch.yml");
    let orca = &operator["spec"]["spinnakerConfig"]["profiles"]["orca"];
    assert_eq!(entries(orca), shipped, "spinnakerservice-patch.yml drifted");
    for doc in [&halyard, orca] {
        let r = &doc["user-configured-url-restrictions"];
        assert!(r["allowedHostnamesRegex"].is_string() && r["excludedDomains"].is_sequence());
    }
    // The host must pass Orca 1.36's default restrictions: a dot, and none of the excluded domains.
    for entry in &shipped {
        let url = entry["url"].as_str().unwrap();
        let host = url
            .split("://")
            .nth(1)
            .unwrap()
            .split([':', '/'])
            .next()
            .unwrap();
        assert!(host.contains('.'));
        for excluded in ["spinnaker", "local", "localdomain", "internal"] {
            assert!(!host.ends_with(excluded), "{host} ends in {excluded}");
        }
    }
}

/// The stage retries exactly what waiting can change: every code's status is in each entry's
/// `failFastStatusCodes` unless it is transient, and no transient status is.
#[test]
fn the_stages_retry_only_what_a_retry_can_fix() {
    use dimsum_rest::Code;
    for entry in entries(&load("orca/preconfigured-webhooks.yml")) {
        let fail_fast: Vec<u64> = entry["failFastStatusCodes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        for code in Code::ALL {
            let status = u64::from(code.http_status());
            assert_eq!(
                fail_fast.contains(&status),
                !code.is_transient(),
                "{} ({status}) in {}",
                code.name(),
                entry["type"].as_str().unwrap()
            );
        }
        // JSON-RPC's own refusals on the REST paths: invalid params, unknown route, method.
        for status in [400, 404, 405] {
            assert!(fail_fast.contains(&status), "{status}");
        }
    }
}
