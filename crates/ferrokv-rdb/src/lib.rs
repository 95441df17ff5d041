//! The RDB format: how values, DUMP payloads and snapshot files are laid out on disk and on
//! the wire, as Redis 7.0 (RDB 10) writes them and as later Redis and Valkey versions
//! (RDB 11, 12, Valkey's `VALKEY080`) extend them.
//!
//! The crate knows bytes, not files or threads: [`encode::Encoder`] and [`decode::Decoder`]
//! are the primitives (lengths, strings, doubles), [`value`] turns one [`Value`] into its
//! type byte and payload and back, [`file`] frames whole snapshots (header, aux fields,
//! databases, expiry, EOF and checksum) and [`dump`] frames DUMP/RESTORE payloads. Saving a
//! live keyspace without stopping it is the persistence layer's job.
//!
//! [`Value`]: ferrokv_store::Value

pub mod crc64;
pub mod decode;
pub mod dump;
pub mod encode;
pub mod error;
pub mod file;
pub mod format;
pub mod frame;
pub mod hash;
pub mod intset;
pub mod list;
pub mod set;
pub mod stream;
pub mod stream_node;
pub mod value;
pub mod ziplist;
pub mod zipmap;
pub mod zset;

pub use error::{RdbError, RdbResult};
