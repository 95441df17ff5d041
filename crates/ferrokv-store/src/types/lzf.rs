//! LZF, the small LZ77 codec Valkey uses for compressed quicklist nodes (and RDB strings).
//!
//! Written here because the only pure-Rust crate for it (`lzf` 1.0) is marked deprecated
//! and unmaintained, and the other one binds the C library through FFI. The format is
//! LZF's, so compressed nodes can later be written to (and read from) RDB files as Valkey
//! writes them. A compressed stream is a sequence of items, each led by a control byte:
//!
//! | control byte | item                                                            |
//! |--------------|-----------------------------------------------------------------|
//! | `000lllll`   | `l + 1` literal bytes follow (1 to 32)                          |
//! | `LLLooooo`   | back-reference, `LLL` 1..=6: copy `LLL + 2` bytes; one more     |
//! |              | byte holds the low 8 bits of the distance                       |
//! | `111ooooo`   | long back-reference: the next byte adds to the length (`7 + n`, |
//! |              | copy `7 + n + 2` bytes), then the low distance byte             |
//!
//! The distance is `(ooooo << 8 | low) + 1` bytes back from the output's end; a copy may
//! overlap what it is producing (a run).

/// Longest back-reference: 7 + 255 in the length fields, plus the implied 2.
const MAX_MATCH: usize = 7 + 255 + 2;
/// Farthest a back-reference reaches (13 bits of distance, stored minus one).
const MAX_DISTANCE: usize = 1 << 13;
/// Longest literal run one control byte announces.
const MAX_LITERAL: usize = 32;
/// Bits of the match-finder's hash table.
const HASH_BITS: u32 = 14;

