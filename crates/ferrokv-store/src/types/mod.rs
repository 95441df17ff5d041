//! Value types beyond strings, one module each.

pub mod list;
pub mod listpack;
