//! The set type, in Valkey 9.1's three encodings and with its conversion rules.
//!
//! - `intset`: every member a canonical 64-bit integer, at most `set-max-intset-entries`
//!   members; kept sorted (see [`IntSet`]).
//! - `listpack`: at most `set-max-listpack-entries` members of at most
//!   `set-max-listpack-value` bytes, in insertion order.
//! - `hashtable`: anything else. A set never goes back to a compact encoding.
//!
//! The rules below were measured on valkey-server 9.1.2:
//! - a set created for a first member and a count of members to come is an intset if the
//!   member is an integer and the count fits the intset limit, else a listpack if the count
//!   fits the listpack limit, else a hashtable ([`SetValue::create`]);
//! - before adding several members to an existing compact set, a count above the limit of
//!   its encoding turns it into a hashtable ([`SetValue::convert_for_count`]);
//! - an intset that grows past its limit becomes a hashtable; one that gets a non-integer
//!   becomes a listpack if the result fits the listpack limits (counting the longest
//!   integer's decimal form), else a hashtable;
//! - the destination of SINTERSTORE, SUNIONSTORE, SDIFFSTORE starts as an empty intset and
//!   is converted by the same rules as its members are added ([`SetValue::new_intset`]).

mod intset;
mod member_table;

use std::borrow::Cow;

use ferrokv_protocol::number::parse_i64;
use rand::Rng;
use rand::seq::SliceRandom;

pub use intset::{IntSet, Width};
pub use member_table::MemberTable;

/// The encoding limits, from the `set-max-*` directives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetLimits {
    pub intset_entries: usize,
    pub listpack_entries: usize,
    pub listpack_value: usize,
}

impl Default for SetLimits {
    /// Valkey's defaults.
    fn default() -> Self {
        SetLimits {
            intset_entries: 512,
            listpack_entries: 128,
            listpack_value: 64,
        }
    }
}

/// One member, borrowed from a set: integers of an intset are not stored as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl Member<'_> {
    pub fn to_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Member::Int(n) => Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec()),
            Member::Bytes(b) => Cow::Borrowed(b),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.to_bytes().into_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Intset(IntSet),
    /// Insertion order; membership is a linear search, as in Valkey's listpack.
    Listpack(Vec<Box<[u8]>>),
    Hashtable(MemberTable),
}

/// A member as an intset integer, if it is one (canonical decimal form only).
fn as_int(member: &[u8]) -> Option<i64> {
    if member.len() <= 20 {
        parse_i64(member)
    } else {
        None
    }
}

fn decimal_len(n: i64) -> usize {
    itoa::Buffer::new().format(n).len()
}

impl SetValue {
    /// An empty set to receive members one by one (the destination of the *STORE commands).
    pub fn new_intset() -> SetValue {
        SetValue::Intset(IntSet::new())
    }

    /// A set about to receive `count` members, of which `first` is the first.
    pub fn create(first: &[u8], count: usize, limits: &SetLimits) -> SetValue {
        if as_int(first).is_some() && count <= limits.intset_entries {
            SetValue::Intset(IntSet::new())
        } else {
            SetValue::without_integer_hint(count, limits)
        }
    }

