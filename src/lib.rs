//! dimsum reads an image's config and legacy schema1 history through the same `dockerRegistry`
//! accounts Clouddriver uses, so Spinnaker pipelines can read image LABELs.
//!
//! It computes the `history[].v1Compatibility` objects itself from the schema2/OCI config blob,
//! byte-identical to Docker Distribution v2.8.2's conversion, so it works on registries that no
//! longer serve schema1 and on OCI images that never had it. It only reads: it never pushes,
//! lists catalogs or polls tags for triggers (Clouddriver and Igor do that); it listens to the
//! registries' own push notifications so that it is never stale.
//!
//! # Layout
//! - [`cli`]: clap arguments and where the configuration comes from.
//! - [`config`]: Clouddriver's account YAML → validated [`Config`].
//! - [`credentials`]: password sources, re-read on use, and the redacted [`credentials::Secret`].
//! - [`registry`]: a pull-only registry client per account: auth, digests, platforms, limits.
//! - [`history`]: the pure schema2/OCI → schema1 history conversion and labels.
//! - [`origin`]: where an image came from (annotations, provenance, labels, ranked with their
//!   evidence, signed evidence first) and its signatures and attestations, each with its verdict.
//! - [`sigstore`]: keyless signatures and attestations (Fulcio + Rekor), verified offline
//!   against a pinned trust root.
//! - [`notation`]: Notation signatures, verified offline under Notation's own trust policy and
//!   trust store.
//! - [`events`]: registry notifications (Distribution, ACR, Harbor, Quay) → tag changes.
//! - [`cache`]: memory (content by digest, tags dated by when the registry was asked, recent
//!   not-founds; single flight) and the [`cache::SharedTier`] behind it: the disk for the
//!   one-shot CLI, Redis for a fleet of `serve` replicas.
//! - [`metrics`]: Prometheus counters and histograms: requests, upstream calls, caches, reloads.
//! - [`prefetch`]: fetching pushed tags in the background, bounded in queue and concurrency.
//! - [`trigger`]: starting Spinnaker pipelines from pushes: one POST to Gate per pushed image,
//!   claimed once for the fleet, delivered through Gate's outages.
//! - [`service`]: the library API transports call ([`Dimsum`]).
//! - [`reload`]: the live service behind an atomic pointer; reload on SIGHUP or file change.
//! - [`rpc`]: the JSON-RPC trait (`getHistory`, `getManifest`, `getLabels`, `getOrigin`,
//!   `rpc.discover`).
//! - [`transport`]: stdio (newline-delimited JSON-RPC) and one TCP port (HTTP, WebSocket, REST,
//!   registry events), with its own accept loop against slow clients; one JSON-RPC dispatcher
//!   for all.
//! - [`fuzzing`]: entry points shared by the fuzz targets and the corpus replay test.
//! - [`fiat`]: who may read an account: Spinnaker's Fiat asked as Clouddriver asks it, views cached.
//! - [`error`]: the crate [`Error`] and its single mapping to the wire codes.
#![deny(missing_docs)]

pub mod cache;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod error;
pub mod events;
pub mod fiat;
pub mod fuzzing;
pub mod history;
pub mod metrics;
pub mod notation;
pub mod origin;
pub mod prefetch;
pub mod registry;
pub mod reload;
pub mod rpc;
pub mod service;
pub mod sigstore;
pub mod transport;
pub mod trigger;

pub use config::Config;
pub use error::Error;
pub use service::{Dimsum, ImageRequest};
