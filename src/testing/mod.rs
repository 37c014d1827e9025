//! Test tools, compiled only into the crate's own tests and with the
//! `testing` feature (which the integration tests, benches and fuzz targets
//! turn on through a dev-dependency of the crate on itself): never into a
//! user's build. Not part of the API, no stability promise.
//!
//! - [`FaultFs`]: an in-memory [`crate::io::Fs`] with a durability model, a
//!   power-loss switch and failure injection;
//! - [`fuzz`]: the fuzz targets' entry points over the crate-private
//!   decoders, and the model test's driver.

mod fault_fs;
pub mod fuzz;

pub use fault_fs::{FailMode, FaultFs, OpKind, OpRecord, Repeat, SECTOR};
