//! BITFIELD and BITFIELD_RO: integers of 1 to 64 bits (unsigned: up to 63) at arbitrary bit
//! offsets, with Valkey's overflow modes.

use bytes::Bytes;

use super::{bit_at, bit_offset, writable_string};
use crate::cmd::args;
use crate::cmd::string::string_of;
use crate::context::{CmdError, CmdResult, Ctx, errors};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    signed: bool,
    bits: u32,
    offset: u64,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Get(Field),
    Set(Field, i64, Overflow),
    IncrBy(Field, i64, Overflow),
}

/// `BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment |
/// OVERFLOW WRAP|SAT|FAIL] ...`
pub fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, false)
}

/// `BITFIELD_RO key [GET type offset] ...`
pub fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, true)
}

fn run(ctx: &mut Ctx, args: &[Bytes], read_only: bool) -> CmdResult {
    let ops = parse(ctx, &args[2..], read_only)?;
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    // The highest byte any write touches: the string grows to it before anything runs,
    // even if an overflow then cancels the write (as in Valkey).
    let write_end = ops
        .iter()
        .filter_map(|op| match op {
            Op::Get(_) => None,
            Op::Set(f, ..) | Op::IncrBy(f, ..) => Some((f.offset + f.bits as u64 - 1) / 8 + 1),
        })
        .max();
    let Some(write_end) = write_end else {
        // Reads only.
        let bytes = match ctx.read(&mut locked, key) {
            None => Vec::new(),
            Some(e) => string_of(&e.value)?.to_bytes().into_owned(),
        };
        ctx.reply.array_len(ops.len());
        for op in &ops {
            if let Op::Get(f) = op {
                ctx.reply.int(read_field(&bytes, f));
            }
        }
        return Ok(());
    };
    let old_len = match ctx.write(&mut locked, key) {
        Some(e) => Some(string_of(&e.value)?.len()),
        None => None,
    };
    // Valkey counts a write as a change when the string was created or grew, or when the
    // field's value differs (a SET to the same value is not propagated).
    let grew = old_len.is_none_or(|len| len < write_end as usize);
    let bytes = writable_string(ctx, &mut locked, key, write_end as usize)?;
    let mut results: Vec<Option<i64>> = Vec::with_capacity(ops.len());
    let mut changes = 0;
    for op in &ops {
        let result = match *op {
            Op::Get(f) => Some(read_field(bytes, &f)),
            Op::Set(f, value, overflow) => {
                let old = read_field(bytes, &f);
                limit(f, value, 0, overflow).map(|new| {
                    write_field(bytes, &f, new);
                    changes += u64::from(grew || new != old);
                    old
                })
            }
            Op::IncrBy(f, incr, overflow) => {
                let old = read_field(bytes, &f);
                limit(f, old, incr, overflow).inspect(|&new| {
                    write_field(bytes, &f, new);
                    changes += u64::from(grew || new != old);
                })
            }
        };
        results.push(result);
    }
    if changes > 0 {
        ctx.notify(ferrokv_store::events::class::STRING, "setbit", key);
        ctx.add_dirty(changes);
    }
    ctx.reply.array_len(results.len());
    for r in results {
        match r {
            Some(n) => ctx.reply.int(n),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

fn parse(ctx: &Ctx, args: &[Bytes], read_only: bool) -> Result<Vec<Op>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 0;
    while i < args.len() {
        let name = &args[i];
        let remaining = args.len() - i - 1;
        let (needs, kind) = if args::is(name, "get") {
            (2, 0)
        } else if args::is(name, "set") {
            (3, 1)
        } else if args::is(name, "incrby") {
            (3, 2)
        } else if args::is(name, "overflow") {
            (1, 3)
        } else {
            return Err(errors::SYNTAX);
        };
        if remaining < needs {
            return Err(errors::SYNTAX);
        }
        if kind == 3 {
            let mode = &args[i + 1];
            overflow = if args::is(mode, "wrap") {
                Overflow::Wrap
            } else if args::is(mode, "sat") {
                Overflow::Sat
            } else if args::is(mode, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("Invalid OVERFLOW type specified"));
            };
            i += 2;
            continue;
        }
        let (signed, bits) = field_type(&args[i + 1])?;
        let offset = bit_offset(ctx, &args[i + 2], Some(bits))?;
        let field = Field {
            signed,
            bits,
            offset,
        };
        let op = match kind {
            0 => Op::Get(field),
            1 => Op::Set(field, args::int(&args[i + 3])?, overflow),
            _ => Op::IncrBy(field, args::int(&args[i + 3])?, overflow),
        };
        ops.push(op);
        i += 1 + needs;
    }
    // Valkey parses every subcommand (reporting the first malformed one) before refusing
    // a write in BITFIELD_RO.
    if read_only && ops.iter().any(|op| !matches!(op, Op::Get(_))) {
        return Err(CmdError::err(
            "BITFIELD_RO only supports the GET subcommand",
        ));
    }
    Ok(ops)
}

/// `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || {
        CmdError::err(
            "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let (signed, digits) = match arg.split_first() {
        Some((b'i' | b'I', rest)) => (true, rest),
        Some((b'u' | b'U', rest)) => (false, rest),
        _ => return Err(err()),
    };
    let bits = ferrokv_protocol::number::parse_i64(digits).ok_or_else(err)?;
    let max = if signed { 64 } else { 63 };
    if !(1..=max).contains(&bits) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

fn read_field(bytes: &[u8], f: &Field) -> i64 {
    let mut value: u64 = 0;
    for i in 0..f.bits as u64 {
        value = (value << 1) | bit_at(bytes, f.offset + i) as u64;
    }
    if f.signed && f.bits < 64 && value & (1 << (f.bits - 1)) != 0 {
        value |= u64::MAX << f.bits;
    }
    value as i64
}

fn write_field(bytes: &mut [u8], f: &Field, value: i64) {
    let value = value as u64;
    for i in 0..f.bits as u64 {
        let bit = (value >> (f.bits as u64 - 1 - i)) & 1 != 0;
        let pos = f.offset + i;
        let mask = 0x80u8 >> (pos & 7);
        let byte = &mut bytes[(pos >> 3) as usize];
        if bit {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// `value + incr` fitted to the field by the overflow mode; None when FAIL refuses it.
///
/// The range checks mirror Valkey's, including its 64-bit wrapping intermediate values, so
/// that even out-of-range SET values saturate in the same direction.
fn limit(f: Field, value: i64, incr: i64, mode: Overflow) -> Option<i64> {
    let bits = f.bits;
    let (overflow, underflow, max, min) = if f.signed {
        let max: i64 = if bits == 64 {
            i64::MAX
        } else {
            (1i64 << (bits - 1)) - 1
        };
        let min = -max - 1;
        let max_incr = max.wrapping_sub(value);
        let min_incr = min.wrapping_sub(value);
        let over = value > max
            || (bits != 64 && incr > max_incr)
            || (value >= 0 && incr > 0 && incr > max_incr);
        let under = !over
            && (value < min
                || (bits != 64 && incr < min_incr)
                || (value < 0 && incr < 0 && incr < min_incr));
        (over, under, max, min)
    } else {
        let max: u64 = (1u64 << bits) - 1;
        let uvalue = value as u64;
        let max_incr = max.wrapping_sub(uvalue) as i64;
        let min_incr = (uvalue as i64).wrapping_neg();
        let over = uvalue > max || incr > max_incr;
        let under = !over && incr < 0 && incr < min_incr;
        (over, under, max as i64, 0)
    };
    if !overflow && !underflow {
        return Some(value.wrapping_add(incr));
    }
    match mode {
        Overflow::Fail => None,
        Overflow::Sat => Some(if overflow { max } else { min }),
        Overflow::Wrap => Some(wrap(value, incr, f)),
    }
}

fn wrap(value: i64, incr: i64, f: Field) -> i64 {
    let sum = (value as u64).wrapping_add(incr as u64);
    if f.bits == 64 {
        return sum as i64;
    }
    let mask = u64::MAX << f.bits;
    if f.signed && sum & (1 << (f.bits - 1)) != 0 {
        (sum | mask) as i64
    } else {
        (sum & !mask) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(signed: bool, bits: u32) -> Field {
        Field {
            signed,
            bits,
            offset: 0,
        }
    }

    #[test]
    fn overflow_modes() {
        let u8f = field(false, 8);
        let i8f = field(true, 8);
        assert_eq!(limit(u8f, 300, 0, Overflow::Wrap), Some(44));
        assert_eq!(limit(u8f, -1, 0, Overflow::Wrap), Some(255));
        assert_eq!(limit(u8f, 300, 0, Overflow::Sat), Some(255));
        assert_eq!(limit(u8f, 300, 0, Overflow::Fail), None);
        assert_eq!(limit(u8f, 10, -1000, Overflow::Sat), Some(0));
        assert_eq!(limit(i8f, 300, 0, Overflow::Wrap), Some(44));
        assert_eq!(limit(i8f, -129, 0, Overflow::Wrap), Some(127));
        assert_eq!(limit(i8f, 100, 1000, Overflow::Sat), Some(127));
        assert_eq!(limit(i8f, -100, -1000, Overflow::Sat), Some(-128));
        assert_eq!(
            limit(field(true, 64), i64::MAX, 1, Overflow::Wrap),
            Some(i64::MIN)
        );
        assert_eq!(
            limit(field(true, 64), i64::MAX, 1, Overflow::Sat),
            Some(i64::MAX)
        );
    }

    #[test]
    fn fields_round_trip_at_odd_offsets() {
        let mut bytes = vec![0u8; 4];
        let f = Field {
            signed: true,
            bits: 5,
            offset: 6,
        };
        write_field(&mut bytes, &f, -3);
        assert_eq!(read_field(&bytes, &f), -3);
        let u = Field { signed: false, ..f };
        assert_eq!(read_field(&bytes, &u), 29);
    }
}
