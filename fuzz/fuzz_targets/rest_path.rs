//! The REST shim's path and query parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimsum::fuzzing::rest_path(data));
