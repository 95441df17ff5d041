//! Sets: written as INTSET (11) or SET (2), or SET_LISTPACK (20) for Valkey readers; read
//! from 2, 11 and 20, converted as Valkey converts on load.

use std::io::Read;

use ferrokv_protocol::number::parse_i64;
use ferrokv_store::types::listpack::{Elem, Listpack};
use ferrokv_store::types::set::{MemberTable, SetLimits};
use ferrokv_store::{SetValue, Value};

use crate::decode::Decoder;
use crate::encode::Encoder;
use crate::error::{RdbError, RdbErrorKind, RdbResult};
use crate::format::kind;
use crate::intset;
use crate::value::{ReadOptions, Target, bounded, read_blob};

pub fn write_set(e: &mut Encoder, set: &SetValue, target: Target) {
    match set {
        SetValue::Intset(ints) => {
            e.u8(kind::SET_INTSET);
            e.string(&intset::to_blob(ints));
        }
        // Redis 7.0 has no listpack sets; Valkey writes them as listpacks.
        SetValue::Listpack(members) if target == Target::Valkey80 => {
            e.u8(kind::SET_LISTPACK);
            let mut lp = Listpack::new();
            for m in members {
                lp.push_back(m);
            }
            e.string(&lp.to_blob());
        }
        _ => {
            e.u8(kind::SET);
            e.length(set.len() as u64);
            for member in set.iter() {
                e.string(&member.to_bytes());
            }
        }
    }
}

pub fn read_set<R: Read>(
    d: &mut Decoder<R>,
    type_byte: u8,
    options: &ReadOptions,
) -> RdbResult<Value> {
    let limits = &options.set;
    let set = match type_byte {
        kind::SET => read_plain(d, limits)?,
        kind::SET_INTSET => {
            let (at, blob) = read_blob(d)?;
            let ints =
                intset::from_blob(&blob).ok_or_else(|| RdbError::corrupt(at, "invalid intset"))?;
            let mut set = SetValue::Intset(ints);
            if set.len() > limits.intset_entries {
                to_hashtable(&mut set);
            }
            set
        }
        kind::SET_LISTPACK => {
            let (at, blob) = read_blob(d)?;
            let corrupt = || RdbError::corrupt(at, "invalid set listpack");
            let elements =
                ferrokv_store::types::listpack::blob_elements(&blob).ok_or_else(corrupt)?;
            let mut table = MemberTable::with_capacity(elements.len());
            for elem in &elements {
                if !table.insert(&elem.to_vec()) {
                    return Err(RdbError::corrupt(at, "duplicate set member"));
                }
            }
            if elements.len() > limits.listpack_entries {
                SetValue::Hashtable(table)
            } else {
                SetValue::Listpack(elements.iter().map(|e| elem_box(*e)).collect())
            }
        }
        other => return Err(d.error(RdbErrorKind::UnknownType(other))),
    };
    if set.is_empty() {
        return Err(d.error(RdbErrorKind::EmptyKey));
    }
    Ok(Value::Set(set))
}

fn elem_box(e: Elem<'_>) -> Box<[u8]> {
    e.to_vec().into_boxed_slice()
}

fn to_hashtable(set: &mut SetValue) {
    let mut table = MemberTable::with_capacity(set.len());
    for m in set.iter() {
        table.insert(&m.to_bytes());
    }
    *set = SetValue::Hashtable(table);
}

/// A plain set (type 2), shaped as Valkey shapes it while loading: a hashtable from the
/// start when the count passes `set-max-intset-entries`, else an intset that becomes a
/// listpack at the first non-integer member if everything so far fits the listpack limits,
/// and a hashtable when it no longer does.
fn read_plain<R: Read>(d: &mut Decoder<R>, limits: &SetLimits) -> RdbResult<SetValue> {
    let count = d.count()?;
    let mut set = if count > limits.intset_entries {
        SetValue::Hashtable(MemberTable::with_capacity(bounded(count)))
    } else {
        SetValue::new_intset()
    };
    let mut longest = 0usize;
    let mut member = Vec::new();
    for _ in 0..count {
        let at = d.offset();
        d.string_into(&mut member)?;
        longest = longest.max(member.len());
        let added = match &mut set {
            SetValue::Intset(ints) => match as_int(&member) {
                Some(n) => ints.insert(n),
                None => {
                    if ints.len() < limits.listpack_entries && longest <= limits.listpack_value {
                        let list = ints
                            .iter()
                            .map(|n| itoa::Buffer::new().format(n).as_bytes().into())
                            .collect();
                        set = SetValue::Listpack(list);
                    } else {
                        to_hashtable(&mut set);
                    }
                    add_loaded(&mut set, &member, limits, count)
                }
            },
            _ => add_loaded(&mut set, &member, limits, count),
        };
        if !added {
            return Err(RdbError::corrupt(at, "duplicate set member"));
        }
    }
    Ok(set)
}

/// Adds a member to a listpack or hashtable set being loaded; false if it was there.
fn add_loaded(set: &mut SetValue, member: &[u8], limits: &SetLimits, count: usize) -> bool {
    if let SetValue::Listpack(list) = set {
        if list.iter().any(|m| &**m == member) {
            return false;
        }
        if list.len() < limits.listpack_entries && member.len() <= limits.listpack_value {
            list.push(member.into());
            return true;
        }
        let mut table = MemberTable::with_capacity(bounded(count));
        for m in list.iter() {
            table.insert(m);
        }
        *set = SetValue::Hashtable(table);
    }
    match set {
        SetValue::Hashtable(table) => table.insert(member),
        // Only called on the two other encodings.
        _ => false,
    }
}

fn as_int(member: &[u8]) -> Option<i64> {
    if member.len() <= 20 {
        parse_i64(member)
    } else {
        None
    }
}
