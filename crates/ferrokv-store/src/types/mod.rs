//! Value types beyond plain strings, one module each.

pub(crate) mod bucket_table;
pub(crate) mod byte_splice;
pub mod geohash;
pub mod hash;
pub mod hyperloglog;
pub mod list;
pub mod listpack;
pub mod lzf;
pub mod set;
pub mod skiplist;
pub mod stream;
pub mod zpack;
pub mod zset;
