//! Command-line interface (clap): raw arguments, and where the configuration comes from.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  dimsum --config clouddriver.yml serve                     # JSON-RPC + REST on [::]:8080 (IPv4 too)
  echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getLabels\",\"params\":[\"hub\",\"library/nginx\",\"latest\"]}' | dimsum stdio
  dimsum --config /opt/spinnaker/config/clouddriver.yml history dockerhub library/nginx latest --level 0
  dimsum history my-registry team/app v1.2.3                # all entries, [{\"v1Compatibility\":…}]
  dimsum labels my-registry team/app sha256:3d5e…           # {\"revision\":\"abc123\",…}
  dimsum manifest my-registry team/app v1 --platform linux/arm64
  dimsum origin my-registry team/app v1 --signed-by ci     # {\"revision\":…,\"source\":…,\"evidence\":[…],…}
  dimsum verify my-registry team/app v1 --signed-by release-ci   # {\"signatures\":[…],…}; exit 9 if unsigned
  dimsum image-config my-registry team/app v1              # the config blob as stored
  dimsum platforms my-registry team/app v1                 # [{\"platform\":\"linux/amd64\",\"digest\":…,\"mediaType\":…},…]
  dimsum digest my-registry team/app v1                    # sha256:…

  dimsum --config clouddriver.yml config check             # validate, list accounts (secrets redacted)
  dimsum completions bash > /etc/bash_completion.d/dimsum

These flags also read an environment variable (the flag wins): --config DIMSUM_CONFIG (files
separated by ':'), --profiles SPRING_PROFILES_ACTIVE, --cache-dir DIMSUM_CACHE_DIR,
--no-disk-cache DIMSUM_NO_DISK_CACHE, --log-format DIMSUM_LOG_FORMAT, --log-level DIMSUM_LOG_LEVEL
(then RUST_LOG), serve --listen and probe --listen DIMSUM_LISTEN, stdio --max-line-bytes
DIMSUM_MAX_LINE_BYTES.

Exit status: 0 ok, 1 internal error, 2 bad input (an unknown flag, a malformed value),
3 configuration error, unknown account, or an account whose credentials can never be produced,
4 not found (repository, tag, platform, level), 5 credentials refused by the registry,
6 transient: registry unavailable, rate-limited, timed out or garbled (worth retrying; nothing
else is), 7 not an image, unconvertible or too large, 8 the trigger's digest is not the tag's
image any more, 9 not signed by the --signed-by key, 10 access denied by Fiat (authorize).

Documentation (in the repository): README.md starts here; docs/api.md (commands, REST, JSON-RPC,
errors, exit status), docs/configuration.md (accounts, every dimsum: key), docs/registries.md,
docs/spinnaker.md (Orca stages, pipelines from pushes), docs/origin.md, docs/freshness.md,
docs/operations.md, docs/security.md.";

/// Where `serve` listens unless told: every address, IPv4 and IPv6, port 8080.
pub const DEFAULT_LISTEN: &str = "[::]:8080";

