//! Configuration: Clouddriver's `dockerRegistry` account YAML, read verbatim, plus dimsum's own
//! optional `dimsum:` section.
//!
//! Two stages: [`RawAccount`] mirrors Clouddriver's shape (camelCase or kebab-case keys, unknown
//! keys ignored), and [`Config`] is the validated result (addresses parsed, password sources
//! checked). Every account's errors are collected, not just the first. Several files apply in
//! order; a later file's account replaces an earlier one of the same name.
//!
//! Honoured account keys: `name`, `address`, `username`, `password`, `passwordFile`,
//! `passwordCommand`, `insecureRegistry`, `clientTimeoutMillis`. Every other Clouddriver key
//! (`email`, `repositories`, `cacheThreads`, `trackDigests`, `permissions`, …) is accepted and ignored:
//! they steer Clouddriver's caching agents, which dimsum does not have.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_yaml::Value;
use url::Url;

use crate::credentials::{Credentials, PasswordSource, Secret};
use crate::registry::Endpoint;

/// Clouddriver's default `clientTimeoutMillis`.
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_millis(60_000);
/// dimsum's default bound on one whole call, shorter than Orca's 20 s webhook read timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(15_000);
/// The account used when no configuration exists.
pub const DEFAULT_ACCOUNT: &str = "dockerhub";
/// Its address: Spinnaker's documented Docker Hub address.
pub const DEFAULT_ADDRESS: &str = "https://index.docker.io";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accounts by name.
    pub accounts: BTreeMap<String, Account>,
    /// dimsum's own settings.
    pub settings: Settings,
    /// `dockerRegistry.enabled` (false: no account is read, as Clouddriver reads none).
    pub enabled: bool,
}

/// One usable (or knowingly unusable) account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// `name`.
    pub name: String,
    /// Where the registry is.
    pub endpoint: Endpoint,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Why this account cannot be used (a secret reference dimsum cannot resolve), if so.
    pub unusable: Option<String>,
}

/// One `dockerRegistry.accounts[]` entry in Clouddriver's shape. Unknown keys are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAccount {
    /// Required; the trigger's `account`. Read from the raw entry when layering (a later file's
    /// account replaces an earlier one of the same name), so only declared here for the reference.
    #[serde(rename = "name")]
    _name: Option<String>,
    /// Required; registry base URL. Without a scheme, `https://` is assumed.
    address: Option<String>,
    /// Basic user.
    username: Option<String>,
    /// Plain password.
    password: Option<String>,
    /// File holding the password: read whole, trailing whitespace trimmed (a multi-line
    /// `_json_key` stays whole), re-read on use.
    #[serde(alias = "password-file")]
    password_file: Option<String>,
    /// `bash -c` command whose trimmed stdout is the password; re-run on use.
    #[serde(alias = "password-command")]
    password_command: Option<String>,
    /// Accept invalid TLS certificates. Default false.
    #[serde(default, alias = "insecure-registry", deserialize_with = "flex_bool")]
    insecure_registry: Option<bool>,
    /// Per-request bound in milliseconds. Default 60000; 0 means the default.
    #[serde(
        default,
        alias = "client-timeout-millis",
        deserialize_with = "flex_u64"
    )]
    client_timeout_millis: Option<u64>,
    /// Accepted; Clouddriver never reads it either.
    #[serde(alias = "dockerconfig-file")]
    dockerconfig_file: Option<String>,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// One or more problems, each naming file, account and field.
    #[error("{}", listed(.0))]
    Invalid(Vec<String>),
}

/// Where the configuration comes from: files in order, and the Spring profiles that decide which
/// of their documents apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// The files, in order (none: the built-in account, nothing to reload).
    pub paths: Vec<PathBuf>,
    /// Active profiles, comma-separated (`--profiles`); `None`: `SPRING_PROFILES_ACTIVE` as the
    /// process has it at each load.
    pub profiles: Option<String>,
}

impl From<Vec<PathBuf>> for Sources {
    fn from(paths: Vec<PathBuf>) -> Sources {
        Sources {
            paths,
            profiles: None,
        }
    }
}

/// One problem as it is, several as a count and an indented list.
fn listed(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => format!(
            "{} configuration problems:\n  {}",
            many.len(),
            many.join("\n  ")
        ),
    }
}

/// One file's contribution, before merging.
#[derive(Debug, Default)]
pub struct Layer {
    name: String,
    enabled: Option<bool>,
    accounts: Vec<(String, Value)>,
    settings: serde_yaml::Mapping,
    /// Spinnaker's own `services:` (dimsum reads `services.fiat`).
    services: serde_yaml::Mapping,
    problems: Vec<String>,
}

