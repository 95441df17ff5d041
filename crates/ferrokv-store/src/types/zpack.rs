//! The compact form of a small sorted set: every (member, score) pair in one byte buffer,
//! in (score, member) order.
//!
//! An element is `[member length: LEB128 varint][member bytes][score]`. A score that is an
//! integer of magnitude below 2^53 (and not -0) is stored as one byte when it lies in
//! `0..=SMALL_MAX`, else as a tag `WIDE_INT + n` and the n low bytes of its zigzag form;
//! any other score as the tag `DOUBLE` and its 8 bytes. So the usual member with an integer
//! score costs two bytes more than its text, as Valkey's listpack costs three, and no
//! allocation of its own. Lookups are linear walks, which for the sizes this form is used
//! for (`zset-max-listpack-entries`, default 128) stay within a few cache lines.

use std::cmp::Ordering;

use super::skiplist;

/// Largest score stored in its one tag byte.
const SMALL_MAX: u8 = 0xEF;
/// `WIDE_INT + n` (n in 1..=8): an integer score in n zigzag bytes follows.
const WIDE_INT: u8 = 0xF0;
/// An f64 score in 8 bytes follows.
const DOUBLE: u8 = 0xFF;

/// First byte of a front-coded element whose lengths follow as varints.
const FRONT_ESCAPE: u8 = 0xFF;

/// Largest integer a double represents exactly, with every integer below it.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// A sorted set's elements in one buffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZPack {
    buf: Vec<u8>,
    len: usize,
}

fn put_varint(buf: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf.push(byte);
            return;
        }
        buf.push(byte | 0x80);
    }
}

/// Reads a varint at `pos`: (value, position after it). The buffer is written only by
/// `put_varint`, or checked by [`ZPack::from_bytes`].
fn get_varint(buf: &[u8], mut pos: usize) -> Option<(usize, usize)> {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let byte = *buf.get(pos)?;
        pos += 1;
        if shift >= usize::BITS {
            return None;
        }
        n |= ((byte & 0x7f) as usize) << shift;
        if byte & 0x80 == 0 {
            return Some((n, pos));
        }
        shift += 7;
    }
}

/// The score as an integer, when storing it as one loses nothing (not -0, exact).
fn as_exact_int(score: f64) -> Option<i64> {
    if score.fract() != 0.0 || score.abs() >= EXACT_INT {
        return None;
    }
    let n = score as i64;
    ((n as f64).to_bits() == score.to_bits()).then_some(n)
}

fn put_score(buf: &mut Vec<u8>, score: f64) {
    match as_exact_int(score) {
        Some(n) if (0..=SMALL_MAX as i64).contains(&n) => buf.push(n as u8),
        Some(n) => {
            let zigzag = ((n << 1) ^ (n >> 63)) as u64;
            let bytes = (8 - zigzag.leading_zeros() as usize / 8).max(1);
            buf.push(WIDE_INT + bytes as u8);
            buf.extend_from_slice(&zigzag.to_le_bytes()[..bytes]);
        }
        None => {
            buf.push(DOUBLE);
            buf.extend_from_slice(&score.to_le_bytes());
        }
    }
}

/// Reads a score at `pos`: (score, position after it).
fn get_score(buf: &[u8], pos: usize) -> Option<(f64, usize)> {
    let tag = *buf.get(pos)?;
    let pos = pos + 1;
    match tag {
        0..=SMALL_MAX => Some((f64::from(tag), pos)),
        DOUBLE => {
            let bytes = buf.get(pos..pos + 8)?;
            let score = f64::from_le_bytes(bytes.try_into().ok()?);
            Some((score, pos + 8))
        }
        _ => {
            let n = (tag - WIDE_INT) as usize;
            let mut word = [0u8; 8];
            word[..n].copy_from_slice(buf.get(pos..pos + n)?);
            let zigzag = u64::from_le_bytes(word);
            let value = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
            Some((value as f64, pos + n))
        }
    }
}

