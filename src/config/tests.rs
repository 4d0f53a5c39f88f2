use super::*;

fn env(k: &str) -> Option<String> {
    match k {
        "REG" => Some("registry.example:5000".into()),
        "TIMEOUT" => Some("5000".into()),
        _ => None,
    }
}

fn load(files: &[(&str, &str)]) -> Result<Config, Error> {
    let layers = files
        .iter()
        .map(|(name, text)| Layer::from_reader(name, text.as_bytes(), &env))
        .collect::<Result<Vec<_>, _>>()?;
    Config::from_layers(layers)
}

fn problems(r: Result<Config, Error>) -> Vec<String> {
    match r {
        Err(Error::Invalid(p)) => p,
        other => panic!("expected problems, got {other:?}"),
    }
}

const HALYARD: &str = r#"
server: {port: 7002}
dockerRegistry:
  enabled: true
  primaryAccount: hub
  accounts:
  - name: hub
    requiredGroupMembership: []
    providerVersion: V1
    permissions: {}
    address: https://index.docker.io/v2/
    email: fake.email@spinnaker.io
    cacheIntervalSeconds: 30
    clientTimeoutMillis: 60000
    cacheThreads: 1
    paginateSize: 100
    sortTagsByDate: false
    trackDigests: false
    insecureRegistry: false
    repositories: [library/nginx]
  - name: private
    address: ${REG}
    username: bot
    password: s3cret
    client-timeout-millis: ${TIMEOUT}
    insecure-registry: "true"
"#;

#[test]
fn reads_halyard_output_and_ignores_clouddriver_only_keys() {
    let c = load(&[("clouddriver.yml", HALYARD)]).unwrap();
    let hub = &c.accounts["hub"];
    assert_eq!(hub.endpoint.address.as_str(), "https://index.docker.io/");
    assert!(hub.endpoint.is_docker_hub());
    assert!(hub.credentials.is_anonymous());
    let p = &c.accounts["private"];
    assert_eq!(
        p.endpoint.address.as_str(),
        "https://registry.example:5000/"
    );
    assert_eq!(p.endpoint.timeout, Duration::from_millis(5000));
    assert!(p.endpoint.insecure);
    assert_eq!(
        p.credentials.password,
        PasswordSource::Plain(Secret::new("s3cret"))
    );
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "secrets never in Debug"
    );
}

#[test]
fn later_files_override_account_by_account() {
    let local =
        "docker-registry:\n  accounts:\n  - name: private\n    address: http://127.0.0.1:5000\n";
    let c = load(&[
        ("clouddriver.yml", HALYARD),
        ("clouddriver-local.yml", local),
    ])
    .unwrap();
    assert_eq!(c.accounts.len(), 2);
    assert_eq!(
        c.accounts["private"].endpoint.address.as_str(),
        "http://127.0.0.1:5000/"
    );
    assert!(
        c.accounts["private"].credentials.is_anonymous(),
        "the whole account is replaced"
    );
    let off = "dockerRegistry: {enabled: false}";
    assert!(
        load(&[("a.yml", HALYARD), ("b.yml", off)])
            .unwrap()
            .accounts
            .is_empty()
    );
}

#[test]
fn errors_name_file_account_and_field() {
    let text = r#"
dockerRegistry:
  accounts:
  - name: ecr
    address: https://1234.dkr.ecr.us-east-1.amazonaws.com
    username: AWS
    passwordFile: /var/run/ecr/token
  - name: two
    address: https://a.example
    password: x
    passwordCommand: echo y
  - name: noaddr
  - address: https://anonymous.example
  - name: bad
    address: "ftp://x"
  - name: bad
    address: https://x
  - name: typed
    address: https://x
    insecureRegistry: maybe
"#;
    let p = problems(load(&[("clouddriver-local.yml", text)]));
    let want = [
        "clouddriver-local.yml: accounts[3]: name: missing",
        "clouddriver-local.yml: account \"bad\": name: defined twice in this file",
        "clouddriver-local.yml: account \"ecr\": passwordFile /var/run/ecr/token: No such file or directory",
        "clouddriver-local.yml: account \"noaddr\": address: missing",
        "clouddriver-local.yml: account \"two\": password, passwordCommand: at most one password source may be set",
    ];
    for w in want {
        assert!(p.iter().any(|x| x == w), "missing {w:?} in {p:#?}");
    }
    assert!(
        p.iter().any(
            |x| x.starts_with("clouddriver-local.yml: account \"typed\":") && x.contains("maybe")
        ),
        "{p:#?}"
    );
}

