//! Test harness: real registries, our token issuer, image builders, a fault server, and a runner
//! for the dimsum binary. Everything listens on 127.0.0.1 ports chosen by the OS.

pub mod fault;
pub mod fiat;
pub mod gate;
pub mod images;
pub mod notary;
pub mod podman;
pub mod redis;
pub mod registry;
pub mod run;
pub mod server;
pub mod sigstore;
pub mod token;
pub mod zoo;

/// `Basic …` for a user and password, as a registry client sends it.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Panics with the Debian package to install when a tool is missing (tests never skip).
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} not found: install the Debian package {package} (scripts/test does)"
    );
}

/// Waits, boundedly, for `check` to hold: for what real parts (a registry's notifications, a
/// server's timeouts, Redis's return) do on their own schedule. Polls every 5 ms for 10 s.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("{what}: not within 10 s");
}

/// Reads `stream` line by line for the process's life (or it blocks on a full pipe) and gives
/// the first line's `pick` result, waiting at most 20 s for it.
pub fn first_line<T: Send + 'static>(
    stream: impl std::io::Read + Send + 'static,
    what: &str,
    pick: impl Fn(&str) -> Option<T> + Send + 'static,
) -> T {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(found) = pick(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(found);
                }
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} did not start"))
}

/// An axum app served on a free loopback port for the test's life; aborted on drop.
pub struct App {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl App {
    /// Serves `app`.
    pub async fn serve(app: axum::Router) -> App {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        App { url, task }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A registry behind htpasswd Basic auth (user `ci`, password `pa55word`) holding Vector A as
/// `team/app:v1`.
pub async fn htpasswd_world() -> registry::Registry {
    let registry = registry::Registry::start(registry::Mode::Htpasswd(&[("ci", "pa55word")]));
    push_app(&registry, Some(basic("ci", "pa55word"))).await;
    registry
}

/// Pushes Vector A to `registry` as `team/app:v1`.
async fn push_app(registry: &registry::Registry, auth: Option<String>) {
    images::Pusher::new(&registry.url(), auth)
        .image(
            "team/app",
            "v1",
            images::SCHEMA2,
            images::VA,
            &[images::VA_LAYER],
        )
        .await;
}

/// GET `url`: the status, the body as JSON (a JSON string of the text when it is not JSON) and
/// the headers.
pub async fn get_full(url: &str) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.unwrap();
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
    (status, value, headers)
}

/// [`get_full`] without the headers.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let (status, body, _) = get_full(url).await;
    (status, body)
}

/// A JSON-RPC request (or batch) POSTed to `url` with these headers; the whole reply.
pub async fn post_rpc(
    url: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let mut request = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = request
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&reply).unwrap()
}

/// An open registry holding Vector A as `team/app:v1`, and a config naming it account `local`.
pub async fn open_world() -> (registry::Registry, tempfile::TempDir, std::path::PathBuf) {
    let registry = registry::Registry::start(registry::Mode::Open);
    push_app(&registry, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = run::config(dir.path(), &run::account_yaml("local", &registry.url(), ""));
    (registry, dir, cfg)
}
