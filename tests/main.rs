//! Integration tests: added with the registry harness.
