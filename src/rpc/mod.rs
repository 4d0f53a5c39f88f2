//! The JSON-RPC surface: one trait, served identically over stdio, HTTP and WebSocket.
//!
//! Params may come by name or by position. Positional order is the order of the trait's
//! arguments, so `[account, repository, reference, level]` works; `tag` is accepted by name as an
//! alias of `reference` (the Docker trigger calls it `tag`). `digest` is the trigger's digest
//! (see `service::pin`); an empty one is no digest. The same type is the REST shim's
//! [`Backend`]. Both delegate to [`crate::Dimsum`] and hold no logic beyond choosing a
//! representation.

// Each wire param is a method argument (that is how the macro accepts both by-name and
// by-position params), and getHistory has nine of them.
#![allow(clippy::too_many_arguments)]

pub mod types;

use std::future::Future;
use std::sync::Arc;

use dimsum_rest::layer::{Answer, Backend};
use dimsum_rest::routes::{Action, Call};
use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::value::RawValue;

use self::types::ManifestResult;
use crate::error::Error;
use crate::history;
use crate::reload::Live;
use crate::service::{ImageRequest, ManifestAnswer};

/// The OpenRPC document `rpc.discover` returns.
const OPENRPC: &str = include_str!("openrpc.json");

/// dimsum's JSON-RPC methods.
#[rpc(server)]
pub trait DimsumApi {
    /// The image's schema1 history: with `level`, that v1Compatibility object itself; without,
    /// `[{"v1Compatibility":"…"},…]`.
    #[method(name = "getHistory")]
    async fn get_history(
        &self,
        account: String,
        repository: String,
        reference: Option<String>,
        level: Option<u64>,
        platform: Option<String>,
        strict: Option<bool>,
        tag: Option<String>,
        digest: Option<String>,
        #[argument(rename = "signedBy")] signed_by: Option<String>,
    ) -> RpcResult<Box<RawValue>>;

    /// The manifest (an index resolved to one platform), its digest and media type.
    #[method(name = "getManifest")]
    async fn get_manifest(
        &self,
        account: String,
        repository: String,
        reference: Option<String>,
        platform: Option<String>,
        tag: Option<String>,
        digest: Option<String>,
        #[argument(rename = "signedBy")] signed_by: Option<String>,
    ) -> RpcResult<ManifestResult>;

    /// The image config's `config.Labels` (`{}` when there are none).
    #[method(name = "getLabels")]
    async fn get_labels(
        &self,
        account: String,
        repository: String,
        reference: Option<String>,
        platform: Option<String>,
        tag: Option<String>,
        digest: Option<String>,
        #[argument(rename = "signedBy")] signed_by: Option<String>,
    ) -> RpcResult<Box<RawValue>>;

    /// Where the image came from: revision, source and the rest with their evidence, labels,
    /// annotations, provenance and signatures.
    #[method(name = "getOrigin")]
    async fn get_origin(
        &self,
        account: String,
        repository: String,
        reference: Option<String>,
        platform: Option<String>,
        tag: Option<String>,
        digest: Option<String>,
        #[argument(rename = "signedBy")] signed_by: Option<String>,
    ) -> RpcResult<Box<RawValue>>;

    /// The OpenRPC description of this API, errors included.
    #[method(name = "rpc.discover")]
    fn discover(&self) -> RpcResult<Box<RawValue>>;
}

/// The server implementation over the live service.
#[derive(Debug, Clone)]
pub struct Rpc {
    live: Arc<Live>,
}

impl Rpc {
    /// Serves whatever service `live` holds at each call.
    pub fn new(live: Arc<Live>) -> Rpc {
        Rpc { live }
    }
}

/// `reference` or its alias `tag`: exactly one.
fn reference(reference: Option<String>, tag: Option<String>) -> Result<String, Error> {
    match (reference, tag) {
        (Some(r), None) | (None, Some(r)) => Ok(r),
        (Some(_), Some(_)) => Err(Error::InvalidInput(
            "give either reference or tag, not both".into(),
        )),
        (None, None) => Err(Error::InvalidInput(
            "missing reference (a tag or a digest)".into(),
        )),
    }
}

fn image<'a>(
    account: &'a str,
    repository: &'a str,
    reference: &'a str,
    platform: &'a Option<String>,
    digest: &'a Option<String>,
    signed_by: &'a Option<String>,
) -> ImageRequest<'a> {
    ImageRequest {
        account,
        repository,
        reference,
        platform: platform.as_deref(),
        digest: digest.as_deref(),
        signed_by: signed_by.as_deref(),
    }
}

fn raw(json: String) -> RpcResult<Box<RawValue>> {
    // Our own output is always valid JSON; a failure here is a bug, reported as internal.
    RawValue::from_string(json)
        .map_err(|e| ErrorObjectOwned::owned(-32603, format!("internal error: {e}"), None::<()>))
}

