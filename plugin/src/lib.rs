//! dimsum's wire contract and its REST shim.
//!
//! # Layout
//! - [`codes`]: the application error codes, their names, and the code → HTTP status table.
//! - [`routes`]: the original dimsum's REST paths → a typed [`routes::Call`] (the JSON-RPC
//!   method's params).
//! - [`params`]: each method's and route's parameter names, and the message (with the nearest
//!   spelling) for one it does not take.
//! - [`layer`]: [`RestLayer`], a tower layer in front of the JSON-RPC endpoint that answers those
//!   paths by asking a [`layer::Backend`] (the service behind the JSON-RPC methods) and rendering
//!   its answer.
//!
//! The crate knows routes, method names and codes, never registries or history: the root crate
//! converts its errors into these codes in one place (`dimsum::Error::code`).

pub mod codes;
pub mod layer;
pub mod params;
pub mod routes;

pub use codes::Code;
pub use layer::RestLayer;
