//! The REST routes, drop-in for the original dimsum:
//!
//! | Path | Action (JSON-RPC method) | Query parameters |
//! |---|---|---|
//! | `/{account}/{repository…}/{reference}/history` | history (`getHistory`) | `level`, `strict`, `platform`, `digest`, `signedBy` |
//! | `/{account}/{repository…}/{reference}/metadata` (alias `/manifest`) | manifest (`getManifest`) | `platform`, `digest`, `signedBy` |
//! | `/{account}/{repository…}/{reference}/labels` | labels (`getLabels`) | `platform`, `digest`, `signedBy` |
//! | `/{account}/{repository…}/{reference}/origin` | origin (`getOrigin`) | `platform`, `digest`, `signedBy` |
//! | `/{account}/{repository…}/{reference}/signatures` | signatures and attestations with their verdicts (`getSignatures`) | `platform`, `digest`, `signedBy` |
//! | `/{account}/{repository…}/{reference}/config` | the config blob (`getConfig`) | `platform`, `digest`, `signedBy` |
//! | `/{account}/{repository…}/{reference}/platforms` | an index's platforms (`getPlatforms`) | none |
//! | `/{account}/{repository…}/{reference}/digest` | the reference's digest (`getDigest`) | none |
//!
//! `digest` is the trigger's digest and `signedBy` a configured signer; both empty mean none, as
//! Orca sends a blank stage parameter. Any other parameter, a repeated one, or a value that is not
//! well formed is refused: nothing the caller sent is ignored.
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
    /// `getSignatures`: signatures and attestations, each with its verdict.
    Signatures,
    /// `getConfig`: the config blob exactly as stored.
    Config,
    /// `getPlatforms`: `[{platform, digest, mediaType}]`.
    Platforms,
    /// `getDigest`: `{digest, mediaType}` of the reference as named.
    Digest,
}

impl Action {
    /// The route's last segment, and the query parameters it takes.
    fn of(segment: &str) -> Option<(Action, &'static [&'static str])> {
        const IMAGE: &[&str] = &["platform", "digest", "signedBy"];
        Some(match segment {
            "history" => (
                Action::History {
                    level: None,
                    strict: false,
                },
                &["level", "strict", "platform", "digest", "signedBy"],
            ),
            "metadata" | "manifest" => (Action::Manifest, IMAGE),
            "labels" => (Action::Labels, IMAGE),
            "origin" => (Action::Origin, IMAGE),
            "signatures" => (Action::Signatures, IMAGE),
            "config" => (Action::Config, IMAGE),
            "platforms" => (Action::Platforms, &[]),
            "digest" => (Action::Digest, &[]),
            _ => return None,
        })
    }
}

/// The routes' last segments, for the hint on a path that is none of them.
pub const ROUTES: &[&str] = &[
    "history",
    "metadata",
    "manifest",
    "labels",
    "origin",
    "signatures",
    "config",
    "platforms",
    "digest",
];

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
    /// `?signedBy=`: a configured signer a signature of the image must satisfy (empty: none).
    pub signed_by: Option<String>,
}

/// Why a request is not a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Not one of our paths.
    Unknown,
    /// A segment is not valid percent-encoded UTF-8.
    BadEncoding(String),
    /// A query parameter the route does not take, given twice, or with a value that is not well
    /// formed: the message says which and why.
    BadParam(String),
}