/// dimsum: image labels and legacy schema1 history for Spinnaker pipelines.
#[derive(Debug, Parser)]
#[command(name = "dimsum", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Clouddriver-style YAML with `dockerRegistry.accounts` (repeatable; later files override
    /// earlier ones account by account). Default: ./config.yaml, then config.yaml beside the
    /// executable, then a built-in anonymous Docker Hub account.
    #[arg(
        long = "config",
        short = 'c',
        global = true,
        env = "DIMSUM_CONFIG",
        value_delimiter = ':'
    )]
    pub config: Vec<PathBuf>,

    /// Active Spring profiles, comma-separated: a YAML document with
    /// `spring.config.activate.on-profile` applies only when its profile is active, as Clouddriver
    /// reads it.
    #[arg(long, global = true, env = "SPRING_PROFILES_ACTIVE")]
    pub profiles: Option<String>,

    /// Where manifests and configs are also kept across runs (by digest, checked on every read;
    /// tags are always revalidated). Default for the one-shot commands (history, manifest,
    /// labels, origin, image-config, platforms, digest): $XDG_CACHE_HOME/dimsum, else
    /// ~/.cache/dimsum; serve and stdio keep theirs in memory unless this is given.
    #[arg(long, global = true, env = "DIMSUM_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Keep nothing on disk.
    #[arg(
        long,
        global = true,
        env = "DIMSUM_NO_DISK_CACHE",
        conflicts_with = "cache_dir"
    )]
    pub no_disk_cache: bool,

    /// Log format on stderr.
    #[arg(long, global = true, env = "DIMSUM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or filter (e.g. `debug`, `dimsum=trace`); overrides RUST_LOG. Default: info for
    /// serve, warn otherwise.
    #[arg(long, global = true, env = "DIMSUM_LOG_LEVEL")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `dimsum config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and list its accounts, secrets redacted. Exit 0 when valid,
    /// 3 with every problem listed otherwise.
    Check,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve JSON-RPC (HTTP POST and WebSocket), the REST shim, /healthz, /readyz and /metrics on
    /// one port; reload the configuration on SIGHUP or when a file changes.
    #[command(
        after_help = "See docs/api.md (REST and JSON-RPC), docs/operations.md (deploy, metrics, fleet), docs/freshness.md (/events)."
    )]
    Serve {
        /// Address to listen on. The default `[::]:8080` takes IPv4 and IPv6.
        #[arg(long, env = "DIMSUM_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
    },
    /// Exit 0 if a running `serve` answers `/readyz` with 200 within two seconds, else 1: the
    /// container image's HEALTHCHECK (the image has no shell and no curl).
    #[command(after_help = "See docs/operations.md.")]
    Probe {
        /// The address `serve` listens on; a wildcard is asked on loopback.
        #[arg(long, env = "DIMSUM_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
    },
    /// Serve newline-delimited JSON-RPC 2.0 on stdin/stdout until EOF (logs go to stderr).
    #[command(after_help = "See docs/api.md#json-rpc-methods.")]
    Stdio {
        /// Longest request line accepted, in bytes.
        #[arg(long, env = "DIMSUM_MAX_LINE_BYTES", default_value_t = crate::transport::lines::DEFAULT_MAX_LINE)]
        max_line_bytes: usize,
    },
    /// Print the image's schema1 history: with --level, that entry's v1Compatibility JSON (level 0
    /// is the image config); without, [{"v1Compatibility":"…"},…].
    #[command(after_help = "See docs/api.md#cli and docs/api.md#history.")]
    History {
        /// The image.
        #[command(flatten)]
        image: ImageArgs,
        /// Print only this entry (0 = newest, the image config).
        #[arg(long)]
        level: Option<u64>,
        /// Fail where Docker Distribution 2.8 would have, instead of applying dimsum's extensions.
        #[arg(long)]
        strict: bool,
    },
    /// Print the image manifest exactly as the registry serves it (an index is resolved to one
    /// platform).
    #[command(after_help = "See docs/api.md#cli.")]
    Manifest {
        /// The image.
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Print the image config's labels as a JSON object.
    #[command(after_help = "See docs/api.md#cli.")]
    Labels {
        /// The image.
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Print where the image came from: revision, source, created, version, url, base image,
    /// each with the evidence it was read from (annotations, BuildKit provenance, labels), and
    /// the image's signatures, verified against dimsum.trust.cosignKeys.
    #[command(after_help = "See docs/origin.md.")]
    Origin {
        /// The image.
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Print the signatures and signed attestations of the image and of its index as JSON
    /// ({digest, indexDigest, signatures, attestations}), each saying why it does or does not
    /// verify. Reads manifests only: works for artifacts and images without a config. With
    /// --signed-by, exit status 9 (after printing) unless a signature satisfies that name.
    #[command(after_help = "See docs/origin.md.")]
    Verify {
        /// The image.
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Print the image config blob exactly as the registry stores it (an index is resolved to
    /// one platform), like `crane config`.
    #[command(name = "image-config", after_help = "See docs/api.md#cli.")]
    ImageConfig {
        /// The image.
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Print the images the reference names as a JSON list of {platform, digest, mediaType}:
    /// an index's entries in order, or one entry for a single-platform image.
    #[command(after_help = "See docs/api.md#cli.")]
    Platforms {
        /// The reference.
        #[command(flatten)]
        reference: ReferenceArgs,
    },
    /// Print the digest of the manifest the reference names (an index's own digest for an
    /// index), and nothing else.
    #[command(after_help = "See docs/api.md#cli.")]
    Digest {
        /// The reference.
        #[command(flatten)]
        reference: ReferenceArgs,
    },
    /// Print Fiat's decision on whether USER may read ACCOUNT, as `serve` makes it (exit 0
    /// allowed, 10 denied, 6 Fiat unreachable).
    #[command(after_help = "See docs/security.md.")]
    Authorize {
        /// The Spinnaker user (`anonymous` for Fiat's unrestricted user).
        #[arg(long)]
        user: String,
        /// The account.
        #[arg(long)]
        account: String,
    },
    /// Work with the configuration.
    #[command(after_help = "See docs/configuration.md.")]
    Config {
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// An image in an account.
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// Account name from the configuration (the trigger's `account`).
    pub account: String,
    /// Repository without the registry host, e.g. team/app or library/nginx.
    pub repository: String,
    /// Tag or digest (sha256:…).
    pub reference: String,
    /// Platform for multi-platform images, os/arch[/variant]. Default: linux/amd64.
    #[arg(long)]
    pub platform: Option<String>,
    /// The digest the trigger saw (manifest or config digest): answer for that image, or fail
    /// with exit status 8 if the tag has moved on from it. Empty: none.
    #[arg(long)]
    pub digest: Option<String>,
    /// Answer only if a signature of the image (or its index) verifies and satisfies this key
    /// (dimsum.trust.cosignKeys) or identity (dimsum.trust.identities); otherwise fail with
    /// exit status 9.
    #[arg(long)]
    pub signed_by: Option<String>,
}

/// A reference in an account, answered as named (no platform is chosen).
#[derive(Debug, Args)]
pub struct ReferenceArgs {
    /// Account name from the configuration (the trigger's `account`).
    pub account: String,
    /// Repository without the registry host, e.g. team/app or library/nginx.
    pub repository: String,
    /// Tag or digest (sha256:…).
    pub reference: String,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// These files, in order.
    Files(Vec<PathBuf>),
    /// No file: the built-in Docker Hub account.
    Builtin,
}

/// `--config`/`DIMSUM_CONFIG` if given, else `config.yaml` in `cwd`, else beside `exe`.
pub fn config_source(given: &[PathBuf], cwd: &Path, exe: Option<&Path>) -> ConfigSource {
    if !given.is_empty() {
        return ConfigSource::Files(given.to_vec());
    }
    let candidates = [
        Some(cwd.join("config.yaml")),
        exe.and_then(Path::parent).map(|d| d.join("config.yaml")),
    ];
    match candidates.into_iter().flatten().find(|p| p.is_file()) {
        Some(p) => ConfigSource::Files(vec![p]),
        None => ConfigSource::Builtin,
    }
}

impl Command {
    /// One lookup, then exit.
    pub fn is_one_shot(&self) -> bool {
        matches!(
            self,
            Command::History { .. }
                | Command::Manifest { .. }
                | Command::Labels { .. }
                | Command::Origin { .. }
                | Command::Verify { .. }
                | Command::ImageConfig { .. }
                | Command::Platforms { .. }
                | Command::Digest { .. }
        )
    }
}

/// The disk cache directory: `given`, else for one-shot commands the XDG cache directory from
/// `env`.
pub fn cache_dir(
    given: Option<&Path>,
    one_shot: bool,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if let Some(dir) = given {
        return Some(dir.to_owned());
    }
    if !one_shot {
        return None;
    }
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    match env("XDG_CACHE_HOME").and_then(absolute) {
        Some(base) => Some(base.join("dimsum")),
        None => env("HOME")
            .and_then(absolute)
            .map(|home| home.join(".cache/dimsum")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `--flag VAR` pair the help promises is what clap reads, and no flag reads a variable
    /// the help does not name.
    #[test]
    fn the_environment_variables_the_help_names_are_read() {
        use clap::CommandFactory as _;
        let promised = EXAMPLES
            .split_once("These flags also read")
            .unwrap()
            .1
            .split_once("\n\n")
            .unwrap()
            .0;
        let words: Vec<&str> = promised
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '.'))
            .filter(|w| !w.is_empty())
            .collect();
        let mut pairs: Vec<(String, String)> = words
            .windows(2)
            .filter(|w| {
                w[0].starts_with("--") && w[1].chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
            .map(|w| (w[0].trim_start_matches("--").to_owned(), w[1].to_owned()))
            .collect();
        pairs.sort();
        let root = Cli::command();
        let mut read: Vec<(String, String)> = std::iter::once(&root)
            .chain(root.get_subcommands())
            .flat_map(|c| c.get_arguments())
            .filter_map(|a| {
                let env = a.get_env()?.to_str()?.to_owned();
                Some((a.get_long()?.to_owned(), env))
            })
            .collect();
        read.sort();
        read.dedup();
        assert_eq!(pairs, read);
    }

    #[test]
    fn cache_dir_given_xdg_home_or_none() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let both = env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(
            cache_dir(Some(Path::new("/given")), false, both),
            Some("/given".into())
        );
        assert_eq!(cache_dir(None, true, both), Some("/x/dimsum".into()));
        assert_eq!(cache_dir(None, false, both), None, "serve keeps memory");
        let relative_xdg = env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(
            cache_dir(None, true, relative_xdg),
            Some("/h/.cache/dimsum".into()),
            "XDG says relative paths are ignored"
        );
        assert_eq!(cache_dir(None, true, env(&[])), None);
    }
}
