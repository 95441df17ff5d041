//! Replication's I/O: a primary feeding its replicas ([`primary`]) and a replica following
//! its primary ([`replica`]). The shared state (role, ids, attached replicas, the link's
//! status) is `ferrokv_commands::replication`; the byte stream both sides carry is the
//! propagation stream (`ferrokv_commands::propagate`).

pub mod primary;
pub mod replica;
mod snapshot_channel;
mod sync_job;
