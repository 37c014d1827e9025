//! Test tools shared by the integration tests (each uses a part).
#![allow(dead_code)]

pub mod cluster;
pub mod linearizability;
pub mod proxy;
