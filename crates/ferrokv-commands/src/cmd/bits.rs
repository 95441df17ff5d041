//! Bitmap commands: strings addressed bit by bit, most significant bit of each byte first.

mod bitfield;

use bytes::Bytes;
use ferrokv_protocol::number::parse_i64;
use ferrokv_store::{Locked, StrValue, Value};

use crate::cmd::args;
use crate::cmd::string::{string_of, string_of_mut};
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::spec::{
    ArgList, CommandSpec, KeyFound, KeySpec, KeysProc, category as cat, flag, key_flag as kf,
};

const BITMAP: u64 = cat::BITMAP;

/// BITFIELD's key flags as Valkey's `bitfieldGetKeys` resolves its variable flags: read-only
/// while every operation before the first write is a GET (or OVERFLOW), else read and
/// written (a malformed list counts as a write, the safer guess).
const BITFIELD_KEYS: KeysProc = KeysProc::exact(bitfield_keys);

fn bitfield_keys(args: &dyn ArgList, found: KeyFound) {
    let argc = args.argc();
    if argc < 2 {
        return;
    }
    let mut read_only = true;
    let mut i = 2;
    while i < argc {
        let remaining = argc - i - 1;
        let arg = args.arg(i);
        if arg.eq_ignore_ascii_case(b"get") && remaining >= 2 {
            i += 3;
        } else if arg.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
            i += 2;
        } else {
            // SET or INCRBY (or a syntax error): a write.
            read_only = false;
            break;
        }
    }
    let flags = if read_only {
        kf::RO | kf::ACCESS
    } else {
        kf::RW | kf::ACCESS | kf::UPDATE
    };
    found(1, flags);
}

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, "bitmap")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(BITMAP)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE)])
        .doc(
            "2.2.0",
            "Sets or clears one bit of a string, growing it as needed.",
            "O(1)",
        )
        .handler(setbit),
    CommandSpec::new("getbit", 3, "bitmap")
        .flags(flag::READONLY | flag::FAST)
        .categories(BITMAP)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc("2.2.0", "Returns one bit of a string.", "O(1)")
        .handler(getbit),
    CommandSpec::new("bitcount", -2, "bitmap")
        .flags(flag::READONLY)
        .categories(BITMAP)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc(
            "2.6.0",
            "Counts the bits set to 1 in a string or a range of it.",
            "O(N)",
        )
        .handler(bitcount),
    CommandSpec::new("bitpos", -3, "bitmap")
        .flags(flag::READONLY)
        .categories(BITMAP)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc(
            "2.8.7",
            "Finds the first bit set to 1 or 0 in a string or a range of it.",
            "O(N)",
        )
        .handler(bitpos),
    CommandSpec::new("bitop", -4, "bitmap")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(BITMAP)
        .keys(&[
            KeySpec::single(2, kf::OW | kf::UPDATE),
            KeySpec::to_end(3, 1, kf::RO | kf::ACCESS),
        ])
        .doc(
            "2.6.0",
            "Combines strings bitwise (AND, OR, XOR, NOT) into a key.",
            "O(N)",
        )
        .handler(bitop),
    CommandSpec::new("bitfield", -2, "bitmap")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(BITMAP)
        .keys(&[KeySpec::single(
            1,
            kf::RW | kf::ACCESS | kf::UPDATE | kf::VARIABLE_FLAGS,
        )])
        .key_notes(&["This command allows both access and modification of the key"])
        .keys_proc(BITFIELD_KEYS)
        .doc(
            "3.2.0",
            "Reads, writes and increments integers of any width at any bit offset of a string.",
            "O(1) for each subcommand specified",
        )
        .handler(bitfield::bitfield),
    CommandSpec::new("bitfield_ro", -2, "bitmap")
        .flags(flag::READONLY | flag::FAST)
        .categories(BITMAP)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc(
            "6.0.0",
            "Reads integers of any width at any bit offset of a string.",
            "O(1) for each subcommand specified",
        )
        .handler(bitfield::bitfield_ro),
];

const BIT_OFFSET_ERROR: &str = "bit offset is not an integer or out of range";

/// A bit offset argument as Valkey accepts it: a non-negative integer whose byte lies below
/// `proto-max-bulk-len`. With `width` (BITFIELD), `#N` means N times the width.
pub(crate) fn bit_offset(ctx: &Ctx, arg: &[u8], width: Option<u32>) -> Result<u64, CmdError> {
    let err = || CmdError::err(BIT_OFFSET_ERROR);
    let (digits, multiplier) = match (arg.split_first(), width) {
        (Some((b'#', rest)), Some(w)) => (rest, w as i64),
        _ => (arg, 1),
    };
    // Valkey multiplies in 64-bit without an overflow check; a wrapped negative product is
    // then refused as negative, which wrapping multiplication reproduces.
    let offset = parse_i64(digits).ok_or_else(err)?.wrapping_mul(multiplier);
    if offset < 0 || (offset >> 3) >= ctx.client.config.proto_max_bulk_len {
        return Err(err());
    }
    Ok(offset as u64)
}