/// What both wires answer; the JSON-RPC methods and the REST routes differ only in how they
/// take params and render results.
impl Rpc {
    async fn history(
        &self,
        req: ImageRequest<'_>,
        level: Option<u64>,
        strict: bool,
    ) -> Result<Box<RawValue>, Error> {
        let options = history::Options { strict };
        let service = self.live.current();
        Ok(match level {
            Some(level) => service.history_level(req, level, options).await?.0,
            None => service.history(req, options).await?.list.clone(),
        })
    }

    async fn manifest(&self, req: ImageRequest<'_>) -> Result<ManifestAnswer, Error> {
        self.live.current().manifest(req).await
    }

    async fn labels(&self, req: ImageRequest<'_>) -> Result<String, Error> {
        self.live.current().labels(req).await
    }

    async fn origin(&self, req: ImageRequest<'_>) -> Result<String, Error> {
        let origin = self.live.current().origin(req).await?;
        // Our own types always serialize.
        Ok(serde_json::to_string(&*origin).unwrap_or_default())
    }
}

#[async_trait]
impl DimsumApiServer for Rpc {
    async fn get_history(
        &self,
        account: String,
        repository: String,
        reference_: Option<String>,
        level: Option<u64>,
        platform: Option<String>,
        strict: Option<bool>,
        tag: Option<String>,
        digest: Option<String>,
        signed_by: Option<String>,
    ) -> RpcResult<Box<RawValue>> {
        let reference = reference(reference_, tag)?;
        let req = image(
            &account,
            &repository,
            &reference,
            &platform,
            &digest,
            &signed_by,
        );
        Ok(self.history(req, level, strict.unwrap_or(false)).await?)
    }

    async fn get_manifest(
        &self,
        account: String,
        repository: String,
        reference_: Option<String>,
        platform: Option<String>,
        tag: Option<String>,
        digest: Option<String>,
        signed_by: Option<String>,
    ) -> RpcResult<ManifestResult> {
        let reference = reference(reference_, tag)?;
        let req = image(
            &account,
            &repository,
            &reference,
            &platform,
            &digest,
            &signed_by,
        );
        let m = self.manifest(req).await?;
        let text = String::from_utf8(m.bytes)
            .map_err(|_| ErrorObjectOwned::owned(-32603, "manifest is not UTF-8", None::<()>))?;
        Ok(ManifestResult {
            digest: m.digest.to_string(),
            media_type: m.media_type,
            manifest: raw(text)?,
        })
    }

    async fn get_labels(
        &self,
        account: String,
        repository: String,
        reference_: Option<String>,
        platform: Option<String>,
        tag: Option<String>,
        digest: Option<String>,
        signed_by: Option<String>,
    ) -> RpcResult<Box<RawValue>> {
        let reference = reference(reference_, tag)?;
        let req = image(
            &account,
            &repository,
            &reference,
            &platform,
            &digest,
            &signed_by,
        );
        raw(self.labels(req).await?)
    }

    async fn get_origin(
        &self,
        account: String,
        repository: String,
        reference_: Option<String>,
        platform: Option<String>,
        tag: Option<String>,
        digest: Option<String>,
        signed_by: Option<String>,
    ) -> RpcResult<Box<RawValue>> {
        let reference = reference(reference_, tag)?;
        let req = image(
            &account,
            &repository,
            &reference,
            &platform,
            &digest,
            &signed_by,
        );
        raw(self.origin(req).await?)
    }

    fn discover(&self) -> RpcResult<Box<RawValue>> {
        raw(OPENRPC.to_owned())
    }
}

/// The REST routes, answered without a JSON-RPC round trip.
impl Backend for Rpc {
    fn answer(
        &self,
        call: Call,
    ) -> impl Future<Output = Result<Answer, ErrorObjectOwned>> + Send + 'static {
        let rpc = self.clone();
        async move {
            let req = image(
                &call.account,
                &call.repository,
                &call.reference,
                &call.platform,
                &call.digest,
                &call.signed_by,
            );
            Ok(match call.action {
                Action::History { level, strict } => {
                    let entry: Box<str> = rpc.history(req, level, strict).await?.into();
                    Answer::Json(entry.into_string().into_bytes())
                }
                Action::Manifest => {
                    let m = rpc.manifest(req).await?;
                    Answer::Manifest {
                        bytes: m.bytes,
                        digest: m.digest.to_string(),
                    }
                }
                Action::Labels => Answer::Json(rpc.labels(req).await?.into_bytes()),
                Action::Origin => Answer::Json(rpc.origin(req).await?.into_bytes()),
            })
        }
    }
}

#[cfg(test)]
mod tests;
