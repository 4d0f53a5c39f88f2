//! Prints a keyless cosign signature of DIGEST made by the integration tests' offline Sigstore
//! (tests/harness/sigstore.rs), for `bench/origin`:
//! `{"trustedRoot": "…", "payload": "…", "annotations": {…}}`.
//!
//! Usage: cargo run --example keyless-fixture -- sha256:…
#![allow(unreachable_pub, dead_code)]

#[path = "../tests/harness/sigstore.rs"]
mod sigstore;

fn main() {
    let digest = std::env::args()
        .nth(1)
        .expect("usage: keyless-fixture DIGEST");
    let s = sigstore::TestSigstore::new();
    let (payload, annotations) =
        s.cosign_layer(&sigstore::Who::release(), &digest, sigstore::Tamper::None);
    let out = serde_json::json!({
        "trustedRoot": s.trusted_root(),
        "payload": String::from_utf8(payload).expect("the payload is JSON text"),
        "annotations": annotations,
    });
    println!("{out}");
}
