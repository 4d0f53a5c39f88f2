//! A real Redis (`redis-server`, Debian's) on a free loopback port, to be stopped and restarted.

use std::process::{Child, Command, Stdio};

/// A running Redis; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1 (kept across restarts).
    pub port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts one, without persistence, and waits until it accepts connections.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts one with more `redis-server` arguments (e.g. `--requirepass`).
    pub fn start_with(args: &[&str]) -> RedisServer {
        super::require("redis-server", "redis-server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let mut redis = RedisServer {
            child: None,
            port,
            dir,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: nothing is saved, as when a pod dies).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        let stdout = child.stdout.take().unwrap();
        super::first_line(stdout, "redis-server", |line| {
            line.contains("Ready to accept connections").then_some(())
        });
        self.child = Some(child);
    }

    /// A connection for the test itself.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.connect(self.url()).await
    }

    /// A connection for the test itself, to a Redis started with `--requirepass`.
    pub async fn connection_with_password(
        &self,
        password: &str,
    ) -> redis::aio::MultiplexedConnection {
        self.connect(format!("redis://:{password}@127.0.0.1:{}", self.port))
            .await
    }

    async fn connect(&self, url: String) -> redis::aio::MultiplexedConnection {
        redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