/// Matches `path` (without the query) and `query` to a call.
pub fn route(path: &str, query: Option<&str>) -> Result<Call, NoRoute> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    if segments.len() < 4 {
        return Err(NoRoute::Unknown);
    }
    let (last, rest) = segments.split_last().ok_or(NoRoute::Unknown)?;
    let (reference, rest) = rest.split_last().ok_or(NoRoute::Unknown)?;
    let (account, repository) = rest.split_first().ok_or(NoRoute::Unknown)?;
    let (mut action, accepted) = Action::of(last).ok_or(NoRoute::Unknown)?;
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
    for (i, (key, _)) in pairs.iter().enumerate() {
        if !accepted.contains(&key.as_str()) {
            let message = match accepted {
                [] => format!("/{last} takes no query parameters (got {key:?})"),
                _ => format!("/{last}: {}", crate::params::unknown(key, accepted)),
            };
            return Err(NoRoute::BadParam(message));
        }
        if pairs[..i].iter().any(|(k, _)| k == key) {
            // A proxy in front might read another of the values than dimsum does.
            return Err(NoRoute::BadParam(format!("{key} is given more than once")));
        }
    }
    for (key, value) in pairs {
        match (key.as_str(), &mut action) {
            ("level", Action::History { level, .. }) => {
                let n = value.strip_prefix('+').unwrap_or(&value).parse::<u64>();
                *level = Some(n.map_err(|_| {
                    NoRoute::BadParam(format!(
                        "invalid level {value:?}: expected a non-negative integer (leave level out for every entry)"
                    ))
                })?);
            }
            ("strict", Action::History { strict, .. }) => {
                *strict = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(NoRoute::BadParam(format!(
                            "invalid strict {value:?}: expected true or false"
                        )));
                    }
                }
            }
            ("platform", _) => call.platform = Some(value),
            // An empty digest is none: Orca fills `${trigger['digest'] ?: ''}` with nothing.
            ("digest", _) => call.digest = Some(value).filter(|d| !d.is_empty()),
            // Empty is none, as for the digest: a stage parameter left blank.
            ("signedBy", _) => call.signed_by = Some(value).filter(|k| !k.is_empty()),
            _ => unreachable!("checked against the route's parameters above"),
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

    fn refused(path: &str, query: &str) -> String {
        match route(path, Some(query)) {
            Err(NoRoute::BadParam(m)) => m,
            other => panic!("{path}?{query}: {other:?}"),
        }
    }

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
            route("/hub/solo/sha256:abc/metadata", None),
            Ok(call(Action::Manifest, "hub", "solo", "sha256:abc"))
        );
        for (segment, action) in [
            ("manifest", Action::Manifest),
            ("labels", Action::Labels),
            ("config", Action::Config),
            ("platforms", Action::Platforms),
            ("digest", Action::Digest),
        ] {
            let path = format!("/hub/solo/v1/{segment}");
            assert_eq!(route(&path, None).unwrap().action, action);
        }
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
    }

    #[test]
    fn queries_and_encoding() {
        let c = route(
            "/h/r/t/history",
            Some("level=%2B1&platform=linux%2Farm64&strict=true"),
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
    fn every_value_is_checked() {
        for bad in ["", "abc", "-1", "1e3", "99999999999999999999"] {
            let m = refused("/h/r/t/history", &format!("level={bad}"));
            assert!(m.starts_with(&format!("invalid level {bad:?}")), "{m}");
        }
        for bad in ["", "TRUE", "True", "yes", "1", "0"] {
            let m = refused("/h/r/t/history", &format!("strict={bad}"));
            assert!(m.starts_with(&format!("invalid strict {bad:?}")), "{m}");
        }
        assert!(
            !route("/h/r/t/history", Some("strict=false"))
                .unwrap()
                .action
                .eq(&expected_strict())
        );
        assert_eq!(
            route("/h/r/t/history", Some("strict=true")).unwrap().action,
            expected_strict()
        );
    }

    fn expected_strict() -> Action {
        Action::History {
            level: None,
            strict: true,
        }
    }

    #[test]
    fn a_parameter_the_route_does_not_take_is_refused_with_its_right_spelling() {
        let m = refused("/h/r/t/labels", "signedby=ci");
        assert!(
            m.contains("\"signedby\" (did you mean \"signedBy\"?)"),
            "{m}"
        );
        let m = refused("/h/r/t/history", "plaform=linux/arm64&level=0");
        assert!(m.contains("did you mean \"platform\""), "{m}");
        let m = refused("/h/r/t/labels", "level=0");
        assert!(m.starts_with("/labels: unknown parameter \"level\""), "{m}");
        let m = refused("/h/r/t/origin", "strict=true");
        assert!(m.contains("\"strict\""), "{m}");
        let m = refused("/h/r/t/digest", "platform=linux/amd64");
        assert_eq!(m, "/digest takes no query parameters (got \"platform\")");
        refused("/h/r/t/history", "x=y");
        refused("/h/r/t/history", "level");
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        for (query, name) in [
            ("level=0&level=zz", "level"),
            ("platform=linux/amd64&platform=linux/arm64", "platform"),
            ("strict=true&level=0&strict=false", "strict"),
            ("digest=&digest=sha256:abc", "digest"),
            ("signedBy=a&signedBy=b", "signedBy"),
        ] {
            assert_eq!(
                refused("/h/r/t/history", query),
                format!("{name} is given more than once"),
                "{query}"
            );
        }
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