impl Layer {
    /// Parses one file's text; `name` labels its errors; `env` resolves `${VAR}` placeholders.
    pub fn from_reader(
        name: &str,
        mut reader: impl std::io::Read,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Layer, Error> {
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| Error::Invalid(vec![format!("{name}: {e}")]))?;
        let mut layer = Layer {
            name: name.to_owned(),
            ..Layer::default()
        };
        let active = profiles::active(env("SPRING_PROFILES_ACTIVE"));
        for (i, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            // Spring reads a file's documents in order, later ones overriding earlier ones.
            let at = match i {
                0 => name.to_owned(),
                i => format!("{name} (document {})", i + 1),
            };
            let root = match Value::deserialize(document) {
                Ok(Value::Null) => continue,
                Ok(v) => v,
                Err(e) => return Err(Error::Invalid(vec![format!("{at}: not valid YAML: {e}")])),
            };
            if let Some(condition) = profiles::condition(&root) {
                match profiles::holds(condition, &active) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        layer.problems.push(format!("{at}: spring: {e}"));
                        continue;
                    }
                }
            }
            layer.read_document(&at, root, env);
        }
        let mut seen = std::collections::HashSet::new();
        for (account, _) in &layer.accounts {
            if !seen.insert(account.clone()) {
                layer.problems.push(format!(
                    "{name}: account {account:?}: name: defined twice in this file"
                ));
            }
        }
        Ok(layer)
    }

    /// Adds one applying document: `dimsum:` merged key by key into what came before, and
    /// `dockerRegistry.accounts` replacing the earlier list whole, as Spring replaces lists.
    fn read_document(&mut self, at: &str, mut root: Value, env: &dyn Fn(&str) -> Option<String>) {
        let problems = &mut self.problems;
        resolve_placeholders(&mut root, env, &mut |p| problems.push(format!("{at}: {p}")));
        let Value::Mapping(root) = root else {
            self.problems
                .push(format!("{at}: the top level must be a mapping"));
            return;
        };
        for (key, into) in [
            ("dimsum", &mut self.settings),
            ("services", &mut self.services),
        ] {
            match root.get(key) {
                Some(Value::Mapping(m)) => merge(into, m.clone()),
                None | Some(Value::Null) => {}
                Some(_) => self
                    .problems
                    .push(format!("{at}: {key}: must be a mapping")),
            }
        }
        let registry = root
            .get("dockerRegistry")
            .or_else(|| root.get("docker-registry"));
        let Some(Value::Mapping(registry)) = registry else {
            return;
        };
        match registry.get("enabled") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => self.enabled = Some(*b),
            Some(other) => match other.as_str().map(str::trim) {
                Some("true") => self.enabled = Some(true),
                Some("false") => self.enabled = Some(false),
                _ => self.problems.push(format!(
                    "{at}: dockerRegistry.enabled: expected true or false, got {other:?}"
                )),
            },
        }
        match registry.get("accounts") {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(items)) => {
                self.accounts.clear();
                for (i, item) in items.iter().enumerate() {
                    match item.get("name").and_then(Value::as_str).map(str::trim) {
                        Some(n) if !n.is_empty() => {
                            self.accounts.push((n.to_owned(), item.clone()))
                        }
                        _ => self
                            .problems
                            .push(format!("{at}: accounts[{i}]: name: missing")),
                    }
                }
            }
            Some(_) => self
                .problems
                .push(format!("{at}: dockerRegistry.accounts must be a list")),
        }
    }

    /// Reads and parses a file.
    pub fn from_path(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, Error> {
        let file = std::fs::File::open(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Layer::from_reader(
            &path.display().to_string(),
            std::io::BufReader::new(file),
            env,
        )
    }
}

impl Config {
    /// Merges layers in order and validates the result.
    pub fn from_layers(layers: Vec<Layer>) -> Result<Config, Error> {
        let mut problems = Vec::new();
        let mut accounts: BTreeMap<String, (String, Value)> = BTreeMap::new();
        let mut settings = serde_yaml::Mapping::new();
        let mut services = serde_yaml::Mapping::new();
        let mut enabled = true;
        for layer in layers {
            problems.extend(layer.problems);
            if let Some(e) = layer.enabled {
                enabled = e;
            }
            merge(&mut settings, layer.settings);
            merge(&mut services, layer.services);
            for (name, value) in layer.accounts {
                accounts.insert(name, (layer.name.clone(), value));
            }
        }
        let mut settings = RawSettings::read(settings, &mut problems).validate(&mut problems);
        settings.fiat = settings::fiat(services.get("fiat"), &mut problems);
        let mut valid = BTreeMap::new();
        if enabled {
            for (name, (file, value)) in accounts {
                match Account::validate(&file, &name, value) {
                    Ok(account) => {
                        valid.insert(name, account);
                    }
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: account {name:?}: {e}")),
                    ),
                }
            }
        }
        if let Some(triggers) = &settings.triggers {
            for name in &triggers.accounts {
                if !valid.contains_key(name) {
                    let known: Vec<&str> = valid.keys().map(String::as_str).collect();
                    let hint = dimsum_rest::params::closest(name, &known)
                        .map(|k| format!(" (did you mean {k:?}?)"))
                        .unwrap_or_default();
                    problems.push(format!(
                        "dimsum.triggers.accounts: {name:?} is no configured account{hint}; nothing from it could ever fire"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(Config {
                accounts: valid,
                settings,
                enabled,
            })
        } else {
            Err(Error::Invalid(problems))
        }
    }

    /// Loads `paths` in order, resolving placeholders (and the active Spring profiles) from the
    /// process environment.
    pub fn from_paths(paths: &[PathBuf]) -> Result<Config, Error> {
        Config::from_sources(&Sources::from(paths.to_vec()))
    }

    /// Loads the files of `sources` in order with its profiles.
    pub fn from_sources(sources: &Sources) -> Result<Config, Error> {
        let env = |k: &str| match (k, &sources.profiles) {
            ("SPRING_PROFILES_ACTIVE", Some(profiles)) => Some(profiles.clone()),
            _ => std::env::var(k).ok(),
        };
        let layers = sources
            .paths
            .iter()
            .map(|p| Layer::from_path(p, &env))
            .collect::<Result<Vec<_>, _>>()?;
        Config::from_layers(layers)
    }

    /// The built-in default: one anonymous Docker Hub account.
    pub fn builtin() -> Config {
        let address = Url::parse(DEFAULT_ADDRESS).unwrap_or_else(|_| unreachable!("constant URL"));
        let account = Account {
            name: DEFAULT_ACCOUNT.to_owned(),
            endpoint: Endpoint {
                address,
                insecure: false,
                timeout: DEFAULT_CLIENT_TIMEOUT,
            },
            credentials: Credentials::anonymous(),
            unusable: None,
        };
        Config {
            accounts: BTreeMap::from([(DEFAULT_ACCOUNT.to_owned(), account)]),
            settings: Settings::default(),
            enabled: true,
        }
    }
}

impl Account {
    fn validate(file: &str, name: &str, value: Value) -> Result<Account, Vec<String>> {
        let raw: RawAccount = serde_yaml::from_value(value).map_err(|e| vec![e.to_string()])?;
        let mut errors = Vec::new();
        let mut unusable = None;
        let address = match raw.address.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push("address: missing".to_owned());
                None
            }
            Some(a) => match parse_address(a) {
                Ok(url) => Some(url),
                Err(e) => {
                    errors.push(format!("address {:?}: {e}", without_userinfo(a)));
                    None
                }
            },
        };
        let sources = [
            ("password", raw.password.is_some()),
            ("passwordFile", raw.password_file.is_some()),
            ("passwordCommand", raw.password_command.is_some()),
        ];
        let set: Vec<&str> = sources
            .iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| *n)
            .collect();
        if set.len() > 1 {
            errors.push(format!(
                "{}: at most one password source may be set",
                set.join(", ")
            ));
        }
        for (field, value) in [
            ("username", &raw.username),
            ("password", &raw.password),
            ("passwordFile", &raw.password_file),
            ("passwordCommand", &raw.password_command),
        ] {
            if value.as_deref().is_some_and(is_secret_reference) {
                unusable = Some(format!(
                    "{file}: {field} is a Spinnaker secret reference (encrypted:…), which dimsum cannot resolve; \
                     write the secret to a file and use passwordFile instead (docs/configuration.md)"
                ));
            }
        }
        // Precedence as in Clouddriver: password, then passwordCommand, then passwordFile.
        let password = if let Some(p) = raw.password {
            PasswordSource::Plain(Secret::new(p))
        } else if let Some(c) = raw.password_command {
            PasswordSource::Command(c)
        } else if let Some(f) = raw.password_file {
            let path = PathBuf::from(f);
            if unusable.is_none() {
                if let Err(e) = std::fs::metadata(&path) {
                    errors.push(format!(
                        "passwordFile {}: {}",
                        path.display(),
                        io_message(&e)
                    ));
                }
            }
            PasswordSource::File(path)
        } else {
            PasswordSource::None
        };
        if raw.dockerconfig_file.is_some() {
            tracing::warn!(
                account = name,
                "dockerconfigFile is ignored (Clouddriver never reads it either)"
            );
        }
        let timeout = match raw.client_timeout_millis {
            Some(ms) if ms > 0 => Duration::from_millis(ms),
            _ => DEFAULT_CLIENT_TIMEOUT,
        };
        match (address, errors.is_empty()) {
            (Some(address), true) => Ok(Account {
                name: name.to_owned(),
                endpoint: Endpoint {
                    address,
                    insecure: raw.insecure_registry.unwrap_or(false),
                    timeout,
                },
                credentials: Credentials {
                    username: raw.username,
                    password,
                },
                unusable,
            }),
            _ => Err(errors),
        }
    }
}

/// Spring's merge of one property source over another: mappings key by key, all the way down;
/// anything else (a scalar, a list) replaced whole.
fn merge(into: &mut serde_yaml::Mapping, over: serde_yaml::Mapping) {
    for (key, value) in over {
        match (into.get_mut(&key), value) {
            (Some(Value::Mapping(inner)), Value::Mapping(over)) => merge(inner, over),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn is_secret_reference(s: &str) -> bool {
    s.starts_with("encrypted:") || s.starts_with("encryptedFile:")
}

/// `std::io::Error`'s message without the "(os error 2)" suffix.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `address` with any `user:password@` replaced, so a refusal never prints the password back.
fn without_userinfo(address: &str) -> String {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), address),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>@{}", &rest[at + 1..]),
        None => address.to_owned(),
    }
}

/// Clouddriver's normalisation (spinnaker.md §1.3) plus the rule that a scheme-less
/// address means `https://`.
fn parse_address(address: &str) -> Result<Url, String> {
    let (scheme, rest) = address.split_once("://").unwrap_or(("https", address));
    let mut rest = rest.strip_suffix('/').unwrap_or(rest);
    rest = rest.strip_suffix("/v2").unwrap_or(rest);
    if rest.is_empty() {
        return Err("no host".to_owned());
    }
    let url = Url::parse(&format!("{scheme}://{rest}")).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials belong in username/password, not in the address".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an address has no query or fragment".to_owned());
    }
    Ok(url)
}

