//! Wire DTOs: the contract docs/api.md and the REST shim document.

use serde::Serialize;
use serde_json::value::RawValue;

/// `getManifest`'s result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestResult {
    /// The manifest's digest (of the bytes in `manifest`).
    pub digest: String,
    /// Its media type.
    pub media_type: &'static str,
    /// The registry's manifest JSON, unchanged.
    pub manifest: Box<RawValue>,
}
