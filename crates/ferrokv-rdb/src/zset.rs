//! Sorted sets: written as ZSET_LISTPACK (17) or ZSET_2 (5, binary scores); read from 3
//! (text scores), 5, 12 (ziplist) and 17, converted as Valkey converts on load.

use std::collections::HashSet;
use std::io::Read;

use ferrokv_protocol::number::format_double;
use ferrokv_store::Value;
use ferrokv_store::types::listpack::{self, Elem, Listpack};
use ferrokv_store::types::skiplist;
use ferrokv_store::types::zset::{Pair, ZSet};

use crate::decode::Decoder;
use crate::encode::Encoder;
use crate::error::{RdbError, RdbErrorKind, RdbResult};
use crate::format::kind;
use crate::value::{ReadOptions, bounded, read_blob};
use crate::ziplist;

pub fn write_zset(e: &mut Encoder, zset: &ZSet) {
    match zset {
        ZSet::Listpack(_) => {
            e.u8(kind::ZSET_LISTPACK);
            let mut lp = Listpack::new();
            for (member, score) in zset.iter() {
                lp.push_back(member);
                lp.push_back(format_double(score).as_bytes());
            }
            e.string(&lp.to_blob());
        }
        ZSet::Skiplist(_) => {
            // Highest first, as Redis writes them: each load then inserts at the head.
            e.u8(kind::ZSET_2);
            e.length(zset.len() as u64);
            for (member, score) in zset.range(0, zset.len(), true) {
                e.string(member);
                e.binary_double(score);
            }
        }
    }
}

pub fn read_zset<R: Read>(
    d: &mut Decoder<R>,
    type_byte: u8,
    options: &ReadOptions,
) -> RdbResult<Value> {
    let limits = options.zset;
    let zset = match type_byte {
        kind::ZSET | kind::ZSET_2 => {
            let count = d.count()?;
            let mut pairs: Vec<Pair> = Vec::with_capacity(bounded(count));
            let mut seen = HashSet::with_capacity(bounded(count));
            for _ in 0..count {
                let at = d.offset();
                let member = d.string()?;
                let score = if type_byte == kind::ZSET {
                    d.text_double()?
                } else {
                    d.binary_double()?
                };
                if score.is_nan() {
                    return Err(RdbError::corrupt(at, "NaN score"));
                }
                if !seen.insert(member.clone()) {
                    return Err(RdbError::corrupt(at, "duplicate sorted set member"));
                }
                pairs.push((member.into_boxed_slice(), score));
            }
            sort(&mut pairs);
            ZSet::from_sorted(pairs, limits)
        }
        kind::ZSET_ZIPLIST | kind::ZSET_LISTPACK => {
            let (at, blob) = read_blob(d)?;
            let elements = if type_byte == kind::ZSET_ZIPLIST {
                ziplist::entries(&blob).ok_or_else(|| RdbError::corrupt(at, "invalid ziplist"))?
            } else {
                listpack::blob_elements(&blob)
                    .ok_or_else(|| RdbError::corrupt(at, "invalid listpack"))?
            };
            let mut pairs = blob_pairs(at, &elements)?;
            sort(&mut pairs);
            // Converted on the count only (measured on valkey-server 9.1).
            if pairs.len() > limits.max_listpack_entries {
                ZSet::from_sorted(pairs, limits)
            } else {
                ZSet::listpack_of(&pairs)
            }
        }
        other => return Err(d.error(RdbErrorKind::UnknownType(other))),
    };
    if zset.is_empty() {
        return Err(d.error(RdbErrorKind::EmptyKey));
    }
    Ok(Value::ZSet(zset))
}

/// Member/score pairs of a compact blob, refusing an odd count, a score that is not a
/// number and a repeated member. A zero score is stored as 0 (the compact form has no -0).
fn blob_pairs(at: u64, elements: &[Elem<'_>]) -> RdbResult<Vec<Pair>> {
    if !elements.len().is_multiple_of(2) {
        return Err(RdbError::corrupt(at, "odd number of sorted set entries"));
    }
    let mut pairs = Vec::with_capacity(elements.len() / 2);
    for pair in elements.chunks_exact(2) {
        let member = pair[0].to_vec();
        let score = match pair[1] {
            Elem::Int(n) => n as f64,
            Elem::Str(s) => std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|f| !f.is_nan())
                .ok_or_else(|| RdbError::corrupt(at, "invalid sorted set score"))?,
        };
        let score = if score == 0.0 { 0.0 } else { score };
        pairs.push((member.into_boxed_slice(), score));
    }
    // Sorting references is cheaper than hashing each member for these small sets.
    let mut members: Vec<&[u8]> = pairs.iter().map(|(m, _)| &m[..]).collect();
    members.sort_unstable();
    if members.windows(2).any(|w| w[0] == w[1]) {
        return Err(RdbError::corrupt(at, "duplicate sorted set member"));
    }
    Ok(pairs)
}

fn sort(pairs: &mut [Pair]) {
    pairs.sort_by(|a, b| skiplist::compare(a.1, &a.0, b.1, &b.0));
}
