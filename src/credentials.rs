//! Where an account's password comes from, and the redacted `Secret` that carries it.
//!
//! Sources (spinnaker.md §1.4): `password`, `passwordCommand` (`bash -c`, stdout trimmed), or
//! `passwordFile` (the whole file, trailing whitespace trimmed). At most one may be set; config
//! loading enforces that.
//! File and command are read **each time new credentials are needed** (a token exchange or a Basic
//! challenge), never per request while a token is valid, so rotating ECR tokens keep working.

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::AsyncReadExt as _;

/// How long a `passwordCommand` may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The most `passwordCommand` stdout (or `passwordFile` content) we read.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// A value that must never be printed: passwords, tokens, `Authorization` values.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password configured.
    None,
    /// `password`.
    Plain(Secret),
    /// `passwordFile`: the whole file, trailing whitespace trimmed, re-read on use.
    File(PathBuf),
    /// `passwordCommand`: run with `bash -c`, stdout trimmed, re-run on use.
    Command(String),
}

/// An account's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// `username`, if any.
    pub username: Option<String>,
    /// The password source.
    pub password: PasswordSource,
}

/// Why credentials could not be produced. Cloneable, so cached failures can be shared.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// `passwordFile` could not be read.
    #[error("passwordFile {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// `passwordCommand` could not be run or produced nothing.
    #[error("passwordCommand failed: {0}")]
    Command(String),
}

impl Credentials {
    /// No credentials: requests are anonymous.
    pub fn anonymous() -> Credentials {
        Credentials {
            username: None,
            password: PasswordSource::None,
        }
    }

    /// Whether any credentials are configured.
    pub fn is_anonymous(&self) -> bool {
        self.username.is_none() && self.password == PasswordSource::None
    }

    /// A fresh `Basic …` header value (re-reading the file or re-running the command), or `None`
    /// for an anonymous account.
    pub async fn basic(&self) -> Result<Option<Secret>, Error> {
        if self.is_anonymous() {
            return Ok(None);
        }
        let password = self.password().await?;
        // Clouddriver formats a missing username as the text "null"; keep that for parity.
        let user = self.username.as_deref().unwrap_or("null");
        let pair = format!("{user}:{}", password.expose());
        Ok(Some(Secret(format!("Basic {}", STANDARD.encode(pair)))))
    }

    async fn password(&self) -> Result<Secret, Error> {
        match &self.password {
            PasswordSource::None => Ok(Secret(String::new())),
            PasswordSource::Plain(p) => Ok(p.clone()),
            PasswordSource::File(path) => read_password_file(path).await,
            PasswordSource::Command(command) => run_password_command(command).await,
        }
    }
}

/// The whole of `path`, trailing whitespace trimmed. Clouddriver reads the file whole: GCR and
/// Artifact Registry accounts (user `_json_key`) keep a pretty-printed, multi-line service-account
/// JSON there, and a reader that keeps the first line sends `{`. The trailing newline an editor or
/// `aws ecr get-login-password > file` leaves is not part of any password.
pub async fn read_password_file(path: &std::path::Path) -> Result<Secret, Error> {
    let file_error = |source: std::io::Error| Error::File {
        path: path.to_owned(),
        source: std::sync::Arc::new(source),
    };
    let file = tokio::fs::File::open(path).await.map_err(file_error)?;
    let mut content = String::new();
    file.take(MAX_SECRET_BYTES)
        .read_to_string(&mut content)
        .await
        .map_err(file_error)?;
    Ok(Secret(content.trim_end().to_owned()))
}

async fn run_password_command(command: &str) -> Result<Secret, Error> {
    let mut child = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Command(format!("cannot start bash: {e}")))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Command("no stdout".into()))?;
    let run = async {
        let mut out = Vec::new();
        (&mut stdout)
            .take(MAX_SECRET_BYTES)
            .read_to_end(&mut out)
            .await?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((out, status))
    };
    let (out, status) = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .map_err(|_| Error::Command(format!("timed out after {}s", COMMAND_TIMEOUT.as_secs())))?
        .map_err(|e| Error::Command(e.to_string()))?;
    let out = String::from_utf8(out).map_err(|_| Error::Command("output is not UTF-8".into()))?;
    let password = out.trim();
    if !status.success() {
        // Clouddriver only logs a failing exit and still uses stdout; refuse when there is none.
        tracing::warn!(%status, "passwordCommand exited unsuccessfully");
        if password.is_empty() {
            return Err(Error::Command(format!(
                "exited with {status} and printed nothing"
            )));
        }
    }
    Ok(Secret(password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_debug_print() {
        let c = Credentials {
            username: Some("u".into()),
            password: PasswordSource::Plain(Secret::new("hunter2")),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn sources_are_read_on_use_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        // A pretty-printed `_json_key` is read whole; only trailing whitespace goes.
        let key = "{\n  \"type\": \"service_account\",\n  \"private_key\": \"-----BEGIN\\n\"\n}";
        std::fs::write(&path, format!("{key}\n\n")).unwrap();
        let c = Credentials {
            username: Some("_json_key".into()),
            password: PasswordSource::File(path.clone()),
        };
        assert_eq!(
            c.basic().await.unwrap().unwrap().expose(),
            format!("Basic {}", STANDARD.encode(format!("_json_key:{key}")))
        );
        let c = Credentials {
            username: Some("u".into()),
            password: PasswordSource::File(path.clone()),
        };
        std::fs::write(&path, "rotated\r\n").unwrap();
        assert_eq!(
            c.basic().await.unwrap().unwrap().expose(),
            format!("Basic {}", STANDARD.encode("u:rotated"))
        );

        let c = Credentials {
            username: None,
            password: PasswordSource::Command("printf ' tok\\n'; exit 3".into()),
        };
        assert_eq!(
            c.basic().await.unwrap().unwrap().expose(),
            format!("Basic {}", STANDARD.encode("null:tok"))
        );
        let c = Credentials {
            username: Some("u".into()),
            password: PasswordSource::Command("exit 1".into()),
        };
        assert!(matches!(c.basic().await, Err(Error::Command(_))));
        let c = Credentials {
            username: Some("u".into()),
            password: PasswordSource::File(dir.path().join("missing")),
        };
        assert!(c.basic().await.unwrap_err().to_string().contains("missing"));
        assert_eq!(Credentials::anonymous().basic().await.unwrap(), None);
    }
}