    /// A set about to receive `count` members without a first one to look at: a listpack if
    /// the count fits, else a hashtable (what SPOP rebuilds the kept members into).
    pub fn without_integer_hint(count: usize, limits: &SetLimits) -> SetValue {
        if count <= limits.listpack_entries {
            SetValue::Listpack(Vec::with_capacity(count.min(limits.listpack_entries)))
        } else {
            SetValue::Hashtable(MemberTable::with_capacity(count))
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Intset(_) => "intset",
            SetValue::Listpack(_) => "listpack",
            SetValue::Hashtable(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match self {
            SetValue::Intset(s) => s.len(),
            SetValue::Listpack(v) => v.len(),
            SetValue::Hashtable(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn heap_size(&self) -> usize {
        match self {
            SetValue::Intset(s) => s.heap_size(),
            SetValue::Listpack(v) => {
                v.capacity() * std::mem::size_of::<Box<[u8]>>()
                    + v.iter().map(|m| m.len()).sum::<usize>()
            }
            SetValue::Hashtable(t) => t.heap_size(),
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(s) => as_int(member).is_some_and(|n| s.contains(n)),
            SetValue::Listpack(v) => v.iter().any(|m| &**m == member),
            SetValue::Hashtable(t) => t.contains(member),
        }
    }

    /// Turns a compact set into a hashtable before `count` members are added, if the count
    /// alone exceeds its encoding's limit (SADD with many arguments).
    pub fn convert_for_count(&mut self, count: usize, limits: &SetLimits) {
        let too_many = match self {
            SetValue::Intset(_) => count > limits.intset_entries,
            SetValue::Listpack(_) => count > limits.listpack_entries,
            SetValue::Hashtable(_) => false,
        };
        if too_many {
            self.convert_to_hashtable(self.len() + count);
        }
    }

    fn convert_to_hashtable(&mut self, capacity: usize) {
        let mut table = MemberTable::with_capacity(capacity);
        for member in self.iter() {
            table.insert(&member.to_bytes());
        }
        *self = SetValue::Hashtable(table);
    }

    /// Adds `member`, converting the encoding as Valkey does; returns false if it was
    /// already a member.
    pub fn add(&mut self, member: &[u8], limits: &SetLimits) -> bool {
        match self {
            SetValue::Intset(s) => {
                if let Some(n) = as_int(member) {
                    if !s.insert(n) {
                        return false;
                    }
                    let len = s.len();
                    if len > limits.intset_entries {
                        self.convert_to_hashtable(len);
                    }
                    return true;
                }
                if s.len() < limits.listpack_entries && member.len() <= limits.listpack_value {
                    let longest = s
                        .min()
                        .into_iter()
                        .chain(s.max())
                        .map(decimal_len)
                        .max()
                        .unwrap_or(0);
                    if longest <= limits.listpack_value {
                        let mut list: Vec<Box<[u8]>> = Vec::with_capacity(s.len() + 1);
                        list.extend(s.iter().map(|n| Member::Int(n).to_bytes().into()));
                        list.push(member.into());
                        *self = SetValue::Listpack(list);
                        return true;
                    }
                }
                let len = s.len();
                self.convert_to_hashtable(len + 1);
                self.add(member, limits)
            }
            SetValue::Listpack(list) => {
                if list.iter().any(|m| &**m == member) {
                    return false;
                }
                if list.len() < limits.listpack_entries && member.len() <= limits.listpack_value {
                    list.push(member.into());
                    return true;
                }
                let len = list.len();
                self.convert_to_hashtable(len + 1);
                self.add(member, limits)
            }
            SetValue::Hashtable(t) => t.insert(member),
        }
    }

    /// Removes `member`; returns false if it was absent.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            SetValue::Intset(s) => as_int(member).is_some_and(|n| s.remove(n)),
            SetValue::Listpack(list) => match list.iter().position(|m| &**m == member) {
                Some(at) => {
                    list.remove(at);
                    true
                }
                None => false,
            },
            SetValue::Hashtable(t) => t.remove(member),
        }
    }

    /// The members in the encoding's order: ascending for an intset, insertion order for a
    /// listpack, bucket order for a hashtable.
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        let (ints, list, table) = match self {
            SetValue::Intset(s) => (Some(s.iter().map(Member::Int)), None, None),
            SetValue::Listpack(v) => (None, Some(v.iter().map(|m| Member::Bytes(m))), None),
            SetValue::Hashtable(t) => (None, None, Some(t.iter().map(Member::Bytes))),
        };
        ints.into_iter()
            .flatten()
            .chain(list.into_iter().flatten())
            .chain(table.into_iter().flatten())
    }

    /// A member drawn uniformly at random.
    pub fn random(&self, rng: &mut impl Rng) -> Option<Member<'_>> {
        if self.is_empty() {
            return None;
        }
        Some(match self {
            SetValue::Intset(s) => Member::Int(s.get(rng.random_range(0..s.len()))),
            SetValue::Listpack(v) => Member::Bytes(&v[rng.random_range(0..v.len())]),
            SetValue::Hashtable(t) => Member::Bytes(t.random(rng)?),
        })
    }

    /// Removes and returns a member drawn uniformly at random.
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        Some(match self {
            SetValue::Intset(s) => {
                let n = s.remove_at(rng.random_range(0..s.len()));
                Member::Int(n).to_vec()
            }
            SetValue::Listpack(v) => v.remove(rng.random_range(0..v.len())).into_vec(),
            SetValue::Hashtable(t) => t.pop_random(rng)?.into_vec(),
        })
    }

