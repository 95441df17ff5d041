//! Cluster mode. Today: the hash slot of a key, which `CLUSTER KEYSLOT` answers in every
//! mode and which cluster routing, redirections and slot migration will all go through.

pub mod slot;

pub use slot::{SLOT_COUNT, hash_tag, key_slot};
