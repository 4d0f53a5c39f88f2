//! Schema2/OCI → schema1 history, byte-identical to distribution v2.8.2 (history-conversion.md).
//!
//! Pure functions, no I/O. [`build`] takes the config blob's bytes **as stored** and the manifest's
//! layer digests and returns the `history[].v1Compatibility` strings, newest first:
//!
//! 1. Decode `rootfs` and `history` with Go's rules ([`config`], §2).
//! 2. Walk the history oldest first; each non-empty entry takes the next layer, an `empty_layer`
//!    entry takes the constant [`EMPTY_LAYER`]; ids chain as `sha256(enc(blob) + " " + parent)`
//!    (§3). Layers beyond the non-empty entries are dropped, as distribution drops them.
//! 3. Older entries are rendered from a fixed key order ([`plain_entry`], §4); the newest is the
//!    config itself with `rootfs`/`history` removed, `id`/`parent`/`throwaway` set, keys sorted and
//!    values compacted verbatim ([`top_entry`], §5). Its id also hashes the raw config bytes.
//!
//! Where distribution would refuse or crash, [`extend`] supplies the documented dimsum rules (§11)
//! and reports which fired; `strict` turns each into an error instead.

pub(crate) mod config;
pub mod extend;
mod gojson;
pub(crate) mod gotime;

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256, Sha384};

use self::config::{Entry, Image, Kind, Members};
pub use self::extend::Extension;
use self::gotime::GoTime;
pub use self::gotime::TimeError;

/// The digest distribution substitutes for `empty_layer` entries: a 32-byte gzip of 1024 NULs.
pub const EMPTY_LAYER: &str =
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

/// How to convert.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Refuse (with the distribution failure) instead of applying a §11 extension.
    pub strict: bool,
}

/// The converted history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// `v1Compatibility` JSON objects, newest first: index 0 is the image config.
    pub entries: Vec<String>,
    /// The schema1 `fsLayers[].blobSum` matching each entry.
    pub fs_layers: Vec<String>,
    /// The dimsum extensions that fired; empty means the output is exactly distribution's.
    pub extensions: Vec<Extension>,
}

/// Why a config cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The config is not valid JSON.
    #[error("config is not valid JSON: {0}")]
    InvalidJson(String),
    /// The config (or a part that must be an object) is not a JSON object.
    #[error("{0} is not a JSON object")]
    NotAnObject(String),
    /// A field the conversion reads has the wrong JSON type (distribution fails the same way).
    #[error("config field {field} is not a JSON {expected}")]
    WrongType {
        /// Path of the field, e.g. `history[2].created_by`.
        field: String,
        /// The JSON type Go expects there.
        expected: &'static str,
    },
    /// A `created` time Go cannot print (a year outside 0..=9999).
    #[error("history[{index}].created: {source}")]
    Time {
        /// Index in the config's `history`.
        index: usize,
        /// The time error.
        source: TimeError,
    },
    /// `strict` was asked for and distribution would have refused this image.
    #[error("distribution 2.8 cannot convert this image ({0}) and strict conversion was requested")]
    Strict(Extension),
}

/// Converts a config blob and its manifest's layer digests into schema1 history entries.
pub fn build(config: &[u8], layers: &[String], options: Options) -> Result<History, Error> {
    let members = Members::parse(config, "image config")?;
    let image = Image::decode(&members)?;
    let mut extensions = Vec::new();
    let mut note = |e: Extension| -> Result<(), Error> {
        if options.strict {
            return Err(Error::Strict(e));
        }
        extensions.push(e);
        Ok(())
    };

    let top_level = top_level_map(&members);
    let mut history = image.history;
    if history.is_empty() {
        note(Extension::EmptyHistory)?;
        history = extend::synthesize(layers.len(), top_level.get("created").copied());
    }
    match &image.rootfs {
        None => note(Extension::MissingRootfs)?,
        Some(r) if r.diff_ids != layers.len() => note(Extension::DiffIdsMismatch {
            diff_ids: r.diff_ids,
            layers: layers.len(),
        })?,
        Some(_) => {}
    }
    let non_empty = history.iter().filter(|h| !h.empty_layer).count();
    if non_empty > layers.len() {
        note(Extension::TooManyNonEmptyEntries {
            entries: non_empty,
            layers: layers.len(),
        })?;
        history = extend::synthesize(layers.len(), top_level.get("created").copied());
    }
    let mut created = Vec::with_capacity(history.len());
    for (index, entry) in history.iter().enumerate() {
        created.push(match &entry.created {
            None => gotime::ZERO,
            Some(text) => match GoTime::parse(text) {
                Ok(t) => t,
                Err(TimeError::YearRange(_)) | Err(TimeError::Parse(_)) => {
                    note(Extension::LenientTime {
                        index,
                        value: text.clone(),
                    })?;
                    GoTime::parse_lenient(text).unwrap_or(gotime::ZERO)
                }
            },
        });
    }
    let base_layer = image
        .rootfs
        .as_ref()
        .map(|r| r.base_layer.as_str())
        .unwrap_or("");

    let n = history.len();
    let mut entries = vec![String::new(); n];
    let mut fs_layers = vec![String::new(); n];
    let mut parent = String::new();
    let mut next_layer = layers.iter();
    for (i, entry) in history[..n - 1].iter().enumerate() {
        let blob = take_blob(entry, &mut next_layer);
        let id = sha256_hex(&[encoded(blob), " ", &parent]);
        if i == 0 && !base_layer.is_empty() {
            // §6: a Windows base layer becomes the oldest entry's parent (ids are unaffected).
            parent = hex::encode(&Sha384::digest(base_layer.as_bytes())[..32]);
        }
        entries[n - 1 - i] = plain_entry(&id, &parent, entry, created[i]);
        fs_layers[n - 1 - i] = blob.to_owned();
        parent = id;
    }
    let last = &history[n - 1];
    // §3: the newest entry takes the next layer without advancing (nothing follows it).
    let blob = take_blob(last, &mut next_layer);
    let mut h = Sha256::new();
    for part in [encoded(blob), " ", &parent, " "] {
        h.update(part.as_bytes());
    }
    h.update(config);
    let top_id = hex::encode(h.finalize());
    entries[0] = top_entry(top_level, &top_id, &parent, last.empty_layer);
    fs_layers[0] = blob.to_owned();
    Ok(History {
        entries,
        fs_layers,
        extensions,
    })
}

