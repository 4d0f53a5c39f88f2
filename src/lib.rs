//! dimsum: an image's config and legacy schema1 history, read through Clouddriver's accounts.
#![deny(missing_docs)]

pub mod history;