#[test]
fn addresses_and_placeholders() {
    assert_eq!(
        parse_address("registry.example/").unwrap().as_str(),
        "https://registry.example/"
    );
    assert_eq!(
        parse_address("http://h:5000/prefix/v2/").unwrap().as_str(),
        "http://h:5000/prefix"
    );
    assert!(parse_address("https://u:p@h").is_err());
    let p = problems(load(&[(
        "f.yml",
        "dockerRegistry:\n  accounts:\n  - {name: a, address: \"https://bot:hunter2@r.example/v2/\"}\n",
    )]));
    assert_eq!(
        p,
        [
            "f.yml: account \"a\": address \"https://<redacted>@r.example/v2/\": credentials belong in username/password, not in the address"
        ]
    );
    assert!(parse_address("https://").is_err());
    assert!(parse_address("ftp://h").is_err());
    let p = problems(load(&[(
        "f.yml",
        "dockerRegistry:\n  accounts:\n  - {name: a, address: \"${NOPE}\"}\n",
    )]));
    assert_eq!(
        p[0],
        "f.yml: ${NOPE} is not set in the environment and has no default"
    );
    let c = load(&[(
        "f.yml",
        "dockerRegistry:\n  accounts:\n  - {name: a, address: \"http://${NOPE:h}:1\"}\n",
    )])
    .unwrap();
    assert_eq!(c.accounts["a"].endpoint.address.as_str(), "http://h:1/");
}

#[test]
fn secret_references_make_the_account_unusable_not_the_config() {
    let c = load(&[("f.yml", "dockerRegistry:\n  accounts:\n  - {name: a, address: h, username: u, password: \"encrypted:vault!e:x!k:y\"}\n")]).unwrap();
    assert!(
        c.accounts["a"]
            .unusable
            .as_deref()
            .unwrap()
            .contains("use passwordFile instead")
    );
}

#[test]
fn dimsum_section_is_strict() {
    let c = load(&[(
        "f.yml",
        "dimsum:\n  callTimeoutMillis: 1000\n  retries: 0\n",
    )])
    .unwrap();
    assert_eq!(c.settings.call_timeout, Duration::from_millis(1000));
    assert_eq!(c.settings.limits.retries, 0);
    let p = problems(load(&[("f.yml", "dimsum:\n  cacheSize: 1\n")]));
    assert!(p[0].starts_with("dimsum.cacheSize: unknown key"), "{p:?}");
    assert!(load(&[("f.yml", "")]).unwrap().accounts.is_empty());
    assert!(matches!(load(&[("f.yml", "[1")]), Err(Error::Invalid(_))));
}

#[test]
fn redis_and_server_settings() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("pw");
    std::fs::write(&password, "s3cret\n").unwrap();
    let yaml = format!(
        "dimsum:\n  redis:\n    url: rediss://spin-redis:6380/2\n    passwordFile: {}\n  server:\n    maxConnections: 7\n    headerTimeoutMillis: 250\ndockerRegistry:\n  accounts: []\n",
        password.display()
    );
    let config = load(&[("a.yml", &yaml)]).unwrap();
    let redis = config.settings.redis.unwrap();
    assert_eq!(redis.url.as_str(), "rediss://spin-redis:6380/2");
    assert_eq!(redis.password.as_ref().map(Secret::expose), Some("s3cret"));
    assert_eq!(redis.key_prefix, "dimsum:");
    assert_eq!(redis.timeout, Duration::from_millis(200));
    assert_eq!(config.settings.server.max_connections, 7);
    assert_eq!(
        config.settings.server.header_timeout,
        Duration::from_millis(250)
    );
    assert_eq!(config.settings.server.body_timeout, Duration::from_secs(10));
    for (redis, problem) in [
        ("{url: \"redis://:pw@r:6379\"}", "must not hold a password"),
        ("{url: \"http://r:6379\"}", "redis.url must be"),
        ("{keyPrefix: x}", "redis.url is required"),
        (
            "{url: \"redis://r\", passwordFile: /nonexistent/pw}",
            "redis.passwordFile",
        ),
        ("{url: \"redis://r\", hostname: r}", "unknown field"),
    ] {
        let yaml = format!("dimsum:\n  redis: {redis}\ndockerRegistry:\n  accounts: []\n");
        let found = problems(load(&[("a.yml", &yaml)]));
        assert!(
            found.iter().any(|p| p.contains(problem)),
            "{redis}: {found:?}"
        );
    }
}