/// One element and where it sits.
#[derive(Debug, Clone, Copy)]
struct At<'a> {
    start: usize,
    member: &'a [u8],
    score: f64,
    end: usize,
}

fn element_at(buf: &[u8], start: usize) -> Option<At<'_>> {
    let (len, member_start) = get_varint(buf, start)?;
    let member = buf.get(member_start..member_start.checked_add(len)?)?;
    let (score, end) = get_score(buf, member_start + len)?;
    Some(At {
        start,
        member,
        score,
        end,
    })
}

fn encode(member: &[u8], score: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(member.len() + 10);
    put_varint(&mut out, member.len());
    out.extend_from_slice(member);
    put_score(&mut out, score);
    out
}

impl ZPack {
    pub fn new() -> ZPack {
        ZPack::default()
    }

    /// A pack of `pairs`, which must already be in (score, member) order.
    pub fn from_sorted<M: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (M, f64)>) -> ZPack {
        let mut pack = ZPack::new();
        for (member, score) in pairs {
            put_varint(&mut pack.buf, member.as_ref().len());
            pack.buf.extend_from_slice(member.as_ref());
            put_score(&mut pack.buf, score);
            pack.len += 1;
        }
        pack
    }

    /// The encoded bytes (what a key's node stores inline).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Takes the buffer back out (for reuse).
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A pack over `bytes` as returned by [`ZPack::as_bytes`]; `None` if they are not a
    /// well-formed pack.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<ZPack> {
        let mut pos = 0;
        let mut len = 0;
        while pos < bytes.len() {
            pos = element_at(&bytes, pos)?.end;
            len += 1;
        }
        Some(ZPack { buf: bytes, len })
    }

    /// Writes the pack front-coded into `out`, the form a key's node stores: each member as
    /// the length of the prefix it shares with the previous member and the bytes after it.
    /// Members of one sorted set often share a prefix ("user:1042", "user:1043"), and the
    /// node is copied whole on every change, so the decoding costs little extra.
    ///
    /// An element starts with one byte `shared << 4 | rest` when both are below 15, else with
    /// `FRONT_ESCAPE` and both as varints; then the rest of the member and the score.
    pub fn write_front_coded(&self, out: &mut Vec<u8>) {
        out.clear();
        let mut prev: &[u8] = &[];
        for (member, score) in self.iter() {
            let shared = prev.iter().zip(member).take_while(|(a, b)| a == b).count();
            let rest = &member[shared..];
            if shared < 15 && rest.len() < 15 {
                out.push(((shared << 4) | rest.len()) as u8);
            } else {
                out.push(FRONT_ESCAPE);
                put_varint(out, shared);
                put_varint(out, rest.len());
            }
            out.extend_from_slice(rest);
            put_score(out, score);
            prev = member;
        }
    }

    /// The pack written by [`ZPack::write_front_coded`], decoded into `buf`; `None` if the
    /// bytes are not well formed.
    pub fn from_front_coded(coded: &[u8], mut buf: Vec<u8>) -> Option<ZPack> {
        buf.clear();
        let (mut pos, mut len) = (0, 0);
        let (mut prev_start, mut prev_len) = (0, 0);
        while pos < coded.len() {
            let head = coded[pos];
            pos += 1;
            let (shared, rest) = if head == FRONT_ESCAPE {
                let (shared, next) = get_varint(coded, pos)?;
                let (rest, next) = get_varint(coded, next)?;
                pos = next;
                (shared, rest)
            } else {
                ((head >> 4) as usize, (head & 0x0f) as usize)
            };
            if shared > prev_len {
                return None;
            }
            put_varint(&mut buf, shared.checked_add(rest)?);
            let start = buf.len();
            buf.extend_from_within(prev_start..prev_start + shared);
            buf.extend_from_slice(coded.get(pos..pos.checked_add(rest)?)?);
            pos += rest;
            let (_, score_end) = get_score(coded, pos)?;
            buf.extend_from_slice(&coded[pos..score_end]);
            pos = score_end;
            (prev_start, prev_len) = (start, shared + rest);
            len += 1;
        }
        Some(ZPack { buf, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    fn elements(&self) -> impl Iterator<Item = At<'_>> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.buf.len() {
                return None;
            }
            let at = element_at(&self.buf, pos)?;
            pos = at.end;
            Some(at)
        })
    }

    /// Elements in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            pos: 0,
        }
    }

    /// The elements of ranks `start..` in order.
    pub fn iter_from(&self, start: usize) -> Iter<'_> {
        Iter {
            buf: &self.buf,
            pos: self.offset_of(start),
        }
    }

    fn find(&self, member: &[u8]) -> Option<(usize, At<'_>)> {
        self.elements()
            .enumerate()
            .find(|(_, at)| at.member == member)
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find(member).map(|(_, at)| at.score)
    }

    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        self.find(member).map(|(rank, _)| rank)
    }

    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.iter().nth(rank)
    }

    /// How many leading elements satisfy `before` (which holds for a prefix of the order).
    pub fn count_while(&self, mut before: impl FnMut(f64, &[u8]) -> bool) -> usize {
        self.iter().take_while(|(m, s)| before(*s, m)).count()
    }

    /// Byte offset of the first element not ordered before (score, member).
    fn insertion_offset(&self, score: f64, member: &[u8]) -> usize {
        self.elements()
            .find(|at| skiplist::compare(at.score, at.member, score, member) != Ordering::Less)
            .map_or(self.buf.len(), |at| at.start)
    }

    /// Adds a member known to be absent, at its place in the order.
    pub fn insert_new(&mut self, member: &[u8], score: f64) {
        let at = self.insertion_offset(score, member);
        let bytes = encode(member, score);
        crate::types::byte_splice::replace(&mut self.buf, at..at, &bytes);
        self.len += 1;
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (_, at) = self.find(member)?;
        let (score, range) = (at.score, at.start..at.end);
        self.buf.drain(range);
        self.len -= 1;
        Some(score)
    }

    /// Byte offset where the element of rank `rank` starts (the end for `len`).
    fn offset_of(&self, rank: usize) -> usize {
        self.elements()
            .nth(rank)
            .map_or(self.buf.len(), |at| at.start)
    }

    /// Removes the elements of ranks `start..end` (within bounds).
    pub fn remove_ranks(&mut self, start: usize, end: usize) {
        let (from, to) = (self.offset_of(start), self.offset_of(end));
        self.buf.drain(from..to);
        self.len -= end - start;
    }

    /// Removes and returns the first (`last` false) or last element.
    pub fn pop(&mut self, last: bool) -> Option<(Box<[u8]>, f64)> {
        let at = if last {
            self.elements().last()?
        } else {
            self.elements().next()?
        };
        let popped = (at.member.into(), at.score);
        let range = at.start..at.end;
        self.buf.drain(range);
        self.len -= 1;
        Some(popped)
    }
}

