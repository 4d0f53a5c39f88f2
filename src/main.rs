//! The `dimsum` binary: parse arguments, set up logging on stderr, load configuration, then run
//! one command or a transport until EOF or a shutdown signal.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use dimsum::cache::SharedTier;
use dimsum::cli::{Cli, Command, ConfigCommand, ConfigSource, ImageArgs, LogFormat, ReferenceArgs};
use dimsum::metrics::Metrics;
use dimsum::reload::Live;
use dimsum::rpc::Rpc;
use dimsum::{Config, Dimsum, ImageRequest, history, transport};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let format = cli.log_format;
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            say(format, tracing::Level::ERROR, &format!("{e:#}"));
            ExitCode::from(3)
        }
    }
}

/// One line for the operator on stderr: `dimsum: …` in text, a log event in JSON (so every line
/// on stderr is JSON with `--log-format json`), never both.
fn say(format: LogFormat, level: tracing::Level, message: &str) {
    match (format, level) {
        (LogFormat::Text, _) => eprintln!("dimsum: {message}"),
        (LogFormat::Json, tracing::Level::ERROR) => tracing::error!("{message}"),
        (LogFormat::Json, tracing::Level::WARN) => tracing::warn!("{message}"),
        (LogFormat::Json, _) => tracing::info!("{message}"),
    }
}

