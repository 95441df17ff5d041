//! Ziplists: the compact blob of lists, hashes and sorted sets before RDB 10 (Redis 6 and
//! older). Read only; every header, length and back link is checked before use.
//!
//! Layout: `zlbytes` (u32 LE, the blob's size), `zltail` (u32 LE, offset of the last entry),
//! `zllen` (u16 LE, the count, or 65535 when it does not fit), the entries, then `0xFF`.
//! An entry is `[prevlen][encoding][payload]`: `prevlen` is the previous entry's size in one
//! byte (below 254) or `0xFE` and four LE bytes; the encoding byte says:
//!
//! | encoding                 | payload                         |
//! |--------------------------|---------------------------------|
//! | `00llllll`               | string of up to 63 bytes        |
//! | `01llllll llllllll`      | string, 14-bit big-endian length |
//! | `10000000` + 4 bytes BE  | string, 32-bit length           |
//! | `0xC0` / `0xD0` / `0xE0` | 16 / 32 / 64-bit LE integer     |
//! | `0xF0` / `0xFE`          | 24 / 8-bit integer              |
//! | `0xF1`..=`0xFD`          | integer 0..=12 in the byte      |

use ferrokv_store::types::listpack::Elem;

const HEADER: usize = 10;
const END: u8 = 0xFF;
const BIG_PREVLEN: u8 = 0xFE;

