//! Params as the caller sent them → typed, refusing what no method takes.
//!
//! By name or by position (positional order is the method's list in [`dimsum_rest::params`]).
//! Every name must be one the method takes and every value of its type; `null` is the same as
//! leaving the param out. A misspelt `signedby` is refused with the right spelling, never
//! dropped: dropping it would answer without the signature check the caller asked for.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Parses `params` into `T`, whose fields are exactly `names` (camelCase).
pub(super) fn parse<T: DeserializeOwned>(
    params: &Params<'_>,
    names: &[&str],
) -> Result<T, ErrorObjectOwned> {
    let given = match params.as_str() {
        None => Value::Object(Map::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| invalid(&e.to_string()))?,
    };
    let object = match given {
        Value::Object(object) => object,
        Value::Array(items) if items.len() > names.len() => {
            return Err(invalid(&format!(
                "{} positional params given; this method takes at most {} ({})",
                items.len(),
                names.len(),
                names.join(", ")
            )));
        }
        Value::Array(items) => names.iter().map(|n| (*n).to_owned()).zip(items).collect(),
        _ => return Err(invalid("params must be an object or an array")),
    };
    for (name, value) in &object {
        if !names.contains(&name.as_str()) {
            return Err(invalid(&dimsum_rest::params::unknown(name, names)));
        }
        check_type(name, value).map_err(|e| invalid(&e))?;
    }
    serde_json::from_value(Value::Object(object)).map_err(|e| invalid(&e.to_string()))
}

/// `level` is a non-negative integer, `strict` a boolean, every other param a string.
fn check_type(name: &str, value: &Value) -> Result<(), String> {
    let (ok, expected) = match name {
        "level" => (value.is_u64(), "a non-negative integer"),
        "strict" => (value.is_boolean(), "true or false"),
        _ => (value.is_string(), "a string"),
    };
    match ok || value.is_null() {
        true => Ok(()),
        false => Err(format!("{name} must be {expected}, got {value}")),
    }
}

/// JSON-RPC's invalid params (-32602), with `data` naming it as every other error is named.
pub(super) fn invalid(message: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        -32602,
        format!("invalid params: {message}"),
        Some(serde_json::json!({"name": "invalid_params", "httpStatus": 400})),
    )
}
