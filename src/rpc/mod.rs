//! The JSON-RPC surface: one module of methods, served identically over stdio, HTTP and WebSocket.
//!
//! Params may come by name or by position, and are parsed strictly ([`params`]): an unknown or
//! misspelt name is invalid params naming the right spelling. Positional order is the method's
//! list in [`dimsum_rest::params`], so `[account, repository, reference, level]` works; `tag` is
//! accepted by name as an alias of `reference` (the Docker trigger calls it `tag`). `digest` is
//! the trigger's digest (see `service::pin`); an empty one is no digest. The same type is the
//! REST shim's [`Backend`]. Both delegate to [`crate::Dimsum`] and hold no logic beyond choosing
//! a representation.

mod params;
pub mod types;

use std::future::Future;
use std::sync::Arc;

use dimsum_rest::layer::{Answer, Backend};
use dimsum_rest::params::{HISTORY, IMAGE, REFERENCE};
use dimsum_rest::routes::{Action, Call};
use jsonrpsee::RpcModule;
use jsonrpsee::core::RpcResult;
use jsonrpsee::types::ErrorObjectOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use self::types::ManifestResult;
use crate::error::Error;
use crate::fiat::Caller;
use crate::history;
use crate::reload::Live;
use crate::service::{ImageRequest, ManifestAnswer};

/// The OpenRPC document `rpc.discover` returns.
const OPENRPC: &str = include_str!("openrpc.json");

/// The server implementation over the live service.
#[derive(Debug, Clone)]
pub struct Rpc {
    live: Arc<Live>,
}

/// The params of every method that names an image ([`IMAGE`]).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageParams {
    account: String,
    repository: String,
    reference: Option<String>,
    platform: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
    signed_by: Option<String>,
}

/// `getHistory`'s params ([`HISTORY`]).
#[derive(Debug, Deserialize)]
struct HistoryParams {
    level: Option<u64>,
    strict: Option<bool>,
    #[serde(flatten)]
    image: ImageParams,
}

/// The params of methods that answer for the reference as named ([`REFERENCE`]).
#[derive(Debug, Deserialize)]
struct ReferenceParams {
    account: String,
    repository: String,
    reference: Option<String>,
    tag: Option<String>,
}

impl ImageParams {
    /// The request, once `reference` or its alias `tag` is settled.
    fn into_call(self, action: Action) -> Result<Call, Error> {
        Ok(Call {
            action,
            reference: reference(self.reference, self.tag)?,
            account: self.account,
            repository: self.repository,
            platform: self.platform,
            digest: self.digest,
            signed_by: self.signed_by,
        })
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

fn request(call: &Call) -> ImageRequest<'_> {
    ImageRequest {
        account: &call.account,
        repository: &call.repository,
        reference: &call.reference,
        platform: call.platform.as_deref(),
        digest: call.digest.as_deref(),
        signed_by: call.signed_by.as_deref(),
    }
}

fn raw(json: String) -> Result<Box<RawValue>, ErrorObjectOwned> {
    RawValue::from_string(json).map_err(|e| internal(&e))
}

/// Our own output is always valid JSON and the registry's was checked on arrival; a failure here
/// is a bug, reported as internal.
fn internal(e: &dyn std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        -32603,
        format!("internal error: {e}"),
        Some(serde_json::json!({"name": "internal_error", "httpStatus": 500})),
    )
}

/// Our own value as JSON, serialized once.
fn json(value: &impl serde::Serialize) -> Result<Box<RawValue>, ErrorObjectOwned> {
    serde_json::value::to_raw_value(value).map_err(|e| internal(&e))
}

/// Bytes the registry served, as a JSON-RPC result: they must be JSON text.
fn raw_bytes(bytes: Vec<u8>, what: &str) -> Result<Box<RawValue>, ErrorObjectOwned> {
    let text = String::from_utf8(bytes).map_err(|_| internal(&format!("{what} is not UTF-8")))?;
    raw(text)
}

impl Rpc {
    /// Serves whatever service `live` holds at each call.
    pub fn new(live: Arc<Live>) -> Rpc {
        Rpc { live }
    }

