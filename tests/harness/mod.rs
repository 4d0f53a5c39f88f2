//! Test harness: real registries, our token issuer, image builders, a fault server, and a runner
//! for the dimsum binary. Everything listens on 127.0.0.1 ports chosen by the OS.

pub mod fault;
pub mod images;
pub mod redis;
pub mod registry;
pub mod run;
pub mod server;
pub mod token;

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

/// An open registry holding Vector A as `team/app:v1`, and a config naming it account `local`.
pub async fn open_world() -> (registry::Registry, tempfile::TempDir, std::path::PathBuf) {
    let registry = registry::Registry::start(registry::Mode::Open);
    images::Pusher::new(&registry.url(), None)
        .image(
            "team/app",
            "v1",
            images::SCHEMA2,
            images::VA,
            &[images::VA_LAYER],
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = run::config(dir.path(), &run::account_yaml("local", &registry.url(), ""));
    (registry, dir, cfg)
}
