//! The configuration loader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimsum::fuzzing::config(data));
