//! Manifest classification and parsing, digest and signed-schema1 payload handling.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimsum::fuzzing::manifest(data));
