//! The profiles: how each registry bends the pull path, from `../shared/docs/registry-zoo.md`
//! (sources there). Where that page is silent, the choice is marked **assumed** and says why.

/// Where the token realm lives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RealmHost {
    /// The registry's own host.
    Registry,
    /// Another host (127.0.0.2): Docker Hub's auth.docker.io, GitLab's gitlab.com.
    Auth,
}

/// How the registry asks for credentials.
#[derive(Clone, Debug, PartialEq)]
pub enum Auth {
    /// `Bearer realm=…` and a token service.
    Bearer {
        /// Where the realm is.
        host: RealmHost,
        /// The realm's path.
        path: &'static str,
        /// `service`, as written into the challenge (already quoted or not).
        service: Option<&'static str>,
        /// A fixed scope instead of `repository:<name>:pull` (ECR Public's `aws`); `Some("")`
        /// sends no scope at all (gcr.io's older challenges).
        scope: Option<&'static str>,
        /// The challenge adds `error="invalid_token"` to a refused token (ACR, Docker Hub).
        error_param: bool,
    },
    /// `Basic realm=…` only: the registry takes the credentials on every request.
    Basic {
        /// The whole challenge.
        challenge: &'static str,
    },
}

/// Which fields a token answer has.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TokenShape {
    /// `{"token","access_token"}`, the same value.
    Both,
    /// `{"token"}` only.
    Token,
    /// `{"access_token"}` only (ACR).
    AccessToken,
}

/// What the registry answers to a credential it does not accept (an expired or unknown token,
/// a rotated-out password, a Basic header on a token registry).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Refusal {
    /// 401 with the profile's challenge (and `error="invalid_token"` where the profile adds it).
    Challenge,
    /// 401 with `error="insufficient_scope"` on the challenge (Docker Hub's answer for a
    /// repository the token does not cover, which is how it says "missing").
    InsufficientScope,
    /// 403 `DENIED`, no challenge (GHCR; ECR's expired password).
    Forbidden,
    /// 400 `DENIED`, no challenge (ECR Public).
    BadRequest,
    /// 401 `Basic realm="harbor"` (Harbor's scheme switch).
    HarborBasic,
}

/// How manifests answer HEAD.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Head {
    /// With `Docker-Content-Digest`.
    Normal,
    /// Without it (registry.redhat.io, some Nexus).
    NoDigest,
    /// Refused with this status while GET works (Nexus 404, some Harbor setups 405).
    Refused(u16),
}

/// Where blob GETs go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Blobs {
    /// Served by the registry.
    Direct,
    /// A redirect to a presigned URL on the object-store host.
    Store {
        /// 307 or 302.
        status: u16,
        /// An HTML body with the redirect (Quay).
        html: bool,
    },
    /// A 302 with a relative `Location` on the registry host (Artifact Registry).
    Relative,
}

/// The object store behind the redirect, and how it refuses a forwarded `Authorization`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Store {
    /// S3 (and R2, GCS): 400 XML `InvalidArgument`.
    S3,
    /// Azure Blob: 400 XML `InvalidAuthenticationInfo`, with a byte-order mark.
    Azure,
}

/// The body of a 429.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Throttle {
    /// `{"errors":[{"code":"TOOMANYREQUESTS"}]}`, with `Retry-After` when `Some`.
    Json(Option<u64>),
    /// Docker Hub's anti-abuse text.
    Text,
    /// nginx's HTML page (Quay).
    Html,
}

/// What the token service does with credentials it rejects, or with none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TokenRefusal {
    /// This status and body.
    Status(u16, &'static str),
    /// 200 and a token with no access (Harbor, by design).
    EmptyToken,
}

