//! Test harness: real registries, our token issuer, image builders, a fault server, and a runner
//! for the dimsum binary. Everything listens on 127.0.0.1 ports chosen by the OS.

pub mod fault;
pub mod images;
pub mod registry;
pub mod run;
pub mod server;
pub mod token;

/// Panics with the Debian package to install when a tool is missing (tests never skip).
pub fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} not found: install the Debian package {package} (scripts/test does)"
    );
}
