//! The REST routes, drop-in for the original dimsum:
//!
//! | Path | Action (JSON-RPC method) |
//! |---|---|
//! | `/{account}/{repository…}/{reference}/history[?level=N][&platform=P][&strict=true]` | history (`getHistory`) |
//! | `/{account}/{repository…}/{reference}/metadata` (alias `/manifest`) | manifest (`getManifest`) |
//! | `/{account}/{repository…}/{reference}/labels` | labels (`getLabels`) |
//! | `/{account}/{repository…}/{reference}/origin` | origin (`getOrigin`) |
//!
//! Every route also takes `platform`, `digest` (the trigger's) and `signedBy` (a configured key
//! a signature of the image must verify with).
//!
//! The repository is every segment between the account and the last two, so it may have one or
//! many segments; each segment is percent-decoded. The reference may be a tag or a digest.

/// What a route asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `getHistory`: with a level, that entry's raw bytes; without, the list form plus a
    /// newline, as the original sent it.
    History {
        /// `?level=N`.
        level: Option<u64>,
        /// `?strict=true`.
        strict: bool,
    },
    /// `getManifest`: the manifest's raw bytes with `Docker-Content-Digest`.
    Manifest,
    /// `getLabels`: the labels object.
    Labels,
    /// `getOrigin`: where the image came from.
    Origin,
}

/// A request the shim will answer: the JSON-RPC method's params, decoded and typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// What to answer.
    pub action: Action,
    /// Account name.
    pub account: String,
    /// Repository, segments joined by `/`.
    pub repository: String,
    /// Tag or digest.
    pub reference: String,
    /// `?platform=os/arch[/variant]`.
    pub platform: Option<String>,
    /// `?digest=`: the digest the trigger saw (empty: none).
    pub digest: Option<String>,
    /// `?signedBy=`: a configured key a signature of the image must verify with (empty: none).
    pub signed_by: Option<String>,
}

/// Why a path is not a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Not one of our paths.
    Unknown,
    /// A segment is not valid percent-encoded UTF-8.
    BadEncoding(String),
    /// `?level=` is not a non-negative integer.
    BadLevel(String),
    /// A parameter given more than once (`level`, `platform`, `strict`, `digest`, `signedBy`): a proxy in
    /// front might read another value than dimsum.
    Repeated(&'static str),
}

/// The query parameters the routes read; each may appear once.
const PARAMS: [&str; 5] = ["level", "platform", "strict", "digest", "signedBy"];

/// Matches `path` (without the query) and `query` to a call.
pub fn route(path: &str, query: Option<&str>) -> Result<Call, NoRoute> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    if segments.len() < 4 {
        return Err(NoRoute::Unknown);
    }
    let (action, rest) = segments.split_last().ok_or(NoRoute::Unknown)?;
    let (reference, rest) = rest.split_last().ok_or(NoRoute::Unknown)?;
    let (account, repository) = rest.split_first().ok_or(NoRoute::Unknown)?;
    let mut action = match *action {
        "history" => Action::History {
            level: None,
            strict: false,
        },
        "metadata" | "manifest" => Action::Manifest,
        "labels" => Action::Labels,
        "origin" => Action::Origin,
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
    let mut call = Call {
        action,
        account: decode(account)?,
        repository,
        reference: decode(reference)?,
        platform: None,
        digest: None,
        signed_by: None,
    };
    let pairs = query_params(query.unwrap_or(""))?;
    for name in PARAMS {
        if pairs.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(NoRoute::Repeated(name));
        }
    }
    for (key, value) in pairs {
        match (key.as_str(), &mut action) {
            // An empty level is no level, as in the original.
            ("level", Action::History { level, .. }) if !value.is_empty() => {
                let n = value.strip_prefix('+').unwrap_or(&value).parse::<u64>();
                *level = Some(n.map_err(|_| NoRoute::BadLevel(value))?);
            }
            ("strict", Action::History { strict, .. }) => {
                *strict = matches!(value.as_str(), "true" | "1" | "");
            }
            ("platform", _) => call.platform = Some(value),
            // An empty digest is none: Orca fills `${trigger['digest'] ?: ''}` with nothing.
            ("digest", _) => call.digest = Some(value).filter(|d| !d.is_empty()),
            // Empty is none, as for the digest: a stage parameter left blank.
            ("signedBy", _) => call.signed_by = Some(value).filter(|k| !k.is_empty()),
            _ => {}
        }
    }
    call.action = action;
    Ok(call)
}