/// One registry's pull path.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The profile's name.
    pub name: &'static str,
    /// The user an account of this registry logs in as.
    pub user: &'static str,
    /// The password as the account's `passwordFile` holds it.
    pub password: &'static str,
    /// How credentials are asked for.
    pub auth: Auth,
    /// The token answer's fields.
    pub token: TokenShape,
    /// `expires_in` in token answers.
    pub expires_in: Option<u64>,
    /// `issued_at` in token answers.
    pub issued_at: bool,
    /// Wrong credentials at the token service.
    pub wrong_credentials: TokenRefusal,
    /// Anonymous token requests for a repository that is not public (`None`: a token with no
    /// access).
    pub anonymous: Option<TokenRefusal>,
    /// Token grants only for repositories that exist (Docker Hub, Quay): a missing one is a
    /// refused scope, never a 404.
    pub grants_need_existence: bool,
    /// An expired or unknown credential.
    pub expired: Refusal,
    /// A valid token that does not cover the repository.
    pub no_scope: Refusal,
    /// A Basic header on a token registry (`None`: accepted, as Harbor does).
    pub basic_on_registry: Option<Refusal>,
    /// `Docker-Content-Digest` on manifest GETs.
    pub get_digest: bool,
    /// Manifest HEADs.
    pub head: Head,
    /// Blob GETs.
    pub blobs: Blobs,
    /// The object store's refusal.
    pub store: Store,
    /// 429s.
    pub throttle: Throttle,
    /// `ratelimit-limit`/`ratelimit-remaining` on manifest GET and HEAD (Docker Hub).
    pub ratelimit_headers: bool,
    /// The 404 error code for a missing manifest (Harbor's `NOT_FOUND`).
    pub not_found_code: &'static str,
    /// Refuses an `Accept` list that lacks the stored type with 404, instead of letting the
    /// registry convert to schema1 (everyone but Quay).
    pub strict_accept: bool,
    /// Serves the OCI 1.1 referrers API, with this content type (Harbor before 2.11 says
    /// `application/json`); `None`: 404, the client must use the fallback tag.
    pub referrers: Option<&'static str>,
}

/// A multi-line service-account JSON, as GCR and Artifact Registry accounts keep it.
pub const JSON_KEY: &str = "{\n  \"type\": \"service_account\",\n  \"project_id\": \"dimsum-zoo\",\n  \"private_key_id\": \"0123456789abcdef\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"dimsum@dimsum-zoo.iam.gserviceaccount.com\"\n}";

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

const DENIED_JSON: &str =
    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;

impl Profile {
    /// Every profile the zoo knows.
    pub const NAMES: [&'static str; 12] = [
        "dockerhub",
        "ghcr",
        "ecr",
        "ecr-public",
        "artifact-registry",
        "gcr",
        "quay",
        "harbor",
        "acr",
        "gitlab",
        "nexus",
        "redhat",
    ];

