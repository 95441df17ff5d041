//! Persistence of the live keyspace: point-in-time snapshots taken while clients keep
//! writing, without fork (see [`snapshot`]), the places their bytes go ([`sink`]: a file
//! now, a replica's socket later), and loading a snapshot file at start-up ([`load`]).
//!
//! This crate knows the keyspace and the RDB format, not the server: the command layer
//! decides when to save and keeps the status INFO reports.

pub mod durable;
pub mod load;
pub mod sink;
pub mod snapshot;

pub use load::{DroppedAsExpired, ExpiredFields, LoadError, LoadOptions, LoadReport, load_file};
pub use sink::{FileSink, SnapshotSink};
pub use snapshot::{SaveOptions, SaveReport, Snapshot};
