//! The container image: built from the shipped Dockerfile (twice, to the same id), pushed to a
//! real registry and pulled back, then run as `deploy/kubernetes` runs it, standalone and as
//! Clouddriver's sidecar. What the manifests say (user, group, read-only root, capabilities,
//! privilege escalation, seccomp, env, args, ports, probes, mounts, grace period) is read from
//! them and turned into podman's flags, so the image and the manifests cannot drift apart.

use std::path::{Path, PathBuf};

use serde_json::json;
use serde_yaml::Value;

use crate::harness::podman::Podman;

const TOKEN: &str = "image-test-api-token-0123456789";

/// One container of a manifest, as podman will run it.
struct Layout {
    name: &'static str,
    container: Value,
    pod_security: Value,
    grace: u64,
}

impl Layout {
    fn read(path: &str, name: &'static str) -> Layout {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        let doc: Value = serde_yaml::from_str(&text).unwrap();
        let pod = &doc["spec"]["template"]["spec"];
        let container = pod["containers"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "dimsum")
            .unwrap_or_else(|| panic!("{path}: no dimsum container"))
            .clone();
        Layout {
            name,
            container,
            pod_security: pod["securityContext"].clone(),
            // Kubernetes' default when the manifest leaves it to the pod (the sidecar's pod is
            // Clouddriver's).
            grace: pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30),
        }
    }

    /// A security setting from the container's context, else the pod's.
    fn security(&self, key: &str) -> &Value {
        match &self.container["securityContext"][key] {
            Value::Null => &self.pod_security[key],
            v => v,
        }
    }

    fn env(&self, name: &str) -> String {
        self.container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("{}: no {name}", self.name))
            .to_owned()
    }

    fn port(&self, name: &Value) -> u64 {
        let ports = self.container["ports"].as_sequence().unwrap();
        let port = ports.iter().find(|p| p["name"] == *name).unwrap();
        port["containerPort"].as_u64().unwrap()
    }
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    match request.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap()),
        Err(_) => (0, String::new()),
    }
}

