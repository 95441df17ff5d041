//! The deterministic commands Valkey propagates for consumer-group reads and claims: every
//! delivery or claim becomes an `XCLAIM ... FORCE JUSTID` that sets the pending entry's
//! owner, delivery time and count outright, and a read that moved the group's cursor ends
//! with `XGROUP SETID`, so a replica or the AOF reaches the same group state without
//! re-running the read.

use bytes::Bytes;
use ferrokv_store::types::stream::{ConsumerGroup, PendingEntry, StreamId};

fn id_arg(id: StreamId) -> Bytes {
    Bytes::from(id.to_bytes())
}

fn int_arg(n: i64) -> Bytes {
    Bytes::copy_from_slice(itoa::Buffer::new().format(n).as_bytes())
}

/// `XCLAIM key group consumer 0 id TIME t RETRYCOUNT n FORCE JUSTID LASTID group-last-id`:
/// `pending` as it stands (after a claim, or before a deleted entry leaves the PEL).
pub(super) fn xclaim_form(
    key: &Bytes,
    group_name: &Bytes,
    id: StreamId,
    pending: &PendingEntry,
    group_last_id: StreamId,
) -> Vec<Bytes> {
    crate::argv![
        "XCLAIM",
        key,
        group_name,
        Bytes::copy_from_slice(&pending.consumer),
        "0",
        id_arg(id),
        "TIME",
        int_arg(pending.delivery_time),
        "RETRYCOUNT",
        int_arg(i64::try_from(pending.delivery_count).unwrap_or(i64::MAX)),
        "FORCE",
        "JUSTID",
        "LASTID",
        id_arg(group_last_id),
    ]
}

/// The XCLAIM form of pending entry `id` of `group`, if it is pending.
pub(super) fn claimed(
    key: &Bytes,
    group_name: &Bytes,
    group: &ConsumerGroup,
    id: StreamId,
) -> Option<Vec<Bytes>> {
    let pending = group.pending.get(&id)?;
    Some(xclaim_form(key, group_name, id, pending, group.last_id))
}

/// `XGROUP SETID key group last-id ENTRIESREAD n`.
pub(super) fn setid(key: &Bytes, group_name: &Bytes, group: &ConsumerGroup) -> Vec<Bytes> {
    crate::argv![
        "XGROUP",
        "SETID",
        key,
        group_name,
        id_arg(group.last_id),
        "ENTRIESREAD",
        int_arg(group.entries_read),
    ]
}

/// `XGROUP CREATECONSUMER key group consumer`.
pub(super) fn create_consumer(key: &Bytes, group_name: &Bytes, consumer: &Bytes) -> Vec<Bytes> {
    crate::argv!["XGROUP", "CREATECONSUMER", key, group_name, consumer]
}
