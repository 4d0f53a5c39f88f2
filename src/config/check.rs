//! What `dimsum config check` reports: the effective settings of every section, secrets
//! redacted, and every problem that loading alone lets through because the other accounts still
//! work (an account that can never produce credentials, no usable account at all, triggers that
//! can never fire). `serve` logs the same problems at start.

use std::fmt::Write as _;

use super::Config;
use crate::credentials::PasswordSource;

impl Config {
    /// Every problem a working configuration still has, each naming file or section, account,
    /// key and reason: [`Config::known_problems`], and each account whose credentials cannot be
    /// produced now (each `passwordCommand` run once, each `passwordFile` read, as a lookup would).
    pub async fn problems(&self) -> Vec<String> {
        let mut problems = self.known_problems();
        for a in self.accounts.values().filter(|a| a.unusable.is_none()) {
            if let Err(e) = a.credentials.basic().await {
                problems.push(format!(
                    "account {:?}: {e}: no lookup through it can succeed",
                    a.name
                ));
            }
        }
        problems
    }

    /// The problems visible without I/O: accounts that can never produce credentials, no usable
    /// account at all, triggers that can never fire. `serve` logs them at start.
    pub fn known_problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .accounts
            .values()
            .filter_map(|a| Some(format!("account {:?}: {}", a.name, a.unusable.as_ref()?)))
            .collect();
        let usable = self
            .accounts
            .values()
            .filter(|a| a.unusable.is_none())
            .count();
        if usable == 0 {
            problems.push(format!(
                "no usable account: {} (dockerRegistry.accounts, docs/configuration.md)",
                match (self.enabled, self.accounts.is_empty()) {
                    (false, _) => "dockerRegistry.enabled is false".to_owned(),
                    (true, true) => "none is configured".to_owned(),
                    (true, false) => format!("all {} are unusable", self.accounts.len()),
                }
            ));
        }
        if self.settings.triggers.is_some() && self.settings.events.is_none() {
            problems.push(
                "dimsum.triggers: nothing can fire without events.tokenFile: pipelines start from the pushes registries send to POST /events (docs/spinnaker.md)"
                    .to_owned(),
            );
        }
        problems
    }
}

/// The accounts and the effective value of every setting, secrets redacted.
pub fn describe(config: &Config) -> String {
    let mut out = format!("accounts: {}\n", config.accounts.len());
    if !config.enabled {
        out.push_str("  dockerRegistry.enabled: false (no account is read)\n");
    }
    for a in config.accounts.values() {
        let password = match &a.credentials.password {
            PasswordSource::None => "none".to_owned(),
            PasswordSource::Plain(_) => "password <redacted>".to_owned(),
            PasswordSource::File(p) => format!("passwordFile {}", p.display()),
            PasswordSource::Command(_) => "passwordCommand <redacted>".to_owned(),
        };
        let _ = write!(
            out,
            "  {}: {} user={} password={} insecureRegistry={} clientTimeoutMillis={}",
            a.name,
            a.endpoint.address,
            a.credentials.username.as_deref().unwrap_or("-"),
            password,
            a.endpoint.insecure,
            a.endpoint.timeout.as_millis()
        );
        if let Some(why) = &a.unusable {
            let _ = write!(out, " UNUSABLE: {why}");
        }
        out.push('\n');
    }
    let s = &config.settings;
    let set = |on: bool| if on { "set" } else { "unset" };
    let _ = writeln!(
        out,
        "dimsum:\n  callTimeoutMillis={} maxManifestBytes={} maxConfigBytes={} retries={}",
        s.call_timeout.as_millis(),
        s.limits.max_manifest_bytes,
        s.limits.max_config_bytes,
        s.limits.retries
    );
    let _ = writeln!(
        out,
        "  cache: maxBytes={} tagTtlSeconds={} negativeTtlSeconds={}",
        s.cache.max_bytes,
        s.cache.tag_ttl.as_secs(),
        s.cache.negative_ttl.as_secs()
    );
    let _ = writeln!(
        out,
        "  auth: tokenFile={} tokens={}",
        set(s.api_token.is_some()),
        s.callers.len()
    );
    let _ = writeln!(
        out,
        "  events: {}",
        match &s.events {
            Some(e) => format!(
                "on (tokenFile set, prefetch={} quietSeconds={})",
                e.prefetch,
                e.quiet.as_secs()
            ),
            None => "off (no events.tokenFile)".to_owned(),
        }
    );
    let l = &s.server;
    let _ = writeln!(
        out,
        "  server: maxConnections={} headerTimeoutMillis={} bodyTimeoutMillis={} requestTimeoutMillis={}",
        l.max_connections,
        l.header_timeout.as_millis(),
        l.body_timeout.as_millis(),
        l.request_timeout.as_millis()
    );
    let _ = writeln!(
        out,
        "  redis: {}",
        match &s.redis {
            Some(r) => format!(
                "{} keyPrefix={} timeoutMillis={} password={}",
                r.url,
                r.key_prefix,
                r.timeout.as_millis(),
                set(r.password.is_some())
            ),
            None => "off".to_owned(),
        }
    );
    let keys: Vec<&str> = s.cosign_keys.iter().map(|k| k.name.as_str()).collect();
    let identities: Vec<&str> = s
        .sigstore
        .identities
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let _ = writeln!(
        out,
        "  trust: cosignKeys=[{}] identities=[{}] requireSct={}",
        keys.join(", "),
        identities.join(", "),
        s.sigstore.require_sct
    );
    match &s.notation {
        Some(n) => {
            for p in &n.policies {
                let _ = writeln!(
                    out,
                    "    notation policy {}: scopes [{}] {}",
                    p.name,
                    p.scopes.join(", "),
                    if p.checks.is_none() {
                        "skip"
                    } else {
                        "verifies"
                    }
                );
            }
        }
        None => {
            let _ = writeln!(out, "    notation: off");
        }
    }
    for line in s.sigstore.root.describe() {
        let _ = writeln!(out, "    {line}");
    }
    let _ = writeln!(
        out,
        "  triggers: {}",
        match &s.triggers {
            Some(t) => format!(
                "{} authorization={} caFile={} accounts=[{}] repositories={} tags={} retrySeconds={} queue={} leaseMillis={}",
                t.url,
                set(t.authorization.is_some()),
                set(t.ca_pem.is_some()),
                t.accounts.join(", "),
                t.repositories.len(),
                t.tags.len(),
                t.retry.as_secs(),
                t.queue,
                t.lease.as_millis()
            ),
            None => "off".to_owned(),
        }
    );
    let _ = writeln!(
        out,
        "services.fiat: {}",
        match &s.fiat {
            Some(f) => format!(
                "on {} connectTimeoutMs={} readTimeoutMs={} cache.maxEntries={} cache.expiresAfterWriteSeconds={}",
                f.base_url,
                f.connect_timeout.as_millis(),
                f.read_timeout.as_millis(),
                f.max_entries,
                f.expires_after_write.as_secs()
            ),
            None => "off (every caller reads every account)".to_owned(),
        }
    );
    out
}