    /// The methods, for any transport: `getHistory`, `getManifest`, `getLabels`, `getOrigin`,
    /// `getSignatures`, `getConfig`, `getPlatforms`, `getDigest` and `rpc.discover`.
    pub fn into_rpc(self) -> RpcModule<Rpc> {
        let mut module = RpcModule::new(self);
        let image_methods: [(&'static str, Action); 6] = [
            ("getManifest", Action::Manifest),
            ("getLabels", Action::Labels),
            ("getOrigin", Action::Origin),
            ("getSignatures", Action::Signatures),
            ("getConfig", Action::Config),
            (
                "getHistory",
                Action::History {
                    level: None,
                    strict: false,
                },
            ),
        ];
        for (name, action) in image_methods {
            let registered =
                module.register_async_method(name, move |params, rpc, ext| async move {
                    let call = match action {
                        Action::History { .. } => {
                            let p: HistoryParams = params::parse(&params, HISTORY)?;
                            let action = Action::History {
                                level: p.level,
                                strict: p.strict.unwrap_or(false),
                            };
                            p.image.into_call(action)?
                        }
                        _ => params::parse::<ImageParams>(&params, IMAGE)?.into_call(action)?,
                    };
                    rpc.result(call, ext.get::<Caller>()).await
                });
            registered.unwrap_or_else(|e| unreachable!("each name once: {e}"));
        }
        for (name, action) in [
            ("getPlatforms", Action::Platforms),
            ("getDigest", Action::Digest),
        ] {
            let registered =
                module.register_async_method(name, move |params, rpc, ext| async move {
                    let p: ReferenceParams = params::parse(&params, REFERENCE)?;
                    let call = Call {
                        action,
                        reference: reference(p.reference, p.tag)?,
                        account: p.account,
                        repository: p.repository,
                        platform: None,
                        digest: None,
                        signed_by: None,
                    };
                    rpc.result(call, ext.get::<Caller>()).await
                });
            registered.unwrap_or_else(|e| unreachable!("each name once: {e}"));
        }
        module
            .register_method("rpc.discover", |params, _, _| -> RpcResult<Box<RawValue>> {
                params::parse::<serde_json::Map<String, serde_json::Value>>(&params, &[])?;
                raw(OPENRPC.to_owned())
            })
            .unwrap_or_else(|e| unreachable!("each name once: {e}"));
        module
    }

    /// A JSON-RPC method's result: the same answer as the REST route's, as one JSON value.
    async fn result(&self, call: Call, caller: Option<&Caller>) -> RpcResult<Box<RawValue>> {
        self.authorize(&call, caller).await?;
        match self.answer_call(call).await? {
            Reply::Json(json) => Ok(json),
            Reply::Bytes(bytes) => raw_bytes(bytes, "the answer"),
            Reply::Manifest(m) => {
                let result = ManifestResult {
                    digest: m.digest.to_string(),
                    media_type: m.media_type,
                    manifest: raw_bytes(m.bytes, "the manifest")?,
                };
                json(&result)
            }
        }
    }

    /// With Fiat on, a caller (anyone over HTTP or WebSocket) must have READ on the account,
    /// checked before the account is even looked up, so an unknown account and a forbidden one
    /// look alike; stdio has no caller and no check.
    async fn authorize(&self, call: &Call, caller: Option<&Caller>) -> Result<(), Error> {
        match (self.live.fiat(), caller) {
            (Some(fiat), Some(caller)) => fiat.check(caller, &call.account).await,
            _ => Ok(()),
        }
    }

    /// What both wires answer; the JSON-RPC methods and the REST routes differ only in how they
    /// take params and render results.
    async fn answer_call(&self, call: Call) -> Result<Reply, ErrorObjectOwned> {
        let service = self.live.current();
        let req = request(&call);
        Ok(match call.action {
            Action::History { level, strict } => {
                let options = history::Options { strict };
                Reply::Json(match level {
                    Some(level) => service.history_level(req, level, options).await?.0,
                    None => service.history(req, options).await?.list.clone(),
                })
            }
            Action::Manifest => Reply::Manifest(service.manifest(req).await?),
            Action::Labels => Reply::Bytes(service.labels(req).await?.into_bytes()),
            Action::Origin => Reply::Json(json(&*service.origin(req).await?)?),
            Action::Signatures => Reply::Json(json(&*service.signatures(req).await?)?),
            Action::Config => Reply::Bytes(service.config(req).await?.bytes.to_vec()),
            Action::Platforms => Reply::Json(json(&service.platforms(req).await?)?),
            Action::Digest => Reply::Json(json(&service.digest(req).await?)?),
        })
    }
}

/// An answer before it takes a wire's form.
enum Reply {
    /// JSON dimsum made or already checked (history entries, origin): embedded as it is, never
    /// parsed again on the way out.
    Json(Box<RawValue>),
    /// Text as stored (labels, the config blob): JSON-RPC checks it is JSON, REST sends it as is.
    Bytes(Vec<u8>),
    /// The manifest, its digest and media type.
    Manifest(ManifestAnswer),
}

/// The REST routes, answered without a JSON-RPC round trip.
impl Backend for Rpc {
    fn answer(
        &self,
        call: Call,
        extensions: &http::Extensions,
    ) -> impl Future<Output = Result<Answer, ErrorObjectOwned>> + Send + 'static {
        let rpc = self.clone();
        let caller = extensions.get::<Caller>().cloned();
        async move {
            rpc.authorize(&call, caller.as_ref()).await?;
            Ok(match rpc.answer_call(call).await? {
                Reply::Json(json) => {
                    Answer::Json(Box::<str>::from(json).into_string().into_bytes())
                }
                Reply::Bytes(bytes) => Answer::Json(bytes),
                Reply::Manifest(m) => Answer::Manifest {
                    bytes: m.bytes,
                    digest: m.digest.to_string(),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests;
