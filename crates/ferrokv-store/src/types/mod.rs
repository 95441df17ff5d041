//! Value types beyond strings, one module each.

pub mod hyperloglog;