/// Runs `image` as `layout` says, with a configuration naming `registry`, and checks it.
async fn run_as(podman: &Podman, image: &str, layout: &Layout, registry: &str) {
    let c = &layout.container;
    let sc = &c["securityContext"];
    // What Kubernetes enforces, as podman flags; each must be in the manifest.
    let user = layout.security("runAsUser").as_u64().expect("runAsUser");
    let group = layout.security("runAsGroup").as_u64().expect("runAsGroup");
    assert_eq!(
        (user, group),
        (65532, 65532),
        "{}: distroless's nonroot",
        layout.name
    );
    assert_eq!(
        layout.security("runAsNonRoot"),
        &Value::Bool(true),
        "{}",
        layout.name
    );
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{}", layout.name);
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{}", layout.name);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{}", layout.name);
    // podman's default seccomp profile is the runtime default.
    assert_eq!(
        layout.security("seccompProfile")["type"],
        "RuntimeDefault",
        "{}",
        layout.name
    );

    // The mounts, with host directories standing where the volumes would be.
    let host = podman.path().join(layout.name);
    let configs: Vec<String> = layout
        .env("DIMSUM_CONFIG")
        .split(':')
        .map(str::to_owned)
        .collect();
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    let mounted = |path: &str| {
        mounts.iter().any(|m| {
            let at = m["mountPath"].as_str().unwrap();
            path == at || path.starts_with(&format!("{at}/"))
        })
    };
    // A token and a password file where the layout keeps secrets: its secrets volume, else
    // beside the configuration (Clouddriver's config volume holds its password files too).
    let secrets = mounts
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .find(|p| p.contains("secret"))
        .map_or_else(
            || {
                Path::new(&configs[0])
                    .parent()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            },
            str::to_owned,
        );
    let file = |path: &str, text: &str| {
        assert!(mounted(path), "{}: {path} is on no volume", layout.name);
        let on_host = host.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(on_host.parent().unwrap()).unwrap();
        std::fs::write(&on_host, text).unwrap();
        // Secret volumes are read-only to the pod's user; so is everything here.
        std::os::unix::fs::chown(&on_host, Some(65532), Some(65532)).unwrap();
    };
    file(&format!("{secrets}/api-token"), &format!("{TOKEN}\n"));
    file(&format!("{secrets}/registry-password"), "pa55word\n");
    file(
        &configs[0],
        &format!(
            "dockerRegistry:\n  accounts:\n  - {{name: local, address: \"{registry}\", username: ci, passwordFile: {secrets}/registry-password}}\ndimsum:\n  auth: {{tokenFile: {secrets}/api-token}}\n"
        ),
    );
    for more in &configs[1..] {
        file(more, "# clouddriver-local.yml\n");
    }
    let mut args: Vec<String> = vec![
        "run".into(),
        "--detach".into(),
        "--name".into(),
        format!("dimsum-{}", layout.name),
        "--network".into(),
        "host".into(),
        "--user".into(),
        format!("{user}:{group}"),
        "--read-only".into(),
        "--cap-drop".into(),
        "ALL".into(),
        "--security-opt".into(),
        "no-new-privileges".into(),
    ];
    for m in mounts {
        let at = m["mountPath"].as_str().unwrap();
        let source = host.join(at.trim_start_matches('/'));
        if !source.exists() {
            std::fs::create_dir_all(&source).unwrap();
        }
        let mode = if m["readOnly"] == true { "ro" } else { "rw" };
        args.push("--volume".into());
        args.push(format!("{}:{at}:{mode}", source.display()));
    }
    // The manifest's listen address on a free port: the host network is shared with the tests.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for e in c["env"].as_sequence().unwrap() {
        let (name, mut value) = (
            e["name"].as_str().unwrap(),
            e["value"].as_str().unwrap().to_owned(),
        );
        if name == "DIMSUM_LISTEN" {
            let container_port = layout.port(&c["ports"][0]["name"]);
            let (ip, manifest_port) = value.rsplit_once(':').unwrap();
            assert_eq!(manifest_port, container_port.to_string(), "{}", layout.name);
            assert_eq!(ip, "[::]", "{}: every address, IPv4 and IPv6", layout.name);
            value = format!("{ip}:{port}");
        }
        args.push("--env".into());
        args.push(format!("{name}={value}"));
    }
    args.push(image.to_owned());
    args.extend(
        c["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = podman.ok(&args).await;

    // The probes, on IPv4 and IPv6, until ready (bounded).
    let probe = |p: &str| c[p]["httpGet"]["path"].as_str().unwrap().to_owned();
    let (readiness, liveness) = (probe("readinessProbe"), probe("livenessProbe"));
    assert_eq!(layout.port(&c["readinessProbe"]["httpGet"]["port"]), 8080);
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..400 {
        if get(&format!("{base}{readiness}"), None).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let logs =
        || async { String::from_utf8_lossy(&podman.run(&["logs", &id]).await.stderr).into_owned() };
    assert!(ready, "{}: never ready: {}", layout.name, logs().await);
    assert_eq!(
        get(&format!("http://[::1]:{port}{liveness}"), None).await.0,
        200,
        "IPv6"
    );
    // The image's HEALTHCHECK command, inside the container.
    podman
        .ok(&["exec", &id, "/usr/local/bin/dimsum", "probe"])
        .await;
    // The API token is required, and a label is read through the registry's credentials.
    let labels = format!("{base}/local/team/app/v1/labels");
    assert_eq!(get(&labels, None).await.0, 401, "{}", layout.name);
    let (status, body) = get(&labels, Some(TOKEN)).await;
    assert_eq!(status, 200, "{}: {body} {}", layout.name, logs().await);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["revision"],
        "abc123"
    );
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "getLabels", "params": ["local", "team/app", "v1"]});
    let bearer = format!("Bearer {TOKEN}");
    let rpc = crate::harness::post_rpc(&base, &request, &[("authorization", &bearer)]).await;
    assert_eq!(rpc["result"]["revision"], "abc123", "{rpc}");
    let (status, metrics) = get(&format!("{base}/metrics"), None).await;
    assert_eq!(status, 200);
    assert!(metrics.contains("dimsum_http_requests_total"), "{metrics}");
    let inspect = podman
        .ok(&[
            "inspect",
            "--format",
            "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
            &id,
        ])
        .await;
    assert_eq!(inspect, "65532:65532 true");
    // SIGTERM: out cleanly within the grace period (after it podman sends SIGKILL: 137).
    podman
        .ok(&["stop", "--time", &layout.grace.to_string(), &id])
        .await;
    let code = podman
        .ok(&["inspect", "--format", "{{.State.ExitCode}}", &id])
        .await;
    assert_eq!(code, "0", "{}: {}", layout.name, logs().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_image_builds_reproducibly_and_runs_as_kubernetes_runs_it() {
    let podman = Podman::new();
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_dimsum"));
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    podman.import_base(&binary).await;
    let first = podman
        .build(repository, &binary, "localhost/dimsum:one")
        .await;
    let second = podman
        .build(repository, &binary, "localhost/dimsum:two")
        .await;
    assert_eq!(first, second, "two builds of one commit, one image");

    // Through a real registry and back.
    let registry = crate::harness::htpasswd_world().await;
    let host = registry.url().trim_start_matches("http://").to_owned();
    let image = format!("{host}/spinnaker/dimsum:test");
    let pushed = format!("docker://{image}");
    let creds = ["--tls-verify=false", "--creds", "ci:pa55word"];
    // Each build pushed: the registry names both by one manifest digest.
    let mut digests = Vec::new();
    for (tag, build) in [
        ("test", "localhost/dimsum:one"),
        ("again", "localhost/dimsum:two"),
    ] {
        let file = podman.path().join(format!("{tag}.digest"));
        let to = format!("docker://{host}/spinnaker/dimsum:{tag}");
        let digest_file = format!("--digestfile={}", file.display());
        podman
            .ok(&[
                &["push", "--quiet", &digest_file][..],
                &creds,
                &[build, &to],
            ]
            .concat())
            .await;
        digests.push(std::fs::read_to_string(&file).unwrap());
    }
    assert_eq!(
        digests[0], digests[1],
        "two builds of one commit, one digest"
    );
    assert!(digests[0].starts_with("sha256:"), "{digests:?}");
    podman
        .ok(&["rmi", "localhost/dimsum:one", "localhost/dimsum:two"])
        .await;
    podman
        .ok(&[&["pull", "--quiet"][..], &creds, &[pushed.as_str()]].concat())
        .await;
    let pulled = podman
        .ok(&["image", "inspect", "--format", "{{.Id}}", &image])
        .await;
    assert_eq!(
        pulled, first,
        "the registry gave back the image that was built"
    );
    // What the image itself says, for `docker run` without the manifests' flags.
    let config = podman
        .ok(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Env}}",
            &image,
        ])
        .await;
    assert!(
        config.starts_with(r#"65532:65532 ["/usr/local/bin/dimsum"] ["serve"] "#),
        "{config}"
    );
    assert!(config.contains("DIMSUM_LISTEN=[::]:8080"), "{config}");
    // OCI images carry no HEALTHCHECK (Docker's format does, and `docker build` keeps it).
    let dockerfile = std::fs::read_to_string(repository.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(r#"CMD ["/usr/local/bin/dimsum", "probe"]"#),
        "the HEALTHCHECK runs dimsum probe"
    );

    for layout in [
        Layout::read("deploy/kubernetes/standalone/deployment.yaml", "standalone"),
        Layout::read(
            "deploy/kubernetes/sidecar/clouddriver-patch.yaml",
            "sidecar",
        ),
    ] {
        run_as(&podman, &image, &layout, &registry.url()).await;
    }
}

/// `dimsum probe` fails when nothing answers, and asks a wildcard address on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_says_no_when_nothing_is_ready() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listen = closed.to_string();
    let out = crate::harness::run::dimsum(None, &["probe", "--listen", &listen], None).await;
    assert_eq!(out.code, 1, "nothing listens");
    let (_registry, _dir, cfg) = crate::harness::open_world().await;
    let served = crate::harness::server::Served::start(&cfg);
    let port = served.url.rsplit_once(':').unwrap().1.to_owned();
    // A wildcard is asked on loopback, as the image's HEALTHCHECK asks `[::]:8080`.
    let wildcard = format!("[::]:{port}");
    let out = crate::harness::run::dimsum(None, &["probe", "--listen", &wildcard], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
}
