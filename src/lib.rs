//! wisckey: an embeddable key-value storage engine that separates keys from
//! values (WiscKey, FAST '16).
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod coding;
mod error;
pub mod io;
mod lsm;

pub use error::{Error, Result};
