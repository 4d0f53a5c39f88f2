//! The registry zoo: one test registry that takes a [`Profile`] and reproduces that registry's
//! pull path (challenges, token answers, refusals, HEAD, redirects, rate limits, error bodies) in
//! front of a real Distribution registry that holds the images. Each quirk is enforced, so a
//! client that ignores it fails.
//!
//! Three HTTPS hosts, as in real life: the registry on 127.0.0.1, a token realm on 127.0.0.2
//! for the registries whose realm lives elsewhere (Docker Hub, GitLab), and an object store on
//! 127.0.0.3 behind blob redirects, which refuses any request carrying `Authorization` (400, as
//! S3, R2 and Azure Blob do) and any presigned URL used twice. Every request is recorded with its
//! host and `Authorization`, so tests can say where credentials went.
//!
//! Access: the profile's user reads every repository but those under `forbidden/`; anyone reads
//! those under `public/`.

mod handlers;
pub mod profile;
mod tls;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use self::profile::Profile;

/// Which zoo host saw a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// The registry (127.0.0.1).
    Registry,
    /// The token realm on another host (127.0.0.2).
    Auth,
    /// The object store (127.0.0.3).
    Store,
}

/// One request the zoo answered.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Where.
    pub host: Host,
    /// `GET`, `HEAD`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// What a token grants.
struct Grant {
    /// Every repository (ECR Public's `aws` scope).
    all: bool,
    repositories: Vec<String>,
    /// Tokens of an older generation are expired.
    generation: u64,
}

/// Zoo state, shared by the three hosts and inspected by tests.
pub struct ZooState {
    /// The profile.
    pub profile: Profile,
    backing: String,
    http: reqwest::Client,
    registry_host: String,
    auth_host: String,
    store_host: String,
    password: Mutex<String>,
    tokens: Mutex<HashMap<String, Grant>>,
    generation: AtomicU64,
    issued: AtomicU64,
    throttled: AtomicUsize,
    presigned: Mutex<HashSet<String>>,
    ratelimit_remaining: AtomicU64,
    echo_credentials: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

/// A running zoo registry; its hosts stop on drop.
pub struct Zoo {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// State.
    pub state: Arc<ZooState>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Binds a free port on `ip`.
async fn bind(ip: &str) -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

impl Zoo {
    /// Starts `profile` in front of the Distribution registry at `backing` (`http://…`).
    pub async fn start(profile: Profile, backing: &str) -> Zoo {
        let (registry, registry_host) = bind("127.0.0.1").await;
        let (auth, auth_host) = bind("127.0.0.2").await;
        let (store, store_host) = bind("127.0.0.3").await;
        let state = Arc::new(ZooState {
            password: Mutex::new(profile.password.to_owned()),
            profile,
            backing: backing.to_owned(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            registry_host: registry_host.clone(),
            auth_host,
            store_host,
            tokens: Mutex::default(),
            generation: AtomicU64::new(0),
            issued: AtomicU64::new(0),
            throttled: AtomicUsize::new(0),
            presigned: Mutex::default(),
            ratelimit_remaining: AtomicU64::new(100),
            echo_credentials: AtomicBool::new(false),
            seen: Mutex::default(),
        });
        let app = |host: Host| {
            axum::Router::new()
                .fallback(handlers::handle)
                .with_state((state.clone(), host))
        };
        let tasks = vec![
            tls::serve(registry, app(Host::Registry)),
            tls::serve(auth, app(Host::Auth)),
            tls::serve(store, app(Host::Store)),
        ];
        Zoo {
            url: format!("https://{registry_host}"),
            state,
            tasks,
        }
    }

    /// The account lines for this registry: its address, the profile's user, the password in
    /// `password_file` (written here, with a trailing newline as editors and `aws ecr
    /// get-login-password > file` leave it), and `insecureRegistry` for the generated certificate.
    pub fn account_lines(&self, password_file: &Path) -> String {
        std::fs::write(password_file, format!("{}\n", self.password())).unwrap();
        format!(
            "    username: {}\n    passwordFile: {}\n    insecureRegistry: true\n",
            self.state.profile.user,
            password_file.display()
        )
    }

    /// The password the registry accepts now.
    pub fn password(&self) -> String {
        self.state.password.lock().unwrap().clone()
    }

    /// Changes the password (a rotated ECR token): the old one is refused from now on.
    pub fn set_password(&self, password: &str) {
        *self.state.password.lock().unwrap() = password.to_owned();
    }

    /// Every token issued so far dies now, long before the lifetime it was announced with.
    pub fn expire_tokens(&self) {
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The next `n` manifest requests get the profile's 429.
    pub fn throttle(&self, n: usize) {
        self.state.throttled.store(n, Ordering::SeqCst);
    }

    /// Refusals quote the `Authorization` they were shown (a registry that echoes secrets).
    pub fn echo_credentials(&self) {
        self.state.echo_credentials.store(true, Ordering::SeqCst);
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.state.issued.load(Ordering::SeqCst)
    }

    /// The requests answered so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Forgets the requests answered so far.
    pub fn clear_seen(&self) {
        self.state.seen.lock().unwrap().clear();
    }
}

impl Drop for Zoo {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