/// Replaces `${NAME}` and `${NAME:default}` in every string. A string that was one placeholder
/// is re-read as a YAML scalar, so `${TIMEOUT:5000}` can fill a number.
fn resolve_placeholders(
    v: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    problem: &mut dyn FnMut(String),
) {
    match v {
        Value::String(s) if s.contains("${") => {
            let whole = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let Some(end) = rest[start..].find('}') else {
                    out.push_str(&rest[start..]);
                    rest = "";
                    break;
                };
                let inner = &rest[start + 2..start + end];
                let (key, default) = match inner.split_once(':') {
                    Some((k, d)) => (k, Some(d)),
                    None => (inner, None),
                };
                match env(key).or_else(|| default.map(str::to_owned)) {
                    Some(value) => out.push_str(&value),
                    None => problem(format!(
                        "${{{key}}} is not set in the environment and has no default"
                    )),
                }
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            *v = match serde_yaml::from_str::<Value>(&out) {
                Ok(scalar @ (Value::Bool(_) | Value::Number(_))) if whole => scalar,
                _ => Value::String(out),
            };
        }
        Value::Sequence(items) => items
            .iter_mut()
            .for_each(|i| resolve_placeholders(i, env, problem)),
        Value::Mapping(m) => m
            .iter_mut()
            .for_each(|(_, i)| resolve_placeholders(i, env, problem)),
        _ => {}
    }
}

/// Spring binds `"true"` as a boolean; so do we.
fn flex_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected true or false, got {s:?}"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected true or false, got {other:?}"
        ))),
    }
}

/// Spring binds `"5000"` as a number; so do we.
fn flex_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a non-negative integer, got {n}"))
        }),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("expected a non-negative integer, got {s:?}"))
        }),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a non-negative integer, got {other:?}"
        ))),
    }
}

mod check;
mod profiles;
mod scalar;
mod settings;
#[cfg(test)]
mod tests;

pub use check::describe;
use settings::RawSettings;
pub use settings::{
    CacheSettings, CallerToken, DEFAULT_EVENTS_QUIET, Events, FiatSettings, LIVE, RedisSettings,
    ServerLimits, Settings, Triggers, Who,
};