    /// The profile called `name`.
    pub fn named(name: &str) -> Profile {
        // Distribution's behaviour, which each profile then bends.
        let base = Profile {
            name: "distribution",
            user: "ci",
            password: "pa55word",
            auth: Auth::Bearer {
                host: RealmHost::Registry,
                path: "/token",
                service: Some("\"registry\""),
                scope: None,
                error_param: false,
            },
            token: TokenShape::Token,
            expires_in: Some(300),
            issued_at: false,
            wrong_credentials: TokenRefusal::Status(401, DENIED_JSON),
            anonymous: None,
            grants_need_existence: false,
            expired: Refusal::Challenge,
            no_scope: Refusal::InsufficientScope,
            basic_on_registry: Some(Refusal::Challenge),
            get_digest: true,
            head: Head::Normal,
            blobs: Blobs::Direct,
            store: Store::S3,
            throttle: Throttle::Json(Some(30)),
            ratelimit_headers: false,
            not_found_code: "MANIFEST_UNKNOWN",
            strict_accept: true,
            referrers: None,
        };
        match name {
            "dockerhub" => Profile {
                name: "dockerhub",
                user: "dimsumci",
                password: "dckr_pat_0123456789abcdef",
                auth: Auth::Bearer {
                    host: RealmHost::Auth,
                    path: "/token",
                    service: Some("\"registry.docker.io\""),
                    scope: None,
                    error_param: true,
                },
                token: TokenShape::Both,
                issued_at: true,
                wrong_credentials: TokenRefusal::Status(
                    401,
                    r#"{"details":"incorrect username or password"}"#,
                ),
                grants_need_existence: true,
                blobs: Blobs::Store {
                    status: 307,
                    html: false,
                },
                // R2 refuses a second auth mechanism like S3.
                throttle: Throttle::Text,
                ratelimit_headers: true,
                referrers: Some(OCI_INDEX),
                ..base
            },
            "ghcr" => Profile {
                name: "ghcr",
                user: "dimsum-bot",
                password: "ghp_0123456789abcdefghij",
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/token",
                    service: Some("\"ghcr.io\""),
                    scope: None,
                    error_param: false,
                },
                expires_in: None,
                expired: Refusal::Forbidden,
                // GHCR answers DENIED for a package that does not exist, too.
                grants_need_existence: true,
                no_scope: Refusal::Forbidden,
                basic_on_registry: Some(Refusal::Forbidden),
                blobs: Blobs::Store {
                    status: 307,
                    html: false,
                },
                throttle: Throttle::Json(Some(60)),
                ..base
            },
            "ecr" => Profile {
                name: "ecr",
                user: "AWS",
                password: "eyJwYXlsb2FkIjoiZWNyLXBhc3N3b3JkLTEifQ==",
                auth: Auth::Basic {
                    challenge: r#"Basic realm="https://{registry}/",service="ecr.amazonaws.com""#,
                },
                expired: Refusal::Forbidden,
                get_digest: false,
                blobs: Blobs::Store {
                    status: 307,
                    html: false,
                },
                // assumed: ECR's throttle is Distribution-shaped ("toomanyrequests: Rate
                // exceeded" as docker prints it) with no Retry-After.
                throttle: Throttle::Json(None),
                referrers: Some(OCI_INDEX),
                ..base
            },
            "ecr-public" => Profile {
                name: "ecr-public",
                user: "AWS",
                password: "eyJwYXlsb2FkIjoiZWNyLXB1YmxpYyJ9",
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/token/",
                    service: Some("\"public.ecr.aws\""),
                    scope: Some("aws"),
                    error_param: false,
                },
                // assumed: 1 h tokens announced without expires_in (the page gives `{"token"}`).
                expires_in: None,
                expired: Refusal::BadRequest,
                no_scope: Refusal::BadRequest,
                basic_on_registry: Some(Refusal::BadRequest),
                get_digest: false,
                blobs: Blobs::Store {
                    status: 307,
                    html: false,
                },
                throttle: Throttle::Json(None),
                ..base
            },
            "artifact-registry" => Profile {
                name: "artifact-registry",
                user: "_json_key",
                password: JSON_KEY,
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/v2/token",
                    service: Some("\"{registry}\""),
                    scope: None,
                    error_param: false,
                },
                // assumed: Google's token answer carries `token`, `expires_in` and `issued_at`.
                expires_in: Some(3600),
                issued_at: true,
                blobs: Blobs::Relative,
                ..base
            },
            "gcr" => Profile {
                name: "gcr",
                user: "_json_key",
                password: JSON_KEY,
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/v2/token",
                    // Unquoted since early 2026 (a token, so the literal host: `host:port` is
                    // not one), and no scope as in older challenges.
                    service: Some("gcr.io"),
                    scope: Some(""),
                    error_param: false,
                },
                expires_in: Some(3600),
                // assumed: gcr.io redirects blobs to GCS, which refuses a second auth like S3.
                blobs: Blobs::Store {
                    status: 302,
                    html: false,
                },
                ..base
            },
            "quay" => Profile {
                name: "quay",
                user: "dimsum+ci",
                password: "QUAYROBOTTOKEN0123456789",
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/v2/auth",
                    service: Some("\"quay.io\""),
                    scope: None,
                    error_param: false,
                },
                expires_in: None,
                wrong_credentials: TokenRefusal::Status(
                    401,
                    r#"{"error":"Invalid Username or Password"}"#,
                ),
                grants_need_existence: true,
                // A down-scoped token meets a plain 401 later.
                no_scope: Refusal::Challenge,
                blobs: Blobs::Store {
                    status: 302,
                    html: true,
                },
                throttle: Throttle::Html,
                strict_accept: false,
                ..base
            },
            "harbor" => Profile {
                name: "harbor",
                user: "robot$dimsum+ci",
                password: "Harb0rRobotSecret",
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/service/token",
                    service: Some("\"harbor-registry\""),
                    scope: None,
                    error_param: false,
                },
                expires_in: Some(1800),
                issued_at: true,
                wrong_credentials: TokenRefusal::EmptyToken,
                expired: Refusal::HarborBasic,
                no_scope: Refusal::HarborBasic,
                basic_on_registry: None,
                head: Head::Refused(405),
                not_found_code: "NOT_FOUND",
                referrers: Some("application/json"),
                ..base
            },
            "acr" => Profile {
                name: "acr",
                user: "00000000-0000-0000-0000-000000000000",
                password: "eyJhbGciOiJSUzI1NiJ9.acr-refresh-token.sig",
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/oauth2/token",
                    service: Some("\"{registry}\""),
                    scope: None,
                    error_param: true,
                },
                token: TokenShape::AccessToken,
                expires_in: None,
                blobs: Blobs::Store {
                    status: 307,
                    html: false,
                },
                store: Store::Azure,
                referrers: Some(OCI_INDEX),
                ..base
            },
            "gitlab" => Profile {
                name: "gitlab",
                user: "gitlab+deploy-token-7",
                password: "gldt-0123456789abcdef",
                auth: Auth::Bearer {
                    host: RealmHost::Auth,
                    path: "/jwt/auth",
                    service: Some("\"container_registry\""),
                    scope: None,
                    error_param: false,
                },
                expires_in: None,
                // assumed: GitLab's Rails answers a bad password in plain text.
                wrong_credentials: TokenRefusal::Status(401, "HTTP Basic: Access denied\n"),
                anonymous: Some(TokenRefusal::Status(
                    403,
                    r#"{"message":"403 Forbidden - access to this project is denied"}"#,
                )),
                blobs: Blobs::Store {
                    status: 307,
                    html: false,
                },
                ..base
            },
            // assumed: Nexus's Docker connector challenges Basic (upper-case, as Nexus writes
            // it) and refuses HEAD with a bodiless 404.
            "nexus" => Profile {
                name: "nexus",
                user: "deployer",
                password: "nexus-pa55",
                auth: Auth::Basic {
                    challenge: r#"BASIC realm="Sonatype Nexus Repository Manager""#,
                },
                expired: Refusal::Challenge,
                head: Head::Refused(404),
                ..base
            },
            // assumed: registry.redhat.io's realm is on its own host under a long path, its
            // service `docker-registry`; service-account users carry a `|`.
            "redhat" => Profile {
                name: "redhat",
                user: "7654321|dimsum-ci",
                password: "eyJhbGciOiJSUzUxMiJ9.redhat.sig",
                auth: Auth::Bearer {
                    host: RealmHost::Registry,
                    path: "/auth/realms/rhcc/protocol/redhat-docker-v2/auth",
                    service: Some("\"docker-registry\""),
                    scope: None,
                    error_param: false,
                },
                token: TokenShape::Both,
                issued_at: true,
                head: Head::NoDigest,
                ..base
            },
            other => panic!("no zoo profile {other:?}"),
        }
    }
}
