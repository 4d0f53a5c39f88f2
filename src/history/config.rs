//! Decoding the parts of an image config the conversion reads, with Go's `encoding/json` rules
//! (history-conversion.md §2): keys match case-insensitively, members apply in document order so a
//! later duplicate wins, `null` leaves a scalar untouched, and a wrong JSON type is an error.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::Error;

/// A JSON object's members in document order, values kept as raw text.
#[derive(Debug)]
pub(crate) struct Members<'a>(pub(crate) Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Members<'a> {
    /// Parses `raw` as an object; `what` names it in the error.
    pub(crate) fn parse(raw: &'a [u8], what: &str) -> Result<Members<'a>, Error> {
        match kind(raw_first(raw)) {
            Some(Kind::Object) => {
                serde_json::from_slice(raw).map_err(|e| Error::InvalidJson(e.to_string()))
            }
            _ => {
                // Distinguish "not JSON at all" from "JSON, but not an object".
                serde_json::from_slice::<&RawValue>(raw)
                    .map_err(|e| Error::InvalidJson(e.to_string()))?;
                Err(Error::NotAnObject(what.to_owned()))
            }
        }
    }

    /// The members whose key equals `name` ignoring ASCII case, in document order.
    pub(crate) fn matching<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a RawValue> + 's {
        self.0
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The JSON type of a raw value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Bool,
    Null,
    Number,
}

fn raw_first(raw: &[u8]) -> Option<u8> {
    raw.iter().copied().find(|b| !b.is_ascii_whitespace())
}

pub(crate) fn kind(first: Option<u8>) -> Option<Kind> {
    Some(match first? {
        b'{' => Kind::Object,
        b'[' => Kind::Array,
        b'"' => Kind::String,
        b't' | b'f' => Kind::Bool,
        b'n' => Kind::Null,
        b'-' | b'0'..=b'9' => Kind::Number,
        _ => return None,
    })
}

pub(crate) fn kind_of(v: &RawValue) -> Kind {
    // A RawValue is valid JSON, so its first byte always names its type.
    kind(v.get().bytes().next()).unwrap_or(Kind::Null)
}

/// One `history[]` entry as Go's `imageHistory` struct sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `created` as written between the quotes (escapes not decoded: Go parses the raw bytes).
    pub(crate) created: Option<String>,
    pub(crate) author: String,
    pub(crate) created_by: String,
    pub(crate) comment: String,
    pub(crate) empty_layer: bool,
}

/// `rootfs` as Go's `*imageRootFS` sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RootFs {
    pub(crate) diff_ids: usize,
    pub(crate) base_layer: String,
}

/// The fields of the config the conversion reads.
#[derive(Debug, Default)]
pub(crate) struct Image {
    pub(crate) rootfs: Option<RootFs>,
    pub(crate) history: Vec<Entry>,
}

impl Image {
    pub(crate) fn decode(members: &Members<'_>) -> Result<Image, Error> {
        let mut image = Image::default();
        for (key, value) in &members.0 {
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "rootfs" => match kind_of(value) {
                    // A JSON null sets a pointer to nil.
                    Kind::Null => image.rootfs = None,
                    Kind::Object => {
                        let mut rootfs = image.rootfs.take().unwrap_or_default();
                        decode_rootfs(value, &mut rootfs)?;
                        image.rootfs = Some(rootfs);
                    }
                    _ => return Err(wrong("rootfs", "object")),
                },
                "history" => match kind_of(value) {
                    Kind::Null => image.history.clear(),
                    Kind::Array => {
                        let items: Vec<&RawValue> = from_raw(value)?;
                        let mut history = Vec::with_capacity(items.len());
                        for (i, item) in items.into_iter().enumerate() {
                            let mut entry = Entry::default();
                            decode_entry(item, i, &mut entry)?;
                            history.push(entry);
                        }
                        image.history = history;
                    }
                    _ => return Err(wrong("history", "array")),
                },
                "architecture" => {
                    string_field(value, "architecture")?;
                }
                _ => {}
            }
        }
        Ok(image)
    }
}

fn decode_rootfs(value: &RawValue, rootfs: &mut RootFs) -> Result<(), Error> {
    let members = Members::parse(value.get().as_bytes(), "rootfs")?;
    for (key, value) in &members.0 {
        match key.to_ascii_lowercase().as_str() {
            "diff_ids" => match kind_of(value) {
                Kind::Null => rootfs.diff_ids = 0,
                Kind::Array => {
                    let ids: Vec<&RawValue> = from_raw(value)?;
                    for id in &ids {
                        if !matches!(kind_of(id), Kind::String | Kind::Null) {
                            return Err(wrong("rootfs.diff_ids", "string"));
                        }
                    }
                    rootfs.diff_ids = ids.len();
                }
                _ => return Err(wrong("rootfs.diff_ids", "array")),
            },
            "base_layer" => {
                if let Some(s) = string_field(value, "rootfs.base_layer")? {
                    rootfs.base_layer = s;
                }
            }
            "type" => {
                string_field(value, "rootfs.type")?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn decode_entry(value: &RawValue, i: usize, entry: &mut Entry) -> Result<(), Error> {
    match kind_of(value) {
        // A null element leaves the zero entry: non-empty, zero time.
        Kind::Null => return Ok(()),
        Kind::Object => {}
        _ => return Err(wrong(&format!("history[{i}]"), "object")),
    }
    let members = Members::parse(value.get().as_bytes(), "history entry")?;
    for (key, value) in &members.0 {
        let key = key.to_ascii_lowercase();
        let field = |name: &str| format!("history[{i}].{name}");
        match key.as_str() {
            "created" => match kind_of(value) {
                Kind::Null => {}
                Kind::String => {
                    let raw = value.get();
                    entry.created = Some(raw[1..raw.len() - 1].to_owned());
                }
                _ => return Err(wrong(&field("created"), "string")),
            },
            "author" | "created_by" | "comment" => {
                if let Some(s) = string_field(value, &field(&key))? {
                    match key.as_str() {
                        "author" => entry.author = s,
                        "created_by" => entry.created_by = s,
                        _ => entry.comment = s,
                    }
                }
            }
            "empty_layer" => match kind_of(value) {
                Kind::Null => {}
                Kind::Bool => entry.empty_layer = value.get() == "true",
                _ => return Err(wrong(&field("empty_layer"), "boolean")),
            },
            _ => {}
        }
    }
    Ok(())
}

/// A string field: `Some` for a string, `None` for null (which leaves the field as it was).
fn string_field(value: &RawValue, field: &str) -> Result<Option<String>, Error> {
    match kind_of(value) {
        Kind::Null => Ok(None),
        Kind::String => from_raw(value).map(Some),
        _ => Err(wrong(field, "string")),
    }
}

fn from_raw<'a, T: Deserialize<'a>>(value: &'a RawValue) -> Result<T, Error> {
    serde_json::from_str(value.get()).map_err(|e| Error::InvalidJson(e.to_string()))
}

fn wrong(field: &str, expected: &'static str) -> Error {
    Error::WrongType {
        field: field.to_owned(),
        expected,
    }
}