/// Logs go to stderr (stdout carries results and stdio JSON-RPC). `--log-level` wins over
/// `RUST_LOG`; without either, `serve` logs requests (info) and the rest only warnings.
fn init_logging(cli: &Cli) {
    let default = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = match &cli.log_level {
        Some(level) => {
            tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| default.into())
        }
        None => {
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into())
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "dimsum", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Probe { listen } = cli.command {
        return Ok(probe(listen));
    }
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let exe = std::env::current_exe().ok();
    let (config, sources) = match dimsum::cli::config_source(&cli.config, &cwd, exe.as_deref()) {
        ConfigSource::Files(paths) => {
            let sources = dimsum::config::Sources {
                paths,
                profiles: cli.profiles.clone(),
            };
            (Config::from_sources(&sources)?, sources)
        }
        ConfigSource::Builtin => {
            say(
                cli.log_format,
                tracing::Level::WARN,
                "no configuration given and no config.yaml found; using the built-in anonymous Docker Hub account \"dockerhub\"",
            );
            (Config::builtin(), dimsum::config::Sources::default())
        }
    };
    if let Command::Authorize { user, account } = &cli.command {
        let Some(settings) = &config.settings.fiat else {
            anyhow::bail!("services.fiat is not enabled: every caller reads every account");
        };
        let fiat = dimsum::fiat::Fiat::new(settings, Arc::new(Metrics::default()));
        let caller = dimsum::fiat::Caller { user: user.clone() };
        let runtime = current_thread()?;
        return Ok(match runtime.block_on(fiat.check(&caller, account)) {
            Ok(()) => {
                println!("allow: {user:?} may read account {account:?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                say(cli.log_format, tracing::Level::ERROR, &e.to_string());
                ExitCode::from(dimsum::error::exit_status(e.code()))
            }
        });
    }
    if let Command::Config {
        command: ConfigCommand::Check,
    } = cli.command
    {
        print!("{}", dimsum::config::describe(&config));
        let runtime = current_thread()?;
        let problems = runtime.block_on(config.problems());
        if problems.is_empty() {
            println!("configuration is valid: {} accounts", config.accounts.len());
            return Ok(ExitCode::SUCCESS);
        }
        println!("configuration has {} problems:", problems.len());
        for p in &problems {
            println!("  {p}");
        }
        return Ok(ExitCode::from(3));
    }
    let disk = match cli.no_disk_cache {
        true => None,
        false => dimsum::cli::cache_dir(
            cli.cache_dir.as_deref(),
            cli.command.is_one_shot(),
            |name| std::env::var_os(name),
        ),
    };
    let disk = disk.as_deref().and_then(SharedTier::disk);
    let metrics = Arc::new(Metrics::default());
    let multi_thread = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match cli.command {
        Command::Serve { listen } => {
            let listener =
                transport::listen(listen).with_context(|| format!("listening on {listen}"))?;
            say(
                cli.log_format,
                tracing::Level::INFO,
                &format!("listening on {}", listener.local_addr()?),
            );
            for problem in config.known_problems() {
                tracing::warn!("configuration: {problem}");
            }
            let tokens = config.settings.api_token.is_some() || !config.settings.callers.is_empty();
            if config.settings.fiat.is_some() && !tokens && !listen.ip().is_loopback() {
                anyhow::bail!(
                    "services.fiat is enabled but no token tells callers apart: beyond loopback every caller would be anonymous to Fiat; set dimsum.auth.tokenFile or dimsum.auth.tokens (docs/security.md)"
                );
            }
            let limits = config.settings.server.clone();
            if config.settings.api_token.is_none() && !listen.ip().is_loopback() {
                say(
                    cli.log_format,
                    tracing::Level::WARN,
                    &format!(
                        "WARNING: listening on {listen} without authentication: anyone who can reach this port can read every configured registry through dimsum's credentials; set dimsum.auth.tokenFile (docs/security.md)"
                    ),
                );
            }
            multi_thread()?.block_on(async {
                let live = Live::start(&config, disk, metrics, sources);
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let watcher = tokio::spawn(live.clone().watch(async move {
                    let mut stopped = stopped;
                    let _ = stopped.wait_for(|s| *s).await;
                }));
                let served =
                    transport::http::serve(listener, live, limits, transport::shutdown_signal())
                        .await;
                let _ = stop.send(true);
                let _ = watcher.await;
                served
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stdio { max_line_bytes } => {
            multi_thread()?.block_on(async {
                let live = Live::start(&config, disk, metrics, sources);
                let methods = Rpc::new(live).into_rpc();
                let stdin = tokio::io::BufReader::with_capacity(64 * 1024, tokio::io::stdin());
                let stdout = tokio::io::stdout();
                transport::lines::serve(methods.into(), stdin, stdout, max_line_bytes).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        command => {
            let runtime = current_thread()?;
            let service = Dimsum::with_shared(&config, disk, metrics);
            Ok(runtime.block_on(one_shot(&service, command, cli.log_format)))
        }
    }
}

/// A runtime for one short piece of work (a lookup, a check, a probe): a single thread starts
/// fastest.
fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `dimsum probe`: 0 when `serve` on `listen` (a wildcard asked on loopback) is ready, else 1.
fn probe(listen: std::net::SocketAddr) -> ExitCode {
    let mut target = listen;
    if target.ip().is_unspecified() {
        // `[::]` takes IPv4 too, and falls back to `0.0.0.0` where there is no IPv6.
        target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let ready = async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .ok()?;
        let response = client
            .get(format!("http://{target}/readyz"))
            .send()
            .await
            .ok()?;
        Some(response.status() == reqwest::StatusCode::OK)
    };
    match current_thread().map(|r| r.block_on(ready)) {
        Ok(Some(true)) => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    }
}

fn request(i: &ImageArgs) -> ImageRequest<'_> {
    ImageRequest {
        account: &i.account,
        repository: &i.repository,
        reference: &i.reference,
        platform: i.platform.as_deref(),
        digest: i.digest.as_deref(),
        signed_by: i.signed_by.as_deref().filter(|k| !k.is_empty()),
    }
}

fn reference(r: &ReferenceArgs) -> ImageRequest<'_> {
    ImageRequest {
        account: &r.account,
        repository: &r.repository,
        reference: &r.reference,
        platform: None,
        digest: None,
        signed_by: None,
    }
}

/// `dimsum verify`: prints the signatures answer, then applies `--signed-by` to it (exit 9).
async fn verify(service: &Dimsum, image: &ImageArgs, format: LogFormat) -> ExitCode {
    let req = request(image);
    let fail = |e: dimsum::Error| {
        say(format, tracing::Level::ERROR, &e.to_string());
        ExitCode::from(dimsum::error::exit_status(e.code()))
    };
    if let Some(name) = req.signed_by
        && let Err(e) = service.known_signer(name)
    {
        return fail(e);
    }
    let answer = match service
        .signatures(ImageRequest {
            signed_by: None,
            ..req
        })
        .await
    {
        Ok(answer) => answer,
        Err(e) => return fail(e),
    };
    let mut bytes = serde_json::to_vec(&*answer).unwrap_or_default();
    bytes.push(b'\n');
    if let Err(e) = write_out(&bytes) {
        say(
            format,
            tracing::Level::ERROR,
            &format!("cannot write the answer to stdout: {e}"),
        );
        return ExitCode::from(1);
    }
    match req
        .signed_by
        .map(|name| Dimsum::vouches(&answer, req, name))
    {
        Some(Err(e)) => fail(e),
        _ => ExitCode::SUCCESS,
    }
}

/// Writes the answer to stdout; a write that fails (a full disk, a closed pipe) is an error.
fn write_out(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Runs one CLI command and prints exactly the bytes the REST shim sends for it.
async fn one_shot(service: &Dimsum, command: Command, format: LogFormat) -> ExitCode {
    let result = match &command {
        Command::History {
            image,
            level: Some(level),
            strict,
        } => service
            .history_level(request(image), *level, history::Options { strict: *strict })
            .await
            .map(|(entry, _)| entry.get().as_bytes().to_vec()),
        Command::History {
            image,
            level: None,
            strict,
        } => service
            .history(request(image), history::Options { strict: *strict })
            .await
            .map(|h| format!("{}\n", h.list.get()).into_bytes()),
        Command::Manifest { image } => service.manifest(request(image)).await.map(|m| m.bytes),
        Command::Labels { image } => service.labels(request(image)).await.map(String::into_bytes),
        Command::Origin { image } => service
            .origin(request(image))
            .await
            .map(|o| serde_json::to_vec(&*o).unwrap_or_default()),
        Command::Verify { image } => return verify(service, image, format).await,
        Command::ImageConfig { image } => service
            .config(request(image))
            .await
            .map(|c| c.bytes.to_vec()),
        Command::Platforms { reference: r } => service
            .platforms(reference(r))
            .await
            .map(|p| serde_json::to_vec(&p).unwrap_or_default()),
        Command::Digest { reference: r } => service
            .digest(reference(r))
            .await
            .map(|d| format!("{}\n", d.digest).into_bytes()),
        Command::Serve { .. }
        | Command::Stdio { .. }
        | Command::Probe { .. }
        | Command::Authorize { .. }
        | Command::Config { .. }
        | Command::Completions { .. } => {
            unreachable!("run handles these")
        }
    };
    match result {
        Ok(bytes) => match write_out(&bytes) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                say(
                    format,
                    tracing::Level::ERROR,
                    &format!("cannot write the answer to stdout: {e}"),
                );
                ExitCode::from(1)
            }
        },
        Err(e) => {
            say(format, tracing::Level::ERROR, &e.to_string());
            ExitCode::from(dimsum::error::exit_status(e.code()))
        }
    }
}
