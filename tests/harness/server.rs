//! dimsum's TCP transport in-process, on a free loopback port.

use std::path::Path;
use std::sync::Arc;

use dimsum::Config;
use dimsum::reload::Live;
use dimsum::transport::http::serve;

/// A running server; stopped on drop.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The live service, for its counters.
    pub live: Arc<Live>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Serves the accounts of `config`.
    pub fn start(config: &Path) -> Served {
        let (listener, _) = Served::bind();
        Served::start_on(listener, config)
    }

    /// A listener on a free loopback port and its `http://` URL: bound before serving starts,
    /// so connections queue instead of being refused, and so a registry can be told the URL
    /// before the configuration naming that registry exists.
    pub fn bind() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        (listener, url)
    }

    /// Serves the accounts of `config` on `listener`.
    pub fn start_on(listener: std::net::TcpListener, config: &Path) -> Served {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = Config::from_paths(&[config.to_owned()]).unwrap();
        let metrics = Arc::new(dimsum::metrics::Metrics::default());
        let live = Live::start(&config, None, metrics, Vec::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = config.settings.server.clone();
        let task = tokio::spawn(serve(listener, live.clone(), limits, async {
            let _ = stopped.await;
        }));
        Served {
            url,
            live,
            stop: Some(stop),
            task,
        }
    }

    /// The service's counters.
    pub fn metrics(&self) -> Arc<dimsum::metrics::Metrics> {
        self.live.current().metrics().clone()
    }

    /// A JSON-RPC call over HTTP: the whole reply.
    pub async fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        super::post_rpc(&self.url, &body, &[]).await
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        self.url.replacen("http", "ws", 1)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