#[test]
fn trust_keys() {
    use p256::pkcs8::{EncodePublicKey as _, LineEnding};
    let dir = tempfile::tempdir().unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let good = dir.path().join("cosign.pub");
    std::fs::write(&good, pem).unwrap();
    let bad = dir.path().join("bad.pub");
    std::fs::write(
        &bad,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let yaml = |keys: &str| {
        format!("dimsum:\n  trust:\n    cosignKeys: {keys}\ndockerRegistry:\n  accounts: []\n")
    };
    let config = load(&[(
        "a.yml",
        &yaml(&format!(
            "[{{name: ci, publicKeyFile: {}}}]",
            good.display()
        )),
    )])
    .unwrap();
    let names: Vec<&str> = config
        .settings
        .cosign_keys
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(names, ["ci"]);
    for (keys, problem) in [
        (
            format!("[{{name: ci, publicKeyFile: {}}}]", bad.display()),
            "not a PEM ECDSA P-256 public key",
        ),
        (
            "[{name: ci, publicKeyFile: /nonexistent.pub}]".to_owned(),
            "publicKeyFile /nonexistent.pub",
        ),
        (
            "[{name: ci}]".to_owned(),
            "name and publicKeyFile are required",
        ),
        (
            format!(
                "[{{name: ci, publicKeyFile: {0}}}, {{name: ci, publicKeyFile: {0}}}]",
                good.display()
            ),
            "must be non-empty and unique",
        ),
        ("[{name: ci, file: x}]".to_owned(), "unknown field"),
    ] {
        let found = problems(load(&[("a.yml", &yaml(&keys))]));
        assert!(
            found.iter().any(|p| p.contains(problem)),
            "{keys}: {found:?}"
        );
    }
}

#[test]
fn triggers() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("gate-token");
    std::fs::write(&token, "0123456789abcdef-gate\n").unwrap();
    let password = dir.path().join("gate-password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let yaml = |triggers: &str| {
        format!("dimsum:\n  triggers: {triggers}\ndockerRegistry:\n  accounts: []\n")
    };
    let config = load(&[(
        "a.yml",
        &yaml(&format!(
            "{{url: \"http://spin-gate.spinnaker:8084/webhooks/webhook/dimsum\", tokenFile: {}, repositories: [\"team/.*\"], tags: ['v\\d+']}}",
            token.display()
        )),
    )])
    .unwrap();
    let t = config.settings.triggers.unwrap();
    assert_eq!(
        t.authorization.unwrap().expose(),
        "Bearer 0123456789abcdef-gate"
    );
    assert_eq!((t.retry, t.queue), (Duration::from_secs(600), 1024));
    // Anchored: the pattern must match the whole name.
    assert!(t.repositories[0].is_match(b"team/app"));
    assert!(!t.repositories[0].is_match(b"xteam/app"));
    assert!(t.tags[0].is_match(b"v12") && !t.tags[0].is_match(b"v12-rc"));
    let basic = load(&[(
        "a.yml",
        &yaml(&format!(
            "{{url: \"https://gate.example/webhooks/webhook/dimsum\", username: dimsum, passwordFile: {}}}",
            password.display()
        )),
    )])
    .unwrap();
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("dimsum:s3cret")
    );
    assert_eq!(
        basic
            .settings
            .triggers
            .unwrap()
            .authorization
            .unwrap()
            .expose(),
        expected
    );
    for (triggers, problem) in [
        ("{tokenFile: /x}".to_owned(), "triggers.url is required"),
        (
            "{url: \"ftp://gate\"}".to_owned(),
            "triggers.url must be an http(s) URL",
        ),
        (
            "{url: \"http://u:p@gate/x\"}".to_owned(),
            "must not hold credentials",
        ),
        (
            format!(
                "{{url: \"http://gate/x\", tokenFile: {}, username: u}}",
                token.display()
            ),
            "not both",
        ),
        (
            "{url: \"http://gate/x\", repositories: [\"(\"]}".to_owned(),
            "is not a regular expression",
        ),
        (
            "{url: \"http://gate/x\", caFile: /nonexistent.pem}".to_owned(),
            "triggers.caFile",
        ),
        (
            "{url: \"http://gate/x\", retries: 3}".to_owned(),
            "unknown field",
        ),
    ] {
        let found = problems(load(&[("a.yml", &yaml(&triggers))]));
        assert!(
            found.iter().any(|p| p.contains(problem)),
            "{triggers}: {found:?}"
        );
    }
}