/// Elements of a [`ZPack`] in order.
pub struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let at = element_at(self.buf, self.pos)?;
        self.pos = at.end;
        Some((at.member, at.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn front_coding_drops_shared_prefixes() {
        let members: Vec<String> = (0..100).map(|j| format!("member:{j}")).collect();
        let pack = ZPack::from_sorted(members.iter().enumerate().map(|(j, m)| (m, j as f64)));
        let mut coded = Vec::new();
        pack.write_front_coded(&mut coded);
        // Three bytes per element: the lengths, the last digit or two, the score.
        assert!(coded.len() < 400, "{}", coded.len());
        assert_eq!(ZPack::from_front_coded(&coded, Vec::new()), Some(pack));
        let long = ZPack::from_sorted([(vec![b'a'; 300], 1.0), (vec![b'a'; 301], 2.0)]);
        long.write_front_coded(&mut coded);
        assert_eq!(ZPack::from_front_coded(&coded, Vec::new()), Some(long));
        assert_eq!(ZPack::from_front_coded(&[0x21, b'x', 0], Vec::new()), None);
    }

    #[test]
    fn integer_scores_take_little_room() {
        let pack = ZPack::from_sorted([(&b"member:1"[..], 1.0)]);
        assert_eq!(pack.as_bytes().len(), 1 + 8 + 1);
        let pack = ZPack::from_sorted([(&b"m"[..], -1.0)]);
        assert_eq!(pack.as_bytes().len(), 1 + 1 + 2);
        let pack = ZPack::from_sorted([(&b"m"[..], 0.5)]);
        assert_eq!(pack.as_bytes().len(), 1 + 1 + 9);
    }

    proptest! {
        /// Every score reads back bit for bit, -0, infinities and extremes included.
        #[test]
        fn scores_round_trip(score in prop_oneof![
            any::<f64>().prop_filter("not NaN", |s| !s.is_nan()),
            any::<i64>().prop_map(|n| n as f64),
            (-300i64..300).prop_map(|n| n as f64),
            Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY),
            Just(EXACT_INT), Just(-EXACT_INT), Just(EXACT_INT - 1.0),
        ]) {
            let mut buf = Vec::new();
            put_score(&mut buf, score);
            let (back, end) = get_score(&buf, 0).unwrap();
            prop_assert_eq!(back.to_bits(), score.to_bits());
            prop_assert_eq!(end, buf.len());
        }

        /// The pack agrees with a sorted vector through inserts, removals and pops.
        #[test]
        fn behaves_like_a_sorted_vector(ops in proptest::collection::vec((0u8..4, 0u8..40, -3i32..3), 0..80)) {
            let mut pack = ZPack::new();
            let mut model: Vec<(Vec<u8>, f64)> = Vec::new();
            for (op, m, s) in ops {
                let member = vec![b'a' + m % 26; 1 + (m as usize % 3) * 70];
                let score = f64::from(s) / 2.0;
                match op {
                    0 | 1 => {
                        if model.iter().all(|(x, _)| *x != member) {
                            pack.insert_new(&member, score);
                            model.push((member, score));
                            model.sort_by(|a, b| skiplist::compare(a.1, &a.0, b.1, &b.0));
                        }
                    }
                    2 => {
                        let expected = model.iter().position(|(x, _)| *x == member).map(|i| model.remove(i).1);
                        prop_assert_eq!(pack.remove(&member), expected);
                    }
                    _ => {
                        let last = m % 2 == 0;
                        let expected = if model.is_empty() { None } else if last { model.pop() } else { Some(model.remove(0)) };
                        prop_assert_eq!(pack.pop(last).map(|(m, s)| (m.to_vec(), s)), expected);
                    }
                }
                prop_assert_eq!(pack.len(), model.len());
                let all: Vec<_> = pack.iter().map(|(m, s)| (m.to_vec(), s)).collect();
                prop_assert_eq!(&all, &model);
                let reread = ZPack::from_bytes(pack.as_bytes().to_vec()).unwrap();
                prop_assert_eq!(&reread, &pack);
                let mut coded = Vec::new();
                pack.write_front_coded(&mut coded);
                let decoded = ZPack::from_front_coded(&coded, Vec::new()).unwrap();
                prop_assert_eq!(&decoded, &pack);
            }
            if model.len() >= 2 {
                let mut expected = model.clone();
                expected.drain(1..model.len() - 1);
                pack.remove_ranks(1, model.len() - 1);
                let all: Vec<_> = pack.iter().map(|(m, s)| (m.to_vec(), s)).collect();
                prop_assert_eq!(all, expected);
            }
        }
    }
}
