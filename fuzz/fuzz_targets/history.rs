//! History synthesis from arbitrary config bytes (and labels).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimsum::fuzzing::history(data));
