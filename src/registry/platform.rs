//! Choosing one image from an OCI index or Docker manifest list (registry-protocol.md §7).
//!
//! With no platform asked we keep distribution's rule, so results equal what it served: the first
//! entry whose `os` is exactly `linux` and `architecture` exactly `amd64`, variant ignored. A
//! requested `os/arch[/variant]` is compared after containerd's normalisation, so `aarch64`,
//! `arm64` and `arm64/v8` are one platform; the first matching entry in index order wins.

use std::fmt;

use super::manifest::{Descriptor, PlatformSpec};

/// A platform, normalised.
#[derive(Clone, PartialEq, Eq)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// A platform string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7")]
pub struct InvalidPlatform(pub String);

impl Platform {
    /// Parses and normalises `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, InvalidPlatform> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 32
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if !ok {
            return Err(InvalidPlatform(s.to_owned()));
        }
        Ok(Platform::normalized(
            parts[0],
            parts[1],
            parts.get(2).copied(),
        ))
    }

    /// containerd's `Normalize`.
    fn normalized(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let mut os = os.to_ascii_lowercase();
        if os == "macos" {
            os = "darwin".to_owned();
        }
        let arch = architecture.to_ascii_lowercase();
        let variant = variant
            .map(str::to_ascii_lowercase)
            .filter(|v| !v.is_empty());
        let v = variant.as_deref();
        let (architecture, variant): (&str, Option<&str>) = match arch.as_str() {
            "i386" => ("386", None),
            "x86_64" | "x86-64" | "amd64" => ("amd64", v.filter(|v| *v != "v1")),
            "aarch64" | "arm64" => match v {
                Some("8" | "v8" | "v8.0") | None => ("arm64", None),
                Some("9" | "9.0" | "v9.0") => ("arm64", Some("v9")),
                other => ("arm64", other),
            },
            "armhf" => ("arm", Some("v7")),
            "armel" => ("arm", Some("v6")),
            "arm" => match v {
                None | Some("7") => ("arm", Some("v7")),
                Some("5") => ("arm", Some("v5")),
                Some("6") => ("arm", Some("v6")),
                Some("8") => ("arm", Some("v8")),
                other => ("arm", other),
            },
            other => (other, v),
        };
        Platform {
            os,
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    fn of(spec: &PlatformSpec) -> Platform {
        Platform::normalized(&spec.os, &spec.architecture, spec.variant.as_deref())
    }

    /// Whether an image whose config says `spec` is this platform.
    pub fn matches(&self, spec: &PlatformSpec) -> bool {
        Platform::of(spec) == *self
    }
}

/// The platform an image config (or a schema1 `v1Compatibility`) states in its `os`,
/// `architecture` and `variant`; `None` when it states none.
pub fn of_config(config: &[u8]) -> Option<PlatformSpec> {
    serde_json::from_slice::<PlatformSpec>(config)
        .ok()
        .filter(|s| !s.os.is_empty() || !s.architecture.is_empty())
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Picks the entry for `wanted` (or distribution's default); on no match, the platforms present.
pub fn choose<'a>(
    entries: &'a [Descriptor],
    wanted: Option<&Platform>,
) -> Result<&'a Descriptor, Vec<String>> {
    let found = entries.iter().find(|e| {
        let Some(spec) = &e.platform else {
            return false;
        };
        match wanted {
            None => spec.os == "linux" && spec.architecture == "amd64",
            Some(w) => Platform::of(spec) == *w,
        }
    });
    found.ok_or_else(|| {
        entries
            .iter()
            .map(|e| match &e.platform {
                Some(spec) => written(spec),
                None => format!("an entry without a platform ({})", e.digest),
            })
            .collect()
    })
}

/// `os/arch[/variant]` as written (not normalised).
pub fn written(spec: &PlatformSpec) -> String {
    match &spec.variant {
        Some(v) if !v.is_empty() => format!("{}/{}/{}", spec.os, spec.architecture, v),
        _ => format!("{}/{}", spec.os, spec.architecture),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: format!("{os}-{arch}-{}", variant.unwrap_or("")),
            size: 0,
            platform: Some(PlatformSpec {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    #[test]
    fn normalisation() {
        let p = |s| Platform::parse(s).unwrap();
        assert_eq!(p("linux/aarch64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/arm64"), p("linux/arm64/8"));
        assert_eq!(p("Linux/x86_64"), p("linux/amd64"));
        assert_eq!(p("linux/amd64/v1"), p("linux/amd64"));
        assert_eq!(p("linux/armhf"), p("linux/arm/v7"));
        assert_eq!(p("linux/arm"), p("linux/arm/7"));
        assert_eq!(p("macos/arm64").to_string(), "darwin/arm64");
        assert_ne!(p("linux/arm/v6"), p("linux/arm/v7"));
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn choosing() {
        let mut bare = entry("linux", "amd64", None);
        bare.platform = None;
        let entries = [
            entry("unknown", "unknown", None),
            entry("linux", "arm64", Some("v8")),
            entry("linux", "amd64", Some("v3")),
            entry("linux", "amd64", None),
            bare,
        ];
        // Distribution's rule: first exact linux/amd64, variant ignored.
        assert_eq!(choose(&entries, None).unwrap().digest, "linux-amd64-v3");
        assert_eq!(
            choose(&entries, Some(&Platform::parse("linux/aarch64").unwrap()))
                .unwrap()
                .digest,
            "linux-arm64-v8"
        );
        assert_eq!(
            choose(&entries, Some(&Platform::parse("linux/amd64").unwrap()))
                .unwrap()
                .digest,
            "linux-amd64-"
        );
        let missing = choose(&entries, Some(&Platform::parse("linux/s390x").unwrap())).unwrap_err();
        assert_eq!(
            missing,
            [
                "unknown/unknown",
                "linux/arm64/v8",
                "linux/amd64/v3",
                "linux/amd64",
                "an entry without a platform (linux-amd64-)"
            ]
        );
        assert!(choose(&entries[..2], None).is_err());
    }

    #[test]
    fn a_config_states_its_platform() {
        let spec = of_config(br#"{"architecture":"arm","os":"linux","variant":"v7","config":{}}"#)
            .unwrap();
        assert!(Platform::parse("linux/arm").unwrap().matches(&spec));
        assert!(!Platform::parse("linux/arm64").unwrap().matches(&spec));
        assert_eq!(written(&spec), "linux/arm/v7");
        assert!(of_config(br#"{"config":{}}"#).is_none());
        assert!(of_config(b"not json").is_none());
    }
}