/// Whether bit `offset` of `bytes` is set (bits past the end read as 0).
pub(crate) fn bit_at(bytes: &[u8], offset: u64) -> bool {
    bytes
        .get((offset >> 3) as usize)
        .is_some_and(|b| b & (0x80 >> (offset & 7)) != 0)
}

/// The string under `key` made raw and at least `min_len` bytes long (zero-padded), created
/// if absent, for a command that writes bits. WRONGTYPE for other types.
pub(crate) fn writable_string<'l>(
    ctx: &Ctx,
    locked: &'l mut Locked<'_>,
    key: &[u8],
    min_len: usize,
) -> Result<&'l mut Vec<u8>, CmdError> {
    if ctx.write(locked, key).is_none() {
        let entry = ctx.new_entry(Value::Str(StrValue::Raw(Vec::new())));
        locked.db(ctx.db(), key).insert(key, entry);
    }
    let Some(entry) = ctx.write(locked, key) else {
        unreachable!("inserted above while holding the lock")
    };
    let bytes = string_of_mut(&mut entry.value)?.make_raw();
    if bytes.len() < min_len {
        bytes.resize(min_len, 0);
    }
    Ok(bytes)
}

/// `SETBIT key offset value`
fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let on = match parse_i64(&args[3]) {
        Some(0) => false,
        Some(1) => true,
        _ => return Err(CmdError::err("bit is not an integer or out of range")),
    };
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    // Refuse a wrong type before growing anything.
    let old_len = match ctx.write(&mut locked, key) {
        Some(e) => Some(string_of(&e.value)?.len()),
        None => None,
    };
    let byte = (offset >> 3) as usize;
    let bytes = writable_string(ctx, &mut locked, key, byte + 1)?;
    let mask = 0x80u8 >> (offset & 7);
    let was = bytes[byte] & mask != 0;
    if on {
        bytes[byte] |= mask;
    } else {
        bytes[byte] &= !mask;
    }
    // Valkey notifies (and counts, so propagates) only a change: a bit flipped, or the
    // string created or grown.
    if was != on || old_len.is_none_or(|len| len <= byte) {
        ctx.notify(ferrokv_store::events::class::STRING, "setbit", key);
        ctx.add_dirty(1);
    }
    ctx.reply.int(was as i64);
    Ok(())
}

/// `GETBIT key offset`
fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let bit = match ctx.read(&mut locked, key) {
        None => false,
        Some(e) => bit_at(&string_of(&e.value)?.to_bytes(), offset),
    };
    ctx.reply.int(bit as i64);
    Ok(())
}

/// The unit of a BITCOUNT / BITPOS range.
fn range_unit(arg: &[u8]) -> Result<bool, CmdError> {
    if args::is(arg, "bit") {
        Ok(true)
    } else if args::is(arg, "byte") {
        Ok(false)
    } else {
        Err(errors::SYNTAX)
    }
}

/// Clamps a start/end pair (negative: from the end) into `0..total` the way Valkey does;
/// the result may be empty (start > end).
fn clamp_range(start: i64, end: i64, total: i64) -> (i64, i64) {
    let mut start = if start < 0 {
        total.wrapping_add(start)
    } else {
        start
    };
    let mut end = if end < 0 {
        total.wrapping_add(end)
    } else {
        end
    };
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start, end)
}

/// `BITCOUNT key [start [end [BYTE | BIT]]]`
fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 5 {
        return Err(errors::SYNTAX);
    }
    let range = if args.len() >= 3 {
        let start = args::int(&args[2])?;
        let in_bits = if args.len() == 5 {
            range_unit(&args[4])?
        } else {
            false
        };
        let end = match args.get(3) {
            Some(arg) => args::int(arg)?,
            None => -1,
        };
        Some((start, end, in_bits))
    } else {
        None
    };
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.int(0);
        return Ok(());
    };
    let bytes = string_of(&entry.value)?.to_bytes();
    let count = match range {
        None => count_ones(&bytes, 0, bytes.len() as u64 * 8),
        Some((start, end, _)) if start < 0 && end < 0 && start > end => 0,
        Some((start, end, in_bits)) => {
            let scale = if in_bits { 1 } else { 8 };
            let total = bytes.len() as i64 * 8 / scale;
            let (start, end) = clamp_range(start, end, total);
            if start > end {
                0
            } else {
                let from = start as u64 * scale as u64;
                let to = (end as u64 + 1) * scale as u64;
                count_ones(&bytes, from, to)
            }
        }
    };
    ctx.reply.int(count as i64);
    Ok(())
}

/// Bits set to 1 in bit positions `from..to` of `bytes`.
fn count_ones(bytes: &[u8], from: u64, to: u64) -> u64 {
    if from >= to {
        return 0;
    }
    let (first, last) = ((from >> 3) as usize, ((to - 1) >> 3) as usize);
    let whole: u64 = bytes[first..=last]
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum();
    // Take away the bits of the edge bytes that lie outside the range.
    let head = (bytes[first] & !(0xFFu8 >> (from & 7))).count_ones() as u64;
    let tail_bits = ((to - 1) & 7) + 1;
    let tail =
        (bytes[last] & (0xFFu8.checked_shr(tail_bits as u32).unwrap_or(0))).count_ones() as u64;
    whole - head - tail
}

