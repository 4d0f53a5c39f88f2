//! Integration tests: the dimsum binary and library against real Docker Distribution 2.8
//! registries (open, htpasswd, token auth), with images pushed through the registry API and built
//! by umoci/skopeo. The registry's own schema1 conversion is the oracle for every history.

// The harness is shared between test modules of this one binary; `pub` there means "for tests".
#![allow(unreachable_pub)]

mod harness;

mod auth;
mod cache;
mod clients;
mod conversion;
mod deploy;
mod docs;
mod errors;
mod events;
mod faults;
mod fiat;
mod fleet;
mod hardening;
mod image;
mod keyless;
mod load;
mod notation;
mod operate;
mod origin;
mod serve;
mod strict;
mod triggers;
mod wire;
mod zoo;