#[test]
fn every_bad_value_is_listed_at_once_and_zero_is_refused_where_meaningless() {
    let yaml = "dimsum:\n  callTimeoutMillis: 0\n  retries: ten\n  cache: {maxBytes: lots, tagTtlSeconds: 0}\n  server: {maxConnections: 0, headerTimeoutMillis: -5}\n  events: {prefetch: maybe}\n  cachee: {}\n  redis: {url: \"redis://r\", timeoutMillis: 0}\n";
    let p = problems(load(&[("f.yml", yaml)]));
    for want in [
        "dimsum.callTimeoutMillis: 0 is not allowed here; leave the key out for the default",
        "dimsum.retries: expected a non-negative integer, got \"ten\"",
        "dimsum.cache.maxBytes: expected a non-negative integer, got \"lots\"",
        "dimsum.server.maxConnections: 0 is not allowed here; leave the key out for the default",
        "dimsum.server.headerTimeoutMillis: expected a non-negative integer",
        "dimsum.events.prefetch: expected true or false, got \"maybe\"",
        "dimsum.cachee: unknown key (did you mean \"cache\"?)",
        "dimsum.redis.timeoutMillis: 0 is not allowed here",
    ] {
        assert!(
            p.iter().any(|x| x.starts_with(want)),
            "missing {want:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), 8, "one problem each, and no more: {p:#?}");
    // tagTtlSeconds 0 means something (revalidate every lookup), so it stays allowed.
    let c = load(&[("f.yml", "dimsum:\n  cache: {tagTtlSeconds: 0}\n")]).unwrap();
    assert_eq!(c.settings.cache.tag_ttl, Duration::ZERO);
}

#[test]
fn documents_apply_in_order_and_only_for_their_profile() {
    let text = "\
dockerRegistry:
  accounts:
  - {name: hub, address: https://index.docker.io}
  - {name: dev, address: https://dev.example}
dimsum:
  cache: {maxBytes: 100, tagTtlSeconds: 5}
---
spring:
  config:
    activate:
      on-profile: prod
dockerRegistry:
  accounts:
  - {name: prod, address: https://prod.example}
dimsum:
  cache: {maxBytes: 200}
---
spring: {profiles: '!prod'}
dimsum:
  callTimeoutMillis: 1234
";
    let with = |profiles: Option<&'static str>| {
        let env = move |k: &str| match k {
            "SPRING_PROFILES_ACTIVE" => profiles.map(str::to_owned),
            _ => None,
        };
        Config::from_layers(vec![
            Layer::from_reader("clouddriver.yml", text.as_bytes(), &env).unwrap(),
        ])
        .unwrap()
    };
    let plain = with(None);
    assert_eq!(
        plain.accounts.keys().collect::<Vec<_>>(),
        ["dev", "hub"],
        "the prod document does not apply"
    );
    assert_eq!(plain.settings.call_timeout, Duration::from_millis(1234));
    let prod = with(Some("eu,prod"));
    assert_eq!(
        prod.accounts.keys().collect::<Vec<_>>(),
        ["prod"],
        "a later list replaces the earlier one whole, as Spring binds lists"
    );
    assert_eq!(prod.settings.cache.max_bytes, 200);
    assert_eq!(
        prod.settings.cache.tag_ttl,
        Duration::from_secs(5),
        "mappings merge key by key"
    );
    assert_eq!(
        prod.settings.call_timeout,
        crate::config::DEFAULT_CALL_TIMEOUT
    );
    let p = problems(load(&[(
        "f.yml",
        "dockerRegistry: {accounts: []}\n---\nspring: {profiles: '(a & b) | c'}\n",
    )]));
    assert!(
        p[0].starts_with("f.yml (document 2): spring: profile expression"),
        "{p:?}"
    );
}

#[tokio::test]
async fn config_check_finds_what_loading_lets_through() {
    let text = "dockerRegistry:\n  accounts:\n  - {name: vault, address: h, username: u, password: \"encrypted:vault!e:x!k:y\"}\n  - {name: cmd, address: h2, username: u, passwordCommand: \"exit 3\"}\n  - {name: ok, address: h3}\n";
    let c = load(&[("clouddriver.yml", text)]).unwrap();
    let p = c.problems().await;
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with(
            "account \"vault\": clouddriver.yml: password is a Spinnaker secret reference"
        ),
        "{p:#?}"
    );
    assert!(
        p[1].starts_with("account \"cmd\": passwordCommand failed: exited with exit status: 3"),
        "{p:#?}"
    );
    for (yaml, want) in [
        (
            "dockerRegistry: {accounts: []}\n",
            "no usable account: none is configured",
        ),
        (
            "dockerRegistry: {enabled: false, accounts: [{name: a, address: h}]}\n",
            "no usable account: dockerRegistry.enabled is false",
        ),
        (
            "dockerRegistry: {accounts: [{name: a, address: h, password: \"encrypted:x\"}]}\n",
            "no usable account: all 1 are unusable",
        ),
    ] {
        let p = load(&[("f.yml", yaml)]).unwrap().known_problems();
        assert!(p.iter().any(|x| x.starts_with(want)), "{yaml}: {p:#?}");
    }
    let p = problems(load(&[(
        "f.yml",
        "dimsum: {triggers: {url: \"http://gate/x\", accounts: [locl]}}\ndockerRegistry: {accounts: [{name: local, address: h}]}\n",
    )]));
    assert_eq!(
        p,
        [
            "dimsum.triggers.accounts: \"locl\" is no configured account (did you mean \"local\"?); nothing from it could ever fire"
        ]
    );
    let c = load(&[(
        "f.yml",
        "dimsum: {triggers: {url: \"http://gate/x\"}}\ndockerRegistry: {accounts: [{name: local, address: h}]}\n",
    )])
    .unwrap();
    assert!(c.known_problems()[0].contains("nothing can fire without events.tokenFile"));
    let described = describe(&c);
    for section in [
        "cache:",
        "auth:",
        "events:",
        "server:",
        "redis:",
        "trust:",
        "triggers: http://gate/x",
    ] {
        assert!(described.contains(section), "{section}: {described}");
    }
}

#[test]
fn keyless_trust() {
    let dir = tempfile::tempdir().unwrap();
    let yaml =
        |trust: &str| format!("dimsum:\n  trust:\n{trust}\ndockerRegistry:\n  accounts: []\n");
    let good = yaml(
        "    sigstore: {requireSct: false}\n    identities:\n    - {name: release-ci, issuer: https://token.actions.githubusercontent.com, subjectRegExp: 'https://github\\.com/acme/.*', sourceRepositoryRef: refs/heads/main}",
    );
    let config = load(&[("a.yml", &good)]).unwrap();
    let trust = &config.settings.sigstore;
    assert!(!trust.require_sct);
    assert_eq!(trust.identities.len(), 1);
    assert_eq!(
        trust.identities[0].claims,
        [("sourceRepositoryRef", "refs/heads/main".to_owned())]
    );
    // The default root is the shipped one, SCTs required.
    let config = load(&[("a.yml", &yaml("    identities: []"))]).unwrap();
    assert!(config.settings.sigstore.require_sct);
    assert!(config.settings.sigstore.root.source.contains("public-good"));
    let bad_root = dir.path().join("root.json");
    std::fs::write(&bad_root, r#"{"tlogs": []}"#).unwrap();
    for (trust, problem) in [
        ("    identities:\n    - {name: x, issuer: i, subject: s, sourceRepositoryRf: main}".to_owned(), "\"sourceRepositoryRf\" (did you mean \"sourceRepositoryRef\"?)"),
        ("    identities:\n    - {name: x, issuer: i, issuerRegExp: i, subject: s}".to_owned(), "give issuer or issuerRegExp, one of them"),
        ("    identities:\n    - {name: x, issuer: i}".to_owned(), "give subject or subjectRegExp"),
        ("    identities:\n    - {name: x, issuer: i, subjectRegExp: '('}".to_owned(), "subjectRegExp is not a regular expression"),
        ("    identities:\n    - {issuer: i, subject: s}".to_owned(), "name is required"),
        ("    identities:\n    - {name: x, issuer: i, subject: s}\n    - {name: x, issuer: j, subject: t}".to_owned(), "identities[1]: the name \"x\" is already"),
        ("    sigstore: {requireSCT: true}".to_owned(), "unknown field"),
        ("    sigstore: {requireSct: 1}".to_owned(), "requireSct"),
        (format!("    sigstore: {{trustedRootFile: {}}}", bad_root.display()), "trustedRootFile: "),
        ("    sigstore: {trustedRootFile: /nonexistent.json}".to_owned(), "/nonexistent.json"),
    ] {
        let found = problems(load(&[("a.yml", &yaml(&trust))]));
        assert!(found.iter().any(|p| p.contains(problem)), "{trust}: {found:?}");
    }
}
