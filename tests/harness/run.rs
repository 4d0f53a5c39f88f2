//! Running the dimsum binary the way scripts do.

use std::path::{Path, PathBuf};

/// What a dimsum run produced.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub code: i32,
    /// Exactly the bytes printed.
    pub stdout: Vec<u8>,
    /// Diagnostics.
    pub stderr: String,
}

impl Output {
    /// stdout as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    /// Asserts success and returns stdout as text.
    pub fn ok(&self) -> String {
        assert_eq!(self.code, 0, "dimsum failed: {}", self.stderr);
        self.text()
    }

    /// Asserts success and parses the list form `[{"v1Compatibility":"…"},…]` + newline.
    pub fn history_list(&self) -> Vec<String> {
        let text = self.ok();
        assert!(
            text.ends_with("]\n"),
            "the list form ends with a newline, like the original"
        );
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        parsed
            .iter()
            .map(|v| v["v1Compatibility"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Asserts a failure with `code` and one line on stderr containing `needle`.
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(self.stdout.is_empty(), "nothing on stdout on failure");
        // Log lines (warnings) may precede it; the error itself is one line.
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("dimsum: "))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one error line on stderr: {:?}",
            self.stderr
        );
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in {:?}",
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }
}

/// Writes a config file into `dir`.
pub fn config(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join(format!("config-{}.yml", std::process::id() ^ rand_suffix()));
    std::fs::write(&path, yaml).unwrap();
    path
}

fn rand_suffix() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A one-account config for a registry at `url`, plus extra account lines.
pub fn account_yaml(name: &str, url: &str, extra: &str) -> String {
    format!(
        "dimsum:\n  retries: 1\n  callTimeoutMillis: 10000\ndockerRegistry:\n  enabled: true\n  accounts:\n  - name: {name}\n    address: {url}\n{extra}"
    )
}

/// Runs `dimsum --config <config> args…` in `cwd`, with a cache directory of its own.
pub async fn dimsum(config: Option<&Path>, args: &[&str], cwd: Option<&Path>) -> Output {
    let cache = tempfile::tempdir().unwrap();
    dimsum_env(
        config,
        args,
        cwd,
        &[("XDG_CACHE_HOME", cache.path().as_os_str())],
    )
    .await
}

/// Runs `dimsum --config <config> args…` in `cwd` with `env` set; nothing else from the test's
/// environment that would change what dimsum does.
pub async fn dimsum_env(
    config: Option<&Path>,
    args: &[&str],
    cwd: Option<&Path>,
    env: &[(&str, &std::ffi::OsStr)],
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args)
        .env_remove("DIMSUM_CONFIG")
        .env_remove("RUST_LOG")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("DIMSUM_CACHE_DIR")
        .env_remove("DIMSUM_NO_DISK_CACHE")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("SPRING_PROFILES_ACTIVE")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("dimsum hung for 60 s")
        .unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `dimsum --config <config> <options…> stdio` with piped stdin, stdout and stderr, killed when
/// dropped.
pub fn stdio_child(config: &std::path::Path, options: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
        .arg("--config")
        .arg(config)
        .args(options)
        .arg("stdio")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Sends JSON-RPC lines to a `dimsum stdio` child, closes stdin, and returns replies by id.
pub async fn stdio(config: &std::path::Path, lines: &[String]) -> (Vec<serde_json::Value>, i32) {
    let mut child = stdio_child(config, &[]);
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
    }
    drop(stdin);
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut replies = Vec::new();
    let read = async {
        while let Some(line) = out.next_line().await.unwrap() {
            replies.push(line);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .expect("stdio hung");
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    (
        replies
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        status.code().unwrap_or(-1),
    )
}

/// A `dimsum serve` process on a free loopback port: the child and `127.0.0.1:<port>`, read from
/// its "listening on" line. Its stderr keeps being drained so it never blocks on a full pipe.
pub async fn serve_process(config: &Path) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dimsum"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("dimsum exited before listening");
            if let Some(addr) = line.strip_prefix("dimsum: listening on ") {
                return addr.to_owned();
            }
        }
    })
    .await
    .expect("dimsum did not listen within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}