/// The config's top-level members with decoded keys, later duplicates winning (Go's map decode).
fn top_level_map<'m, 'a>(members: &'m Members<'a>) -> BTreeMap<&'m str, &'a RawValue> {
    members.0.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

fn take_blob<'a>(entry: &Entry, layers: &mut std::slice::Iter<'a, String>) -> &'a str {
    if entry.empty_layer {
        return EMPTY_LAYER;
    }
    // The count check above guarantees a layer for every non-empty entry.
    layers.next().map(String::as_str).unwrap_or(EMPTY_LAYER)
}

/// `enc(d)`: the part of a digest after the algorithm.
fn encoded(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// §4: `{"id","parent"?,"comment"?,"created","container_config":{"Cmd":[…]},"author"?,"throwaway"?}`.
fn plain_entry(id: &str, parent: &str, entry: &Entry, created: GoTime) -> String {
    let mut out = Vec::with_capacity(160 + entry.created_by.len());
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(id.as_bytes());
    out.push(b'"');
    if !parent.is_empty() {
        out.extend_from_slice(b",\"parent\":\"");
        out.extend_from_slice(parent.as_bytes());
        out.push(b'"');
    }
    if !entry.comment.is_empty() {
        out.extend_from_slice(b",\"comment\":");
        gojson::write_string(&mut out, &entry.comment);
    }
    out.extend_from_slice(b",\"created\":\"");
    out.extend_from_slice(created.format().as_bytes());
    out.extend_from_slice(b"\",\"container_config\":{\"Cmd\":[");
    gojson::write_string(&mut out, &entry.created_by);
    out.extend_from_slice(b"]}");
    if !entry.author.is_empty() {
        out.extend_from_slice(b",\"author\":");
        gojson::write_string(&mut out, &entry.author);
    }
    if entry.empty_layer {
        out.extend_from_slice(b",\"throwaway\":true");
    }
    out.push(b'}');
    into_string(out)
}

/// §5: the config's own members minus `rootfs`/`history`, with `id`, `parent` and `throwaway`
/// set, keys sorted by bytes and values compacted verbatim with HTML escaping.
fn top_entry(
    mut map: BTreeMap<&str, &RawValue>,
    id: &str,
    parent: &str,
    throwaway: bool,
) -> String {
    // Case-sensitive on purpose: Go's `delete(configAsMap, "history")` leaves a `History` key.
    map.remove("rootfs");
    map.remove("history");
    let id = format!("\"{id}\"");
    let parent = (!parent.is_empty()).then(|| format!("\"{parent}\""));
    let mut owned: BTreeMap<&str, &str> = map.iter().map(|(k, v)| (*k, v.get())).collect();
    owned.insert("id", &id);
    if let Some(parent) = &parent {
        owned.insert("parent", parent);
    }
    if throwaway {
        owned.insert("throwaway", "true");
    }
    let mut out = Vec::with_capacity(owned.values().map(|v| v.len() + 16).sum());
    out.push(b'{');
    for (i, (key, value)) in owned.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        gojson::write_string(&mut out, key);
        out.push(b':');
        gojson::compact(&mut out, value.as_bytes(), true);
    }
    out.push(b'}');
    into_string(out)
}

fn into_string(bytes: Vec<u8>) -> String {
    // Everything written is UTF-8: ASCII framing plus slices of valid UTF-8 strings split only at
    // ASCII bytes or whole U+2028/U+2029 sequences.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The config's `config.Labels` as compact JSON; `{}` when missing or `null`. Keys match
/// case-insensitively, as Docker's own Go structs decode them.
pub fn labels(config: &[u8]) -> Result<String, Error> {
    let members = Members::parse(config, "image config")?;
    let Some(inner) = members.matching("config").last() else {
        return Ok("{}".to_owned());
    };
    match config::kind_of(inner) {
        Kind::Null => return Ok("{}".to_owned()),
        Kind::Object => {}
        _ => {
            return Err(Error::WrongType {
                field: "config".to_owned(),
                expected: "object",
            });
        }
    }
    let inner = Members::parse(inner.get().as_bytes(), "config")?;
    match inner.matching("labels").last() {
        None => Ok("{}".to_owned()),
        Some(v) => match config::kind_of(v) {
            Kind::Null => Ok("{}".to_owned()),
            Kind::Object => {
                let mut out = Vec::with_capacity(v.get().len());
                gojson::compact(&mut out, v.get().as_bytes(), false);
                Ok(into_string(out))
            }
            _ => Err(Error::WrongType {
                field: "config.Labels".to_owned(),
                expected: "object",
            }),
        },
    }
}

/// The legacy list form, `[{"v1Compatibility":"…"},…]`, each entry as a Go-encoded JSON string.
pub fn to_list(entries: &[String]) -> String {
    let mut out = Vec::with_capacity(entries.iter().map(|e| e.len() + 40).sum());
    out.push(b'[');
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"v1Compatibility\":");
        gojson::write_string(&mut out, entry);
        out.push(b'}');
    }
    out.push(b']');
    into_string(out)
}

#[cfg(test)]
mod tests;
