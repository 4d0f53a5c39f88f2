//! dimsum's TCP transport in-process, on a free loopback port.

use std::path::Path;
use std::sync::Arc;

use dimsum::transport::http::{Limits, serve};
use dimsum::{Config, Dimsum};

/// A running server; stopped on drop.
pub struct Served {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    /// Serves the accounts of `config`.
    pub fn start(config: &Path) -> Served {
        let config = Config::from_paths(&[config.to_owned()]).unwrap();
        let service = Dimsum::new(&config);
        let live = Arc::new(dimsum::reload::Live::new(
            service,
            config.settings.api_token.clone(),
            Vec::new(),
        ));
        // Bound before serving starts, so connections queue instead of being refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, live, Limits::default(), async {
            let _ = stopped.await;
        }));
        Served {
            url,
            stop: Some(stop),
            task,
        }
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
