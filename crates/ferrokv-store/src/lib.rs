//! The keyspace: values, databases, expiry and the sharding that lets every core work on it.
//!
//! Layout: a [`Keyspace`] is a fixed number of shards, each behind its own mutex. A key lives
//! in the shard chosen by its hash, in every database: a shard holds one [`Db`] per logical
//! database. So commands that move a key between databases (MOVE, COPY ... DB) lock one shard,
//! and locking "everything" (FLUSHALL, SWAPDB, transactions) is one pass over the shards in
//! index order, which is also the order every multi-key lock uses, so there are no deadlocks.

pub mod access;
mod bits;
pub mod clock;
pub mod db;
pub mod effects;
pub mod events;
pub mod glob;
pub mod keyspace;
mod node;
pub mod replica_view;
pub mod snapshot;
pub mod table;
pub mod types;
pub mod value;

pub use db::{Db, Entry, NO_EXPIRE};
pub use keyspace::{Hold, Keyspace, Locked, SHARD_COUNT, Shard};
pub use snapshot::ShardDumper;
pub use types::list::{ListLimits, ListValue, QuicklistStats};
pub use types::set::{SetLimits, SetValue};
pub use value::{ObjectType, StrRef, StrValue, Value};
