//! DEBUG DIGEST and DEBUG DIGEST-VALUE: a SHA1-based fingerprint of the dataset or of some
//! values, computed as Valkey computes it, so that an operator (or a test) can check that a
//! replica, a reloaded snapshot or a ferrokv that replaced a Valkey holds the same data.
//!
//! The scheme (a format fact, checked against valkey-server 9.1 by `cases/debug.txt`):
//! `xor(d, bytes)` XORs SHA1(bytes) into the 20-byte digest `d`, so unordered parts (set
//! members, hash fields, keys) can be added in any order; `mix(d, bytes)` XORs and then
//! replaces `d` by SHA1(d), so ordered parts (list elements) keep their order. A value's
//! digest mixes its type code (4 bytes, big-endian) and then its contents; a key with a TTL
//! also XORs in the text `!!expire!!`. The dataset's digest mixes in each non-empty
//! database's index and `xor`s in each key's digest, which starts from the key's name.
//!
//! Streams are fingerprinted from their entries (IDs, fields and values) and last ID; Valkey
//! hashes its internal node bytes instead, so a stream's digest is ferrokv's own.

use ferrokv_protocol::number::format_double;
use ferrokv_store::types::stream::StreamId;
use ferrokv_store::{Entry, SHARD_COUNT, Value};

use crate::acl::user::hex;

type Digest = [u8; 20];

fn sha1(bytes: &[u8]) -> Digest {
    sha1_smol::Sha1::from(bytes).digest().bytes()
}

/// Adds `bytes` so that order does not matter.
fn xor(digest: &mut Digest, bytes: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(bytes)) {
        *d ^= h;
    }
}

/// Adds `bytes` so that order matters.
fn mix(digest: &mut Digest, bytes: &[u8]) {
    xor(digest, bytes);
    *digest = sha1(digest);
}

/// Adds an ordered pair (a member and its score, a field and its value) as one unordered
/// element.
fn xor_pair(digest: &mut Digest, first: &[u8], second: &[u8]) {
    let mut pair = [0u8; 20];
    mix(&mut pair, first);
    mix(&mut pair, second);
    xor(digest, &pair);
}

/// Valkey's type codes (those of the RDB object types).
fn type_code(value: &Value) -> u32 {
    match value {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Mixes the digest of a value (its type, its contents, whether it expires) into `digest`.
fn add_value(digest: &mut Digest, entry: &Entry, now_ms: i64) {
    mix(digest, &type_code(&entry.value).to_be_bytes());
    match &entry.value {
        Value::Str(s) => mix(digest, &s.to_bytes()),
        Value::List(list) => {
            for element in list.to_vecs() {
                mix(digest, &element);
            }
        }
        Value::Set(set) => {
            for member in set.iter() {
                xor(digest, &member.to_bytes());
            }
        }
        Value::ZSet(zset) => {
            for (member, score) in zset.iter() {
                xor_pair(digest, member, format_double(score).as_bytes());
            }
        }
        Value::Hash(hash) => {
            for (field, value) in hash.live_pairs(now_ms) {
                xor_pair(digest, field, value);
            }
        }
        Value::Stream(stream) => {
            for entry in stream.range(StreamId::default(), StreamId::MAX, false) {
                mix(digest, entry.id().to_string().as_bytes());
                for (field, value) in entry.fields() {
                    mix(digest, field);
                    mix(digest, value);
                }
            }
            mix(digest, stream.last_id.to_string().as_bytes());
        }
    }
    if entry.has_expire() {
        xor(digest, b"!!expire!!");
    }
}

/// The digest of one value, as DEBUG DIGEST-VALUE prints it (40 zeros for a missing key).
pub fn value_digest(entry: Option<&Entry>, now_ms: i64) -> String {
    let mut digest = [0u8; 20];
    if let Some(entry) = entry {
        add_value(&mut digest, entry, now_ms);
    }
    hex(&digest)
}

/// The digest of every live key of every database, taken with all shards locked (40 zeros
/// for an empty dataset).
pub fn dataset_digest(keyspace: &ferrokv_store::Keyspace, now_ms: i64) -> String {
    let mut total = [0u8; 20];
    let mut locked = keyspace.lock_all();
    for db in 0..keyspace.databases() {
        let mut keys = [0u8; 20];
        let mut any = false;
        for shard in 0..SHARD_COUNT {
            let Some(part) = locked.shard_db(shard, db) else {
                continue;
            };
            part.for_each(|key, entry| {
                if entry.is_expired(now_ms) {
                    return;
                }
                any = true;
                let mut digest = [0u8; 20];
                mix(&mut digest, key);
                add_value(&mut digest, entry, now_ms);
                xor(&mut keys, &digest);
            });
        }
        if any {
            // The database's index first, then its keys (XOR: in any order).
            mix(&mut total, &(db as u32).to_be_bytes());
            for (t, k) in total.iter_mut().zip(keys) {
                *t ^= k;
            }
        }
    }
    hex(&total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_keeps_order_and_xoring_does_not() {
        let mut ab = [0u8; 20];
        mix(&mut ab, b"a");
        mix(&mut ab, b"b");
        let mut ba = [0u8; 20];
        mix(&mut ba, b"b");
        mix(&mut ba, b"a");
        assert_ne!(ab, ba);
        let mut ab = [0u8; 20];
        xor(&mut ab, b"a");
        xor(&mut ab, b"b");
        let mut ba = [0u8; 20];
        xor(&mut ba, b"b");
        xor(&mut ba, b"a");
        assert_eq!(ab, ba);
    }

    #[test]
    fn a_string_value_digests_as_valkey_does() {
        // DEBUG DIGEST-VALUE of "hello" on valkey-server 9.1.2.
        let entry = Entry::new(Value::Str(ferrokv_store::StrValue::from_bytes(b"hello")), 0);
        assert_eq!(
            value_digest(Some(&entry), 0),
            "36b23a1456b2dce2c3ed252c456761301dba8060"
        );
        assert_eq!(value_digest(None, 0), "0".repeat(40));
    }
}