/// `BITPOS key bit [start [end [BYTE | BIT]]]`
fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bit = args::int(&args[2])?;
    let want = match bit {
        0 => false,
        1 => true,
        _ => return Err(CmdError::err("The bit argument must be 1 or 0.")),
    };
    if args.len() > 6 {
        return Err(errors::SYNTAX);
    }
    let range = if args.len() >= 4 {
        let start = args::int(&args[3])?;
        let in_bits = if args.len() == 6 {
            range_unit(&args[5])?
        } else {
            false
        };
        let end = match args.get(4) {
            Some(arg) => Some(args::int(arg)?),
            None => None,
        };
        Some((start, end, in_bits))
    } else {
        None
    };
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.read(&mut locked, key) else {
        ctx.reply.int(if want { -1 } else { 0 });
        return Ok(());
    };
    let bytes = string_of(&entry.value)?.to_bytes();
    let total_bits = bytes.len() as i64 * 8;
    let (from, to, end_given) = match range {
        None => (0, total_bits, false),
        Some((start, range_end, in_bits)) => {
            let scale = if in_bits { 1 } else { 8 };
            let total = total_bits / scale;
            let (start, end) = clamp_range(start, range_end.unwrap_or(total - 1), total);
            if start > end {
                ctx.reply.int(-1);
                return Ok(());
            }
            (start * scale, (end + 1) * scale, range_end.is_some())
        }
    };
    let found = (from..to).find(|&i| bit_at(&bytes, i as u64) == want);
    let pos = match found {
        Some(i) => i,
        // No zero in the string: the first zero is the padding right after it, unless the
        // caller bounded the range explicitly.
        None if !want && !end_given && from < to => to,
        None => -1,
    };
    ctx.reply.int(pos);
    Ok(())
}

/// `BITOP AND | OR | XOR | NOT destkey key [key ...]`
fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    #[derive(Clone, Copy, PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match &args[1] {
        a if args::is(a, "and") => Op::And,
        a if args::is(a, "or") => Op::Or,
        a if args::is(a, "xor") => Op::Xor,
        a if args::is(a, "not") => Op::Not,
        _ => return Err(errors::SYNTAX),
    };
    let (dest, sources) = (&args[2], &args[3..]);
    if op == Op::Not && sources.len() != 1 {
        return Err(CmdError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let mut locked = ctx.lock(&args[2..]);
    let mut inputs: Vec<Vec<u8>> = Vec::with_capacity(sources.len());
    for key in sources {
        inputs.push(match ctx.read(&mut locked, key) {
            None => Vec::new(),
            Some(e) => string_of(&e.value)?.to_bytes().into_owned(),
        });
    }
    let len = inputs.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = vec![0u8; len];
    for (i, byte) in out.iter_mut().enumerate() {
        let mut values = inputs.iter().map(|s| s.get(i).copied().unwrap_or(0));
        let first = values.next().unwrap_or(0);
        *byte = match op {
            Op::And => values.fold(first, |a, b| a & b),
            Op::Or => values.fold(first, |a, b| a | b),
            Op::Xor => values.fold(first, |a, b| a ^ b),
            Op::Not => !first,
        };
    }
    let db = ctx.db();
    if out.is_empty() {
        if ctx.write(&mut locked, dest).is_some() {
            locked.db(db, dest).remove(dest);
            ctx.notify(ferrokv_store::events::class::GENERIC, "del", dest);
            ctx.add_dirty(1);
        }
    } else {
        let entry = ctx.new_entry(Value::Str(StrValue::Raw(out)));
        locked.db(db, dest).insert(dest, entry);
        ctx.notify(ferrokv_store::events::class::STRING, "set", dest);
        ctx.add_dirty(1);
    }
    ctx.reply.int(len as i64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_ranges_of_bits() {
        let bytes = [0xFFu8, 0x0F, 0xF0];
        assert_eq!(count_ones(&bytes, 0, 24), 16);
        assert_eq!(count_ones(&bytes, 4, 12), 4);
        assert_eq!(count_ones(&bytes, 12, 20), 8);
        assert_eq!(count_ones(&bytes, 3, 4), 1);
        assert_eq!(count_ones(&bytes, 8, 12), 0);
        assert_eq!(count_ones(&bytes, 5, 5), 0);
    }

    #[test]
    fn clamping_follows_valkey() {
        assert_eq!(clamp_range(0, -1, 5), (0, 4));
        assert_eq!(clamp_range(-20, -10, 5), (0, 0));
        assert_eq!(clamp_range(2, 100, 5), (2, 4));
        assert_eq!(clamp_range(i64::MIN, i64::MAX, 5), (0, 4));
    }
}
