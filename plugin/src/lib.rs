//! dimsum's wire contract, shared by every transport.
//!
//! # Layout
//! - [`codes`]: the application error codes, their names, and the code → HTTP status table.
//!
//! The crate knows codes, names and statuses, never registries or history: the root crate converts
//! its errors into these codes in one place (`dimsum::Error::code`).

pub mod codes;

pub use codes::Code;
