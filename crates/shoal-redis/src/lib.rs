//! Redis adapter for Shoal (being written).

pub mod wire;