    /// `count` distinct members drawn at random (`count` below `len()`). A listpack's are
    /// returned in listpack order, as Valkey does; the others in no particular order.
    pub fn random_distinct(&self, count: usize, rng: &mut impl Rng) -> Vec<Member<'_>> {
        let len = self.len();
        match self {
            SetValue::Intset(_) | SetValue::Listpack(_) => {
                let chosen = choose_positions(len, count, rng);
                self.iter()
                    .enumerate()
                    .filter(|(i, _)| chosen[*i])
                    .map(|(_, m)| m)
                    .collect()
            }
            SetValue::Hashtable(t) => {
                if count * 3 > len {
                    // Most of the set: shuffle it all and keep a prefix.
                    let mut all: Vec<&[u8]> = t.iter().collect();
                    let (prefix, _) = all.partial_shuffle(rng, count);
                    prefix.iter().map(|m| Member::Bytes(m)).collect()
                } else {
                    let mut seen = std::collections::HashSet::with_capacity(count);
                    let mut out = Vec::with_capacity(count);
                    while out.len() < count {
                        let Some(m) = t.random(rng) else { break };
                        if seen.insert(m) {
                            out.push(Member::Bytes(m));
                        }
                    }
                    out
                }
            }
        }
    }

    /// Removes `count` distinct random members (`count` below `len()`) and returns them, as
    /// SPOP with a count does. When most of the set goes, Valkey keeps the few that stay
    /// instead: an intset or listpack keeps its order, a hashtable is rebuilt from the kept
    /// members (so it may become a listpack again).
    pub fn pop_random_distinct(
        &mut self,
        count: usize,
        limits: &SetLimits,
        rng: &mut impl Rng,
    ) -> Vec<Vec<u8>> {
        let len = self.len();
        let remaining = len.saturating_sub(count);
        if remaining * 5 > count {
            return (0..count).filter_map(|_| self.pop_random(rng)).collect();
        }
        match self {
            SetValue::Intset(s) => {
                let keep = choose_positions(len, remaining, rng);
                let popped = s
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !keep[*i])
                    .map(|(_, n)| Member::Int(n).to_vec())
                    .collect();
                s.retain_positions(|i| keep[i]);
                popped
            }
            SetValue::Listpack(v) => {
                let keep = choose_positions(len, remaining, rng);
                let mut popped = Vec::with_capacity(count);
                let mut kept = Vec::with_capacity(remaining);
                for (i, m) in std::mem::take(v).into_iter().enumerate() {
                    if keep[i] {
                        kept.push(m);
                    } else {
                        popped.push(m.into_vec());
                    }
                }
                *v = kept;
                popped
            }
            SetValue::Hashtable(t) => {
                let mut kept = SetValue::without_integer_hint(remaining, limits);
                for _ in 0..remaining {
                    if let Some(m) = t.pop_random(rng) {
                        kept.add(&m, limits);
                    }
                }
                let popped = t.iter().map(<[u8]>::to_vec).collect();
                *self = kept;
                popped
            }
        }
    }

    /// SSCAN over a hashtable: one bucket per step until `count` members were seen or the
    /// walk ends. Compact encodings are returned whole with cursor 0, as Valkey does.
    pub fn scan(&self, cursor: u64, count: usize, mut visit: impl FnMut(Member<'_>)) -> u64 {
        let SetValue::Hashtable(t) = self else {
            self.iter().for_each(visit);
            return 0;
        };
        let mut cursor = cursor;
        let mut seen = 0;
        // Bounded like Valkey's scan: empty buckets also cost a step.
        let mut steps = count.saturating_mul(10).max(1);
        loop {
            cursor = t.scan_step(cursor, |m| {
                seen += 1;
                visit(Member::Bytes(m));
            });
            steps -= 1;
            if cursor == 0 || seen >= count || steps == 0 {
                return cursor;
            }
        }
    }
}

/// Marks `count` of `len` positions, chosen uniformly at random (Floyd's algorithm when few
/// are chosen, a partial shuffle otherwise).
fn choose_positions(len: usize, count: usize, rng: &mut impl Rng) -> Vec<bool> {
    let mut chosen = vec![false; len];
    let count = count.min(len);
    if count * 2 <= len {
        for j in len - count..len {
            let t = rng.random_range(0..=j);
            let pick = if chosen[t] { j } else { t };
            chosen[pick] = true;
        }
    } else {
        let mut positions: Vec<usize> = (0..len).collect();
        let (prefix, _) = positions.partial_shuffle(rng, count);
        for &p in prefix.iter() {
            chosen[p] = true;
        }
    }
    chosen
}

#[cfg(test)]
mod tests;