fn hash3(bytes: &[u8]) -> usize {
    let v = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// Compresses `input`; `None` when the output would pass `max_len` bytes (the caller does not
/// want data that compresses that badly) or `input` is empty.
pub fn compress(input: &[u8], max_len: usize) -> Option<Vec<u8>> {
    if input.is_empty() {
        return None;
    }
    MATCH_TABLE.with(|table| compress_with(input, max_len, &mut table.borrow_mut()))
}

thread_local! {
    /// The match finder's table, kept between calls: clearing 64 KiB for every string of an
    /// RDB save was a quarter of the save's time. Entries left by earlier inputs are harmless:
    /// a candidate is used only if it lies before the current position and its bytes match.
    static MATCH_TABLE: std::cell::RefCell<Box<[u32]>> =
        std::cell::RefCell::new(vec![0u32; 1 << HASH_BITS].into_boxed_slice());
}

fn compress_with(input: &[u8], max_len: usize, table: &mut [u32]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(max_len.min(input.len()));
    // Position + 1 of the last 3-byte sequence seen with each hash (0: none).
    let mut literal_start = 0;
    let mut i = 0;
    while i + 3 <= input.len() {
        let h = hash3(&input[i..]);
        let candidate = table[h] as usize;
        table[h] = (i + 1) as u32;
        if candidate > 0 && candidate <= i {
            let c = candidate - 1;
            let distance = i - c;
            if distance <= MAX_DISTANCE && input[c..c + 3] == input[i..i + 3] {
                let longest = MAX_MATCH.min(input.len() - i);
                let mut len = 3;
                while len < longest && input[c + len] == input[i + len] {
                    len += 1;
                }
                push_literals(&input[literal_start..i], &mut out);
                push_reference(len, distance - 1, &mut out);
                if out.len() > max_len {
                    return None;
                }
                // Remember a few positions inside the match so later text can refer to it.
                let end = i + len;
                for p in (i + 1..end).take(2) {
                    if p + 3 <= input.len() {
                        table[hash3(&input[p..])] = (p + 1) as u32;
                    }
                }
                i = end;
                literal_start = i;
                continue;
            }
        }
        i += 1;
        // A long literal stretch is checked against the limit as it grows.
        if i - literal_start > max_len {
            return None;
        }
    }
    push_literals(&input[literal_start..], &mut out);
    (out.len() <= max_len).then_some(out)
}

fn push_literals(mut bytes: &[u8], out: &mut Vec<u8>) {
    while !bytes.is_empty() {
        let n = bytes.len().min(MAX_LITERAL);
        out.push((n - 1) as u8);
        out.extend_from_slice(&bytes[..n]);
        bytes = &bytes[n..];
    }
}

/// A back-reference copying `len` (3..=MAX_MATCH) bytes from `offset + 1` bytes back.
fn push_reference(len: usize, offset: usize, out: &mut Vec<u8>) {
    let stored = len - 2;
    let high = (offset >> 8) as u8;
    if stored < 7 {
        out.push(((stored as u8) << 5) | high);
    } else {
        out.push((7 << 5) | high);
        out.push((stored - 7) as u8);
    }
    out.push(offset as u8);
}

/// Decompresses `input`, which must expand to exactly `len` bytes; `None` if it is corrupt.
pub fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let control = input[i] as usize;
        i += 1;
        if control < MAX_LITERAL {
            let n = control + 1;
            let literal = input.get(i..i + n)?;
            if out.len() + n > len {
                return None;
            }
            out.extend_from_slice(literal);
            i += n;
            continue;
        }
        let mut n = control >> 5;
        if n == 7 {
            n += *input.get(i)? as usize;
            i += 1;
        }
        n += 2;
        let distance = (((control & 0x1F) << 8) | *input.get(i)? as usize) + 1;
        i += 1;
        if distance > out.len() || out.len() + n > len {
            return None;
        }
        let from = out.len() - distance;
        if distance >= n {
            out.extend_from_within(from..from + n);
        } else {
            // Overlapping copy: each byte may be one this copy just wrote.
            for k in 0..n {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(data: &[u8]) {
        if let Some(packed) = compress(data, usize::MAX) {
            assert_eq!(decompress(&packed, data.len()).as_deref(), Some(data));
        } else {
            assert!(data.is_empty());
        }
    }

    #[test]
    fn repetitive_text_shrinks() {
        let data: Vec<u8> = (0..2000)
            .flat_map(|i| format!("item-{}", i % 10).into_bytes())
            .collect();
        let packed = compress(&data, data.len()).unwrap();
        assert!(packed.len() < data.len() / 10, "{}", packed.len());
        assert_eq!(decompress(&packed, data.len()).unwrap(), data);
        // A run: one literal then overlapping references.
        let run = vec![b'x'; 5000];
        let packed = compress(&run, run.len()).unwrap();
        assert!(packed.len() < 60);
        assert_eq!(decompress(&packed, run.len()).unwrap(), run);
    }

    #[test]
    fn limits_and_corruption() {
        let noise: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert!(compress(&noise, noise.len() / 2).is_none());
        assert!(compress(&[], 10).is_none());
        let packed = compress(b"abcabcabcabcabc", 100).unwrap();
        assert!(decompress(&packed, 14).is_none());
        assert!(decompress(&packed, 16).is_none());
        assert!(decompress(&[0x20, 0x05], 3).is_none()); // reference before any output
        assert!(decompress(&[0x05, b'a'], 6).is_none()); // truncated literal
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_round_trip(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
            round_trip(&data);
        }

        #[test]
        fn repetitive_bytes_round_trip(
            alphabet in proptest::collection::vec(any::<u8>(), 1..4),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..20000),
        ) {
            let data: Vec<u8> = picks.iter().map(|p| alphabet[p.index(alphabet.len())]).collect();
            round_trip(&data);
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), len in 0usize..500) {
            let _ = decompress(&data, len);
        }
    }

    #[test]
    fn the_reused_match_table_never_misleads_a_later_input() {
        let long: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let short = b"abcabcabcabcabcabcabcabcxyz".to_vec();
        for input in [&long, &short, &long, &short] {
            let packed = compress(input, input.len()).expect("compressible");
            assert_eq!(decompress(&packed, input.len()).as_ref(), Some(input));
        }
    }
}
