//! The REST routes, drop-in for the original dimsum:
//!
//! | Path | JSON-RPC method |
//! |---|---|
//! | `/{account}/{repository…}/{reference}/history[?level=N][&platform=P][&strict=true]` | `getHistory` |
//! | `/{account}/{repository…}/{reference}/metadata` (alias `/manifest`) | `getManifest` |
//! | `/{account}/{repository…}/{reference}/labels` | `getLabels` |
//!
//! The repository is every segment between the account and the last two, so it may have one or
//! many segments; each segment is percent-decoded. The reference may be a tag or a digest.

use serde_json::{Map, Value};

/// What a matched route renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// One history entry's raw bytes (`?level=N`).
    Entry,
    /// The list form plus a newline, as the original sent it.
    List,
    /// The manifest's raw bytes with `Docker-Content-Digest`.
    Manifest,
    /// The result as it is.
    Raw,
}

/// A request the shim will answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// JSON-RPC method.
    pub method: &'static str,
    /// Named params.
    pub params: Map<String, Value>,
    /// How to render the result.
    pub render: Render,
}

/// Why a path is not a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Not one of our paths.
    Unknown,
    /// A segment is not valid percent-encoded UTF-8.
    BadEncoding(String),
}

/// The last path segments that name an action.
pub const ACTIONS: [&str; 4] = ["history", "metadata", "manifest", "labels"];

/// Matches `path` (without the query) and `query` to a call.
pub fn route(path: &str, query: Option<&str>) -> Result<Call, NoRoute> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    if segments.len() < 4 {
        return Err(NoRoute::Unknown);
    }
    let (action, rest) = segments.split_last().ok_or(NoRoute::Unknown)?;
    let (reference, rest) = rest.split_last().ok_or(NoRoute::Unknown)?;
    let (account, repository) = rest.split_first().ok_or(NoRoute::Unknown)?;
    let method = match *action {
        "history" => "getHistory",
        "metadata" | "manifest" => "getManifest",
        "labels" => "getLabels",
        _ => return Err(NoRoute::Unknown),
    };
    // A segment may not decode to a '/': `team%2Fapp` would otherwise smuggle a path separator
    // past the route's segment count.
    let decode = |s: &str| {
        percent_decode(s)
            .filter(|d| !d.contains('/'))
            .ok_or_else(|| NoRoute::BadEncoding(s.to_owned()))
    };
    let repository = repository
        .iter()
        .map(|s| decode(s))
        .collect::<Result<Vec<_>, _>>()?
        .join("/");
    let mut params = Map::new();
    params.insert("account".into(), decode(account)?.into());
    params.insert("repository".into(), repository.into());
    params.insert("reference".into(), decode(reference)?.into());
    let mut render = match method {
        "getManifest" => Render::Manifest,
        "getLabels" => Render::Raw,
        _ => Render::List,
    };
    for (key, value) in query_pairs(query.unwrap_or("")) {
        let value = percent_decode(&value.replace('+', " "))
            .ok_or_else(|| NoRoute::BadEncoding(value.clone()))?;
        // The first value wins, as Go's `Query().Get` gave the original.
        if params.contains_key(key.as_str()) {
            continue;
        }
        match key.as_str() {
            "level" if method == "getHistory" && !value.is_empty() => {
                render = Render::Entry;
                // A number goes through as a number; anything else as given, so the RPC layer
                // rejects it with "invalid params" and the caller sees why.
                let level = value
                    .trim_start_matches('+')
                    .parse::<u64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(value));
                params.insert("level".into(), level);
            }
            "platform" => {
                params.insert("platform".into(), value.into());
            }
            "strict" if method == "getHistory" => {
                params.insert(
                    "strict".into(),
                    Value::Bool(matches!(value.as_str(), "true" | "1" | "")),
                );
            }
            _ => {}
        }
    }
    Ok(Call {
        method,
        params,
        render,
    })
}

fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
}

/// Percent-decodes one segment; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(call: &Call) -> Value {
        Value::Object(call.params.clone())
    }

    #[test]
    fn original_paths() {
        let c = route("/hub/library/nginx/latest/history", Some("level=0")).unwrap();
        assert_eq!((c.method, c.render), ("getHistory", Render::Entry));
        assert_eq!(
            params(&c),
            json!({"account":"hub","repository":"library/nginx","reference":"latest","level":0})
        );
        let c = route("/hub/a/b/c/v1/history", None).unwrap();
        assert_eq!(c.render, Render::List);
        assert_eq!(c.params["repository"], "a/b/c");
        let c = route("/hub/a/b/v1/history", Some("level=")).unwrap();
        assert_eq!(
            c.render,
            Render::List,
            "an empty level is no level, as in the original"
        );
        let c = route("/hub/solo/sha256:abc/metadata", None).unwrap();
        assert_eq!((c.method, c.render), ("getManifest", Render::Manifest));
        assert_eq!(c.params["repository"], "solo");
        assert_eq!(
            route("/hub/solo/v1/manifest", None).unwrap().method,
            "getManifest"
        );
        assert_eq!(
            route("/hub/solo/v1/labels", None).unwrap().method,
            "getLabels"
        );
    }

    #[test]
    fn queries_and_encoding() {
        let c = route(
            "/h/r/t/history",
            Some("level=%2B1&level=5&platform=linux%2Farm64&strict=true&x=y"),
        )
        .unwrap();
        assert_eq!(
            params(&c),
            json!({"account":"h","repository":"r","reference":"t","level":1,"platform":"linux/arm64","strict":true})
        );
        let c = route("/h/r/t/history", Some("level=abc")).unwrap();
        assert_eq!(
            c.params["level"], "abc",
            "passed on for the RPC layer to refuse"
        );
        let c = route("/h/r/t/history", Some("level=-1")).unwrap();
        assert_eq!(c.params["level"], "-1");
        assert_eq!(
            route("/h/te%61m/t/labels", None).unwrap().params["repository"],
            "team"
        );
        assert_eq!(
            route("/h/r/%zz/labels", None),
            Err(NoRoute::BadEncoding("%zz".into()))
        );
        assert_eq!(
            route("/h/r/%ff/labels", None),
            Err(NoRoute::BadEncoding("%ff".into()))
        );
    }

    #[test]
    fn not_routes() {
        for path in [
            "/",
            "/healthz",
            "/h/r/history",
            "/h/r/t/other",
            "/h/r/t/history/extra/x/y/z/w/zz",
        ] {
            assert_eq!(route(path, None), Err(NoRoute::Unknown), "{path}");
        }
    }
}
