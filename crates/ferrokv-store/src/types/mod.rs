//! The collection value types, one module each.

pub mod hash;
