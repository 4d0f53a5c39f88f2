//! Entry points for the fuzz targets in `fuzz/` (and the corpus replay in the test suite): each
//! feeds arbitrary bytes to one parser and checks what must hold for any input.

use crate::history;
use crate::registry::challenge::parse_challenges;
use crate::registry::digest::{Digest, schema1_canonical_payload};
use crate::registry::manifest::Manifest;

/// The REST route parser: never panics; the account and reference of a matched route are
/// single segments (repositories are validated later, by the registry module).
pub fn rest_path(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    if let Ok(call) = dimsum_rest::routes::route(path, query) {
        assert!(!call.account.contains('/') && !call.reference.contains('/'));
        // A matched route read no parameter twice, and an empty digest is none.
        let pairs = dimsum_rest::routes::query_params(query.unwrap_or("")).unwrap_or_default();
        for name in ["level", "platform", "strict", "digest"] {
            assert!(pairs.iter().filter(|(k, _)| k == name).count() <= 1);
        }
        assert!(call.digest.as_deref() != Some(""));
    }
}

/// `WWW-Authenticate` parsing: never panics; a Bearer realm is always http(s).
pub fn www_authenticate(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(crate::registry::challenge::Challenge::Bearer { realm, .. }) =
        parse_challenges(text.split('\n'))
    {
        assert!(matches!(realm.scheme(), "http" | "https"));
    }
}

/// Manifest parsing under every content type we know, and digest handling of the bytes.
pub fn manifest(data: &[u8]) {
    for content_type in [
        None,
        Some("application/json"),
        Some(crate::registry::manifest::DOCKER_SCHEMA1_SIGNED),
    ] {
        if let Ok(Manifest::Image { layers, .. }) = Manifest::parse(content_type, data) {
            assert!(layers.iter().all(|l| Digest::parse(l).is_some()));
        }
    }
    if let Some(payload) = schema1_canonical_payload(data) {
        let _ = Digest::sha256(&payload);
    }
}

/// History synthesis from arbitrary config bytes against a few layer sets: never panics; an
/// answer has as many entries as fsLayers, each a JSON object with an id.
pub fn history(data: &[u8]) {
    let layer = |b: &[u8]| Digest::sha256(b).as_str().to_owned();
    let sets: [Vec<String>; 3] = [
        vec![],
        vec![layer(b"a")],
        vec![layer(b"a"), layer(b"b"), layer(b"c")],
    ];
    for layers in &sets {
        for strict in [false, true] {
            if let Ok(h) = history::build(data, layers, history::Options { strict }) {
                assert_eq!(h.entries.len(), h.fs_layers.len());
                for e in &h.entries {
                    // Valid JSON text, an object with an id. (Not parsed into numbers: like Go's
                    // RawMessage, the top entry copies values such as `2E3041` verbatim.)
                    serde_json::from_str::<&serde_json::value::RawValue>(e)
                        .expect("entries are JSON");
                    assert!(e.starts_with('{') && e.contains("\"id\":\""), "{e}");
                }
                let _ = history::labels(h.entries[0].as_bytes());
            }
        }
    }
    let _ = history::labels(data);
}

/// The configuration loader: never panics, whatever the file says.
pub fn config(data: &[u8]) {
    let env = |k: &str| (k == "SET").then(|| "value".to_owned());
    if let Ok(layer) = crate::config::Layer::from_reader("fuzz.yml", data, &env) {
        let _ = crate::config::Config::from_layers(vec![layer]);
    }
}