/// The entries of a ziplist blob; `None` when anything in it is inconsistent.
pub fn entries(blob: &[u8]) -> Option<Vec<Elem<'_>>> {
    let header = blob.get(..HEADER)?;
    let zlbytes = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let zltail = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let zllen = u16::from_le_bytes(header[8..10].try_into().ok()?);
    if zlbytes != blob.len() || blob.last() != Some(&END) {
        return None;
    }
    let end = blob.len() - 1;
    let mut out = Vec::new();
    let mut off = HEADER;
    let mut prev_size = 0usize;
    let mut last_start = HEADER;
    while off < end {
        let start = off;
        let (prevlen, used) = match *blob.get(off)? {
            BIG_PREVLEN => (
                u32::from_le_bytes(blob.get(off + 1..off + 5)?.try_into().ok()?) as usize,
                5,
            ),
            END => return None,
            small => (usize::from(small), 1),
        };
        if prevlen != prev_size {
            return None;
        }
        off += used;
        let enc = *blob.get(off)?;
        let (elem, size) = match enc >> 6 {
            0 => {
                let n = usize::from(enc & 0x3F);
                (Elem::Str(blob.get(off + 1..off + 1 + n)?), 1 + n)
            }
            1 => {
                let n = (usize::from(enc & 0x3F) << 8) | usize::from(*blob.get(off + 1)?);
                (Elem::Str(blob.get(off + 2..off + 2 + n)?), 2 + n)
            }
            2 if enc == 0x80 => {
                let n = u32::from_be_bytes(blob.get(off + 1..off + 5)?.try_into().ok()?) as usize;
                let data_end = (off + 5).checked_add(n)?;
                (Elem::Str(blob.get(off + 5..data_end)?), 5 + n)
            }
            2 => return None,
            _ => {
                let width = match enc {
                    0xC0 => 2,
                    0xD0 => 4,
                    0xE0 => 8,
                    0xF0 => 3,
                    0xFE => 1,
                    0xF1..=0xFD => 0,
                    _ => return None,
                };
                let data = blob.get(off + 1..off + 1 + width)?;
                let n = match enc {
                    0xC0 => i64::from(i16::from_le_bytes(data.try_into().ok()?)),
                    0xD0 => i64::from(i32::from_le_bytes(data.try_into().ok()?)),
                    0xE0 => i64::from_le_bytes(data.try_into().ok()?),
                    0xF0 => i64::from(i32::from_le_bytes([0, data[0], data[1], data[2]]) >> 8),
                    0xFE => i64::from(data[0] as i8),
                    imm => i64::from(imm & 0x0F) - 1,
                };
                (Elem::Int(n), 1 + width)
            }
        };
        off += size;
        if off > end {
            return None;
        }
        prev_size = off - start;
        last_start = start;
        out.push(elem);
    }
    if zltail != last_start {
        return None;
    }
    if zllen != u16::MAX && usize::from(zllen) != out.len() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ziplist of `items` as Redis 6 lays it out (for tests of the readers).
    pub(crate) fn build(items: &[Elem<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut tail = HEADER;
        for item in items {
            let start = body.len();
            tail = HEADER + start;
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(BIG_PREVLEN);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match *item {
                Elem::Str(s) if s.len() < 64 => {
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Elem::Str(s) if s.len() < 16384 => {
                    body.push(0x40 | (s.len() >> 8) as u8);
                    body.push(s.len() as u8);
                    body.extend_from_slice(s);
                }
                Elem::Str(s) => {
                    body.push(0x80);
                    body.extend_from_slice(&(s.len() as u32).to_be_bytes());
                    body.extend_from_slice(s);
                }
                Elem::Int(n @ 0..=12) => body.push(0xF1 + n as u8),
                Elem::Int(n) if i8::try_from(n).is_ok() => {
                    body.push(0xFE);
                    body.push(n as i8 as u8);
                }
                Elem::Int(n) if i16::try_from(n).is_ok() => {
                    body.push(0xC0);
                    body.extend_from_slice(&(n as i16).to_le_bytes());
                }
                Elem::Int(n) if (-(1 << 23)..(1 << 23)).contains(&n) => {
                    body.push(0xF0);
                    body.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
                }
                Elem::Int(n) if i32::try_from(n).is_ok() => {
                    body.push(0xD0);
                    body.extend_from_slice(&(n as i32).to_le_bytes());
                }
                Elem::Int(n) => {
                    body.push(0xE0);
                    body.extend_from_slice(&n.to_le_bytes());
                }
            }
            prev = body.len() - start;
        }
        let total = HEADER + body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(END);
        out
    }

    #[test]
    fn every_encoding_reads_back() {
        let long = vec![b'x'; 300];
        let huge = vec![b'y'; 20000];
        let items = [
            Elem::Str(b"a"),
            Elem::Int(0),
            Elem::Int(12),
            Elem::Int(-1),
            Elem::Int(300),
            Elem::Int(-5_000_000),
            Elem::Int(1 << 30),
            Elem::Int(i64::MIN),
            Elem::Str(&long),
            Elem::Str(&huge),
            Elem::Str(b""),
        ];
        let blob = build(&items);
        assert_eq!(entries(&blob), Some(items.to_vec()));
        assert_eq!(entries(&build(&[])), Some(vec![]));
    }

    #[test]
    fn inconsistencies_are_refused() {
        let blob = build(&[Elem::Str(b"abc"), Elem::Int(7)]);
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x40;
            // A flipped bit inside a string's payload is still a valid ziplist.
            if (12..15).contains(&i) {
                continue;
            }
            assert_eq!(entries(&bad), None, "byte {i}");
        }
        assert_eq!(entries(&blob[..blob.len() - 1]), None);
    }

    /// The legacy types that carry ziplists (and zipmaps) read as the values they hold.
    #[test]
    fn legacy_types_read() {
        use crate::decode::Decoder;
        use crate::encode::Encoder;
        use crate::format::{Dialect, kind};
        use crate::value::{ReadOptions, read_value};
        let read = |type_byte: u8, payload: &[u8]| {
            let mut d = Decoder::new(payload);
            let value = read_value(&mut d, type_byte, &ReadOptions::new(Dialect::Redis(9)));
            assert_eq!(d.offset(), payload.len() as u64);
            value.expect("reads")
        };
        let blob = |items: &[Elem<'_>]| {
            let mut e = Encoder::new(true);
            e.string(&build(items));
            e.buf
        };
        let items = [
            Elem::Str(b"a"),
            Elem::Int(1),
            Elem::Str(b"b"),
            Elem::Int(-70000),
        ];
        let list = read(kind::LIST_ZIPLIST, &blob(&items));
        let ferrokv_store::Value::List(l) = &list else {
            panic!("not a list")
        };
        assert_eq!(l.to_vecs(), [&b"a"[..], b"1", b"b", b"-70000"]);
        assert_eq!(list.encoding(), "listpack");

        let mut quick = vec![2u8];
        quick.extend(blob(&items));
        quick.extend(blob(&items[..1]));
        let list = read(kind::LIST_QUICKLIST, &quick);
        let ferrokv_store::Value::List(l) = &list else {
            panic!("not a list")
        };
        assert_eq!(l.len(), 5);
        assert_eq!(list.encoding(), "quicklist");

        let hash = read(kind::HASH_ZIPLIST, &blob(&items));
        let ferrokv_store::Value::Hash(h) = &hash else {
            panic!("not a hash")
        };
        assert_eq!(h.get(b"b", 0), Some(&b"-70000"[..]));

        let zitems = [
            Elem::Str(b"m"),
            Elem::Str(b"2.5"),
            Elem::Str(b"n"),
            Elem::Int(-3),
        ];
        let zset = read(kind::ZSET_ZIPLIST, &blob(&zitems));
        let ferrokv_store::Value::ZSet(z) = &zset else {
            panic!("not a zset")
        };
        assert_eq!(z.score(b"m"), Some(2.5));
        assert_eq!(z.get_by_rank(0), Some((&b"n"[..], -3.0)));

        let mut zipmap = Encoder::new(false);
        zipmap.string(b"\x01\x01k\x01\x00v\xff");
        let hash = read(kind::HASH_ZIPMAP, &zipmap.buf);
        let ferrokv_store::Value::Hash(h) = &hash else {
            panic!("not a hash")
        };
        assert_eq!(h.get(b"k", 0), Some(&b"v"[..]));

        // A repeated hash field in a ziplist is corruption.
        let repeated = blob(&[Elem::Str(b"f"), Elem::Int(1), Elem::Str(b"f"), Elem::Int(2)]);
        let mut d = Decoder::new(&repeated[..]);
        assert!(
            read_value(
                &mut d,
                kind::HASH_ZIPLIST,
                &ReadOptions::new(Dialect::Redis(9))
            )
            .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = entries(&bytes);
            let mut framed = bytes.clone();
            let total = (framed.len() + 11) as u32;
            let mut blob = total.to_le_bytes().to_vec();
            blob.extend_from_slice(&10u32.to_le_bytes());
            blob.extend_from_slice(&[1, 0]);
            blob.append(&mut framed);
            blob.push(0xFF);
            let _ = entries(&blob);
        }
    }
}
