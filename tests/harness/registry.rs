//! A real Docker Distribution 2.8 (`docker-registry`) on a free loopback port.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// How the registry authenticates.
pub enum Mode<'a> {
    /// No auth section.
    Open,
    /// No auth, served over TLS with a self-signed certificate for 127.0.0.1.
    OpenTls,
    /// htpasswd Basic with these users (bcrypt entries written with `htpasswd -B`).
    Htpasswd(&'a [(&'a str, &'a str)]),
    /// Token auth against our issuer.
    Token {
        /// The issuer's token endpoint.
        realm: &'a str,
    },
}

/// The `service` and `issuer` the token registry expects in tokens.
pub const TOKEN_SERVICE: &str = "dimsum-test-registry";
/// The `iss` of our issuer.
pub const TOKEN_ISSUER: &str = "dimsum-test-issuer";

/// A running registry; killed and reaped on drop.
pub struct Registry {
    child: Option<Child>,
    config_path: std::path::PathBuf,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    tls: bool,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry and waits for its "listening on" line.
    pub fn start(mode: Mode<'_>) -> Registry {
        Registry::start_with(mode, "")
    }

    /// Starts an open registry that sends its notifications to `url` with `Authorization:
    /// Bearer <token>`, as events.md configures it.
    pub fn notifying(url: &str, token: &str) -> Registry {
        Registry::start_with(
            Mode::Open,
            &format!(
                "notifications:\n  endpoints:\n    - name: dimsum\n      url: {url}\n      headers:\n        Authorization: [Bearer {token}]\n      timeout: 2s\n      threshold: 5\n      backoff: 100ms\n"
            ),
        )
    }

    /// Starts a registry with `extra` appended to its configuration.
    pub fn start_with(mode: Mode<'_>, extra: &str) -> Registry {
        super::require("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let tls = matches!(mode, Mode::OpenTls);
        let auth = match mode {
            Mode::Open => String::new(),
            Mode::OpenTls => {
                let fixture = |f: &str| {
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/fixtures")
                        .join(f)
                };
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    fixture("registry-tls.crt.pem").display(),
                    fixture("registry-tls.key.pem").display()
                )
            }
            Mode::Htpasswd(users) => {
                super::require("htpasswd", "apache2-utils");
                let mut lines = String::new();
                for (user, pass) in users {
                    let out = Command::new("htpasswd")
                        .args(["-Bbn", user, pass])
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "htpasswd failed");
                    lines.push_str(String::from_utf8(out.stdout).unwrap().trim());
                    lines.push('\n');
                }
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, lines).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: dimsum-test\n    path: {}\n",
                    path.display()
                )
            }
            Mode::Token { realm } => {
                let cert = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/token-issuer.crt.pem");
                format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    cert.display()
                )
            }
        };
        let (http, auth) = if tls {
            (auth, String::new())
        } else {
            (String::new(), auth)
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: dimsum-test\n{http}compatibility:\n  schema1:\n    enabled: true\n{auth}{extra}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let (child, addr) = spawn(&config_path);
        // Later restarts keep this port, so clients configured with it find the registry again.
        let text = std::fs::read_to_string(&config_path)
            .unwrap()
            .replace("127.0.0.1:0", &addr);
        std::fs::write(&config_path, text).unwrap();
        Registry {
            child: Some(child),
            config_path,
            addr,
            tls,
            _dir: dir,
        }
    }

    /// Stops the registry (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        let (child, addr) = spawn(&self.config_path);
        assert_eq!(addr, self.addr);
        self.child = Some(child);
    }
    /// `http://127.0.0.1:<port>` (`https://` for [`Mode::OpenTls`]).
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `docker-registry serve <config>` and waits for its "listening on" line.
fn spawn(config_path: &Path) -> (Child, String) {
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting docker-registry");
    let stderr = child.stderr.take().unwrap();
    let addr = super::first_line(stderr, "docker-registry", |line| {
        let i = line.find("listening on ")?;
        let addr: String = line[i + 13..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | ','))
            .collect();
        Some(addr)
    });
    (child, addr)
}
