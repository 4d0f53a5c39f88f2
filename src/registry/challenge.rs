//! `WWW-Authenticate` challenges (registry-protocol.md §5.1), in every shape registries send:
//!
//! - several challenges in one header or over several lines, names in any case (RFC 7235; the
//!   `http-auth` crate parses the grammar);
//! - the realm on another host (Docker Hub's `auth.docker.io`, GitLab's `gitlab.com/jwt/auth`);
//! - no `service` (Artifact Registry on `/v2/`, OpenShift), an unquoted `service=gcr.io` (gcr.io
//!   since 2026), a realm with a trailing `/`;
//! - a scope that names no repository (ECR Public's `scope="aws"`): sent back as given, since the
//!   token service grants only what its own challenge asked for;
//! - `Basic realm=…` (ECR, Nexus, htpasswd Distribution), also as `BASIC` (Nexus), and Harbor's
//!   `Basic realm="harbor"` when a request already carried credentials;
//! - an `error` parameter (`invalid_token`, `insufficient_scope`; ACR and Docker Hub add it).

use url::Url;

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=…,service=…,scope=…`.
    Bearer {
        /// Absolute token endpoint URL.
        realm: Url,
        /// `service`, if given.
        service: Option<String>,
        /// Space-separated scopes, if given.
        scopes: Vec<String>,
        /// `error`, if given: `invalid_token` (expired or revoked) or `insufficient_scope`.
        error: Option<String>,
    },
    /// `Basic realm=…`.
    Basic,
}

impl Challenge {
    /// Whether the registry said the token it was shown does not cover the request: after a
    /// fresh token, the repository does not exist or these credentials may not read it (Docker
    /// Hub answers a missing repository this way, never with 404).
    pub fn is_insufficient_scope(&self) -> bool {
        matches!(self, Challenge::Bearer { error: Some(e), .. } if e == "insufficient_scope")
    }
}

/// The first usable challenge among `WWW-Authenticate` header values; Bearer preferred, since a
/// registry that offers both issues tokens.
pub fn parse_challenges<'a>(values: impl Iterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = false;
    for value in values {
        let Ok(challenges) = http_auth::parse_challenges(value) else {
            continue;
        };
        for c in challenges {
            if c.scheme.eq_ignore_ascii_case("basic") {
                basic = true;
            } else if c.scheme.eq_ignore_ascii_case("bearer") {
                let param = |name: &str| {
                    c.params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.to_unescaped())
                };
                let Some(realm) = param("realm").and_then(|r| Url::parse(&r).ok()) else {
                    continue;
                };
                if !matches!(realm.scheme(), "http" | "https") {
                    continue;
                }
                let scopes = param("scope")
                    .map(|s| {
                        s.split(' ')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                return Some(Challenge::Bearer {
                    realm,
                    service: param("service").filter(|s| !s.is_empty()),
                    scopes,
                    error: param("error"),
                });
            }
        }
    }
    basic.then_some(Challenge::Basic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scopes: &[&str]) -> Challenge {
        Challenge::Bearer {
            realm: Url::parse(realm).unwrap(),
            service: service.map(str::to_owned),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            error: None,
        }
    }

    #[test]
    fn distribution_shape() {
        let c = parse_challenges(
            [r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push repository:c:pull""#].into_iter(),
        );
        assert_eq!(
            c,
            Some(bearer(
                "https://auth.example/token",
                Some("registry.example"),
                &["repository:a/b:pull,push", "repository:c:pull"]
            ))
        );
        assert_eq!(
            parse_challenges([r#"Basic realm="x""#].into_iter()),
            Some(Challenge::Basic)
        );
        // Several challenges in one header, Bearer preferred; case-insensitive names.
        let c = parse_challenges([r#"Basic realm="x", BEARER REALM="http://h/t""#].into_iter());
        assert!(matches!(c, Some(Challenge::Bearer { service: None, .. })));
        assert_eq!(
            parse_challenges([r#"Bearer realm="/relative""#, "garbage ,,, ="].into_iter()),
            None
        );
        assert_eq!(
            parse_challenges([r#"Bearer realm="file:///etc/passwd""#].into_iter()),
            None
        );
    }

    #[test]
    fn the_zoo_of_challenges() {
        // gcr.io: an unquoted service, and no scope.
        assert_eq!(
            parse_challenges(
                [r#"Bearer realm="https://gcr.io/v2/token",service=gcr.io"#].into_iter()
            ),
            Some(bearer("https://gcr.io/v2/token", Some("gcr.io"), &[]))
        );
        // ECR Public: a trailing slash and a scope that names no repository.
        assert_eq!(
            parse_challenges(
                [r#"Bearer realm="https://public.ecr.aws/token/",service="public.ecr.aws",scope="aws""#]
                    .into_iter()
            ),
            Some(bearer(
                "https://public.ecr.aws/token/",
                Some("public.ecr.aws"),
                &["aws"]
            ))
        );
        // Artifact Registry on /v2/: no service at all.
        assert_eq!(
            parse_challenges(
                [r#"Bearer realm="https://europe-docker.pkg.dev/v2/token""#].into_iter()
            ),
            Some(bearer("https://europe-docker.pkg.dev/v2/token", None, &[]))
        );
        // ECR and Nexus: Basic only, in any case.
        assert_eq!(
            parse_challenges(
                [r#"Basic realm="https://1.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com""#]
                    .into_iter()
            ),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenges([r#"BASIC realm="Sonatype Nexus Repository Manager""#].into_iter()),
            Some(Challenge::Basic)
        );
        // ACR and Docker Hub say why a token was refused.
        let c = parse_challenges(
            [r#"Bearer realm="https://r.azurecr.io/oauth2/token",service="r.azurecr.io",scope="repository:a:pull",error="insufficient_scope""#]
                .into_iter(),
        )
        .unwrap();
        assert!(c.is_insufficient_scope());
        let c = parse_challenges(
            [r#"Bearer realm="https://r.azurecr.io/oauth2/token",error="invalid_token""#]
                .into_iter(),
        )
        .unwrap();
        assert!(!c.is_insufficient_scope());
    }
}
