//! `WWW-Authenticate` challenge parsing.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dimsum::fuzzing::www_authenticate(data));
