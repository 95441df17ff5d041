//! The collection types stored under keys, one module per type.

pub mod skiplist;
pub mod zset;
