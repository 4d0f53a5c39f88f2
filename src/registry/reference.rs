//! Repository names, tags and digests by the distribution reference grammar
//! (registry-protocol.md §3), validated before any URL is built.

use std::fmt;

use super::digest::Digest;

/// Longest repository name distribution accepts.
const MAX_NAME: usize = 255;

/// A validated repository path, e.g. `team/app` (never with a registry host).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Repository(String);

/// A tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    /// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    Tag(String),
    /// `sha256:…` or `sha512:…`; Spinnaker puts one in the tag position when a user picks it.
    Digest(Digest),
}

/// Why a name, tag or digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReference {
    /// Not a repository name by the distribution grammar.
    #[error(
        "invalid repository name {0:?}: expected lower-case path components [a-z0-9] joined by '.', '_', '__' or '-', separated by '/', at most 255 characters"
    )]
    Repository(String),
    /// Neither a tag nor a digest.
    #[error(
        "invalid reference {0:?}: expected a tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}) or a digest (sha256:<64 hex>)"
    )]
    Reference(String),
}

impl Repository {
    /// Validates `name` by the distribution grammar
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
    pub fn parse(name: &str) -> Result<Repository, InvalidReference> {
        let ok = !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(component_ok);
        if ok {
            Ok(Repository(name.to_owned()))
        } else {
            Err(InvalidReference::Repository(name.to_owned()))
        }
    }

    /// Docker Hub's official images: a one-segment name means `library/<name>`.
    pub fn with_library_prefix(&self) -> Repository {
        if self.0.contains('/') {
            self.clone()
        } else {
            Repository(format!("library/{}", self.0))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or one or more '-', always followed by an alphanumeric.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

impl Reference {
    /// A digest if it looks like `algorithm:…` (and then it must be a valid one), else a tag.
    pub fn parse(s: &str) -> Result<Reference, InvalidReference> {
        let invalid = || InvalidReference::Reference(s.to_owned());
        if s.contains(':') {
            return Digest::parse(s).map(Reference::Digest).ok_or_else(invalid);
        }
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if ok {
            Ok(Reference::Tag(s.to_owned()))
        } else {
            Err(invalid())
        }
    }

    /// The reference as it goes into a URL.
    pub fn as_str(&self) -> &str {
        match self {
            Reference::Tag(t) => t,
            Reference::Digest(d) => d.as_str(),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        for ok in [
            "a",
            "library/nginx",
            "a/b/c",
            "my-org/app.v2",
            "a__b",
            "a---b",
            "x/y_z",
            "0/1",
        ] {
            assert!(Repository::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "A",
            "a/",
            "/a",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a/../b",
            "..",
            "a%2fb",
            "a b",
            "a:b",
            long.as_str(),
        ] {
            assert!(Repository::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Repository::parse("nginx")
                .unwrap()
                .with_library_prefix()
                .as_str(),
            "library/nginx"
        );
        assert_eq!(
            Repository::parse("a/b")
                .unwrap()
                .with_library_prefix()
                .as_str(),
            "a/b"
        );
    }

    #[test]
    fn references() {
        assert!(matches!(
            Reference::parse("v1.2_3-x"),
            Ok(Reference::Tag(_))
        ));
        assert!(matches!(Reference::parse("_x"), Ok(Reference::Tag(_))));
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Reference::parse(&d), Ok(Reference::Digest(_))));
        let long = "a".repeat(129);
        for bad in [
            "",
            ".x",
            "-x",
            "a/b",
            "sha256:abc",
            "x:y",
            "a b",
            long.as_str(),
            "é",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