/// A query string's `key=value` pairs in order, values percent-decoded (`+` is a space).
pub fn query_params(query: &str) -> Result<Vec<(String, String)>, NoRoute> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (key, value) = p.split_once('=').unwrap_or((p, ""));
            let decoded = percent_decode(&value.replace('+', " "))
                .ok_or_else(|| NoRoute::BadEncoding(value.to_owned()))?;
            Ok((key.to_owned(), decoded))
        })
        .collect()
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

    fn call(action: Action, account: &str, repository: &str, reference: &str) -> Call {
        Call {
            action,
            account: account.into(),
            repository: repository.into(),
            reference: reference.into(),
            platform: None,
            digest: None,
            signed_by: None,
        }
    }

    const LIST: Action = Action::History {
        level: None,
        strict: false,
    };

    #[test]
    fn original_paths() {
        let level0 = Action::History {
            level: Some(0),
            strict: false,
        };
        assert_eq!(
            route("/hub/library/nginx/latest/history", Some("level=0")),
            Ok(call(level0, "hub", "library/nginx", "latest"))
        );
        assert_eq!(
            route("/hub/a/b/c/v1/history", None),
            Ok(call(LIST, "hub", "a/b/c", "v1"))
        );
        assert_eq!(
            route("/hub/a/b/v1/history", Some("level=")).unwrap().action,
            LIST,
            "an empty level is no level, as in the original"
        );
        assert_eq!(
            route("/hub/solo/sha256:abc/metadata", None),
            Ok(call(Action::Manifest, "hub", "solo", "sha256:abc"))
        );
        assert_eq!(
            route("/hub/solo/v1/manifest", None).unwrap().action,
            Action::Manifest
        );
        assert_eq!(
            route("/hub/solo/v1/labels", None).unwrap().action,
            Action::Labels
        );
        let origin = route("/hub/team/app/v1/origin", Some("signedBy=ci&digest=")).unwrap();
        assert_eq!(origin.action, Action::Origin);
        assert_eq!(origin.signed_by.as_deref(), Some("ci"));
        assert_eq!(origin.digest, None);
        assert_eq!(
            route("/hub/a/v1/labels", Some("signedBy="))
                .unwrap()
                .signed_by,
            None,
            "an empty key is none, as a blank stage parameter"
        );
        assert_eq!(
            route("/hub/a/v1/labels", Some("signedBy=a&signedBy=b")),
            Err(NoRoute::Repeated("signedBy"))
        );
    }

    #[test]
    fn queries_and_encoding() {
        let c = route(
            "/h/r/t/history",
            Some("level=%2B1&platform=linux%2Farm64&strict=true&x=y&x=z"),
        )
        .unwrap();
        let expected = Action::History {
            level: Some(1),
            strict: true,
        };
        assert_eq!(
            (c.action, c.platform.as_deref()),
            (expected, Some("linux/arm64"))
        );
        for bad in ["abc", "-1", "1e3", "99999999999999999999"] {
            assert_eq!(
                route("/h/r/t/history", Some(&format!("level={bad}"))),
                Err(NoRoute::BadLevel(bad.into()))
            );
        }
        assert_eq!(
            route("/h/r/t/labels", Some("level=abc")).unwrap().action,
            Action::Labels,
            "level means nothing to labels"
        );
        assert_eq!(
            route("/h/te%61m/t/labels", None).unwrap().repository,
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
    fn a_repeated_parameter_is_refused() {
        for (query, name) in [
            ("level=0&level=zz", "level"),
            ("platform=linux/amd64&platform=linux/arm64", "platform"),
            ("strict=true&level=0&strict=false", "strict"),
            ("digest=&digest=sha256:abc", "digest"),
        ] {
            assert_eq!(
                route("/h/r/t/history", Some(query)),
                Err(NoRoute::Repeated(name)),
                "{query}"
            );
        }
        assert_eq!(
            route("/h/r/t/labels", Some("level=1&level=2")),
            Err(NoRoute::Repeated("level")),
            "refused on every route"
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
