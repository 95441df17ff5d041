//! `struct`: Roberto Ierusalimschy's binary packing library as Valkey bundles it
//! (`struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])`, `struct.size(fmt)`).
//!
//! Format letters: `>`/`<` big/little endian (little by default, the native order on
//! x86-64), `![n]` maximum alignment (8 without a number), `x` a zero byte, `b/B h/H l/L T`
//! signed/unsigned 1, 2, 8 and 8 bytes, `i[n]/I[n]` n bytes (4 by default, at most 32),
//! `f`/`d` float/double, `c[n]` n chars (`c0`: the whole string when packing, the length
//! read just before when unpacking), `s` a zero-terminated string, spaces ignored.
//!
//! Written by hand: it is a few hundred lines of C whose observable details (C's double
//! to integer conversions on x86-64, alignment arithmetic for odd sizes, which argument an
//! error names) are what scripts see, and no crate reproduces them.

use mlua::{Lua, MultiValue, Table, Value};

use super::lauxlib::{
    self, MAX_C_STACK, arg_error, check_number, check_string, opt_integer, stack_overflow,
};

/// The largest `i`/`I` size.
const MAX_INT_SIZE: usize = 32;
/// The default of `!`: the alignment of a double on x86-64.
const MAX_ALIGN: usize = 8;

pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(size)?)?;
    Ok(t)
}

#[derive(Clone, Copy, PartialEq)]
enum Endian {
    Big,
    Little,
}

/// The state a format string sets as it goes.
struct Header {
    endian: Endian,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            endian: Endian::Little,
            align: 1,
        }
    }
}

/// A format string being read (a C string: it ends at the first zero byte).
struct Format<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Format<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Format {
            bytes: &bytes[..end],
            pos: 0,
        }
    }

    fn next_option(&mut self) -> Option<u8> {
        let opt = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(opt)
    }

    /// The number written after an option, or `default`.
    fn number(&mut self, default: usize) -> mlua::Result<usize> {
        if !self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i32 = 0;
        while let Some(&d) = self.bytes.get(self.pos).filter(|d| d.is_ascii_digit()) {
            let digit = (d - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - digit {
                return Err(mlua::Error::RuntimeError("integral size overflow".into()));
            }
            a = a * 10 + digit;
            self.pos += 1;
        }
        Ok(a as usize)
    }

    /// The size of an option's item (0 for those without one).
    fn size_of(&mut self, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)?,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(mlua::Error::RuntimeError(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size
            }
            _ => 0,
        })
    }

    /// The options that only change the header; others are invalid.
    fn control(&mut self, lua: &Lua, opt: u8, header: &mut Header) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => header.endian = Endian::Big,
            b'<' => header.endian = Endian::Little,
            b'!' => {
                let align = self.number(MAX_ALIGN)?;
                if !align.is_power_of_two() {
                    return Err(mlua::Error::RuntimeError(format!(
                        "alignment {align} is not a power of 2"
                    )));
                }
                header.align = align;
            }
            other => {
                let text = format!(
                    "invalid format option '{}'",
                    String::from_utf8_lossy(&[other])
                );
                return Err(arg_error(lua, 1, &text));
            }
        }
        Ok(())
    }
}

/// Padding before an item of `size` at offset `len` (sizes that are not powers of two
/// give the same odd results as the C code's mask arithmetic).
fn padding(len: usize, header: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(header.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

fn is_integer_option(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

fn put_integer(out: &mut Vec<u8>, n: f64, endian: Endian, size: usize) {
    let mut value = if n < 0.0 {
        lauxlib::c_double_to_i64(n) as u64
    } else {
        lauxlib::c_double_to_u64(n)
    };
    let mut bytes = vec![0u8; size];
    for i in 0..size {
        let at = match endian {
            Endian::Little => i,
            Endian::Big => size - 1 - i,
        };
        bytes[at] = value as u8;
        value = value.checked_shr(8).unwrap_or(0);
    }
    out.extend_from_slice(&bytes);
}

/// `struct.pack(fmt, v1, v2, ...)`
fn pack(lua: &Lua, mut args: MultiValue) -> mlua::Result<mlua::LuaString> {
    let fmt = check_string(lua, &args, 1)?;
    let fmt = fmt.as_bytes();
    let mut format = Format::new(&fmt);
    // The C code pushes a nil after its arguments: the first missing one reads as nil.
    args.push_back(Value::Nil);
    let mut header = Header::default();
    let mut arg = 2;
    let mut out = Vec::new();
    while let Some(opt) = format.next_option() {
        let mut size = format.size_of(opt)?;
        let pad = padding(out.len(), &header, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            _ if is_integer_option(opt) => {
                let n = check_number(lua, &args, arg)?;
                arg += 1;
                put_integer(&mut out, n, header.endian, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = check_number(lua, &args, arg)? as f32;
                arg += 1;
                match header.endian {
                    Endian::Little => out.extend_from_slice(&n.to_le_bytes()),
                    Endian::Big => out.extend_from_slice(&n.to_be_bytes()),
                }
            }
            b'd' => {
                let n = check_number(lua, &args, arg)?;
                arg += 1;
                match header.endian {
                    Endian::Little => out.extend_from_slice(&n.to_le_bytes()),
                    Endian::Big => out.extend_from_slice(&n.to_be_bytes()),
                }
            }
            b'c' | b's' => {
                let s = check_string(lua, &args, arg)?;
                arg += 1;
                let s = s.as_bytes();
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The C code names the argument after the string.
                    return Err(arg_error(lua, arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => format.control(lua, opt, &mut header)?,
        }
    }
    lua.create_string(&out)
}

/// Reads an integer of `size` bytes (only the last 8 significant ones count, and the sign
/// mask shifts as x86-64 shifts: by the amount modulo 64).
fn get_integer(data: &[u8], endian: Endian, signed: bool) -> f64 {
    let size = data.len();
    let mut l: u64 = 0;
    for i in 0..size {
        let b = match endian {
            Endian::Big => data[i],
            Endian::Little => data[size - 1 - i],
        };
        l = (l << 8) | b as u64;
    }
    if !signed {
        return l as f64;
    }
    let shift = (size as i64 * 8 - 1) as u32;
    let mask = u64::MAX.wrapping_shl(shift);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position after them.
fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = check_string(lua, &args, 1)?;
    let fmt = fmt.as_bytes();
    let data = check_string(lua, &args, 2)?;
    let data = data.as_bytes();
    let ld = data.len();
    // Read as C's size_t: a negative offset passes this check and fails the next.
    let pos = opt_integer(lua, &args, 3, 1)? as usize;
    if pos == 0 {
        return Err(arg_error(lua, 3, "offset must be 1 or greater"));
    }
    let mut pos = pos - 1;
    let mut format = Format::new(&fmt);
    let mut header = Header::default();
    let mut results: Vec<Value> = Vec::new();
    // Strings returned so far (each holds an mlua reference until returned).
    let mut strings = 0;
    let too_short = || arg_error(lua, 2, "data string too short");
    while let Some(opt) = format.next_option() {
        let mut size = format.size_of(opt)?;
        pos = pos.wrapping_add(padding(pos, &header, opt, size));
        if size > ld || pos > ld - size {
            return Err(too_short());
        }
        if args.len() + results.len() + 2 > MAX_C_STACK
            || strings >= super::msgpack::MAX_REFERENCED_RESULTS
            || args.len() + results.len() >= super::msgpack::MAX_RESULTS
        {
            return Err(stack_overflow("too many results"));
        }
        match opt {
            _ if is_integer_option(opt) => {
                let n = get_integer(
                    &data[pos..pos + size],
                    header.endian,
                    opt.is_ascii_lowercase(),
                );
                results.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let bytes: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or_default();
                let f = match header.endian {
                    Endian::Little => f32::from_le_bytes(bytes),
                    Endian::Big => f32::from_be_bytes(bytes),
                };
                results.push(Value::Number(f as f64));
            }
            b'd' => {
                let bytes: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or_default();
                let d = match header.endian {
                    Endian::Little => f64::from_le_bytes(bytes),
                    Endian::Big => f64::from_be_bytes(bytes),
                };
                results.push(Value::Number(d));
            }
            b'c' => {
                if size == 0 {
                    let previous = match results.last() {
                        Some(v @ (Value::Number(_) | Value::Integer(_) | Value::String(_))) => {
                            lua.coerce_number(v.clone())?
                        }
                        _ => None,
                    };
                    let Some(previous) = previous else {
                        return Err(mlua::Error::RuntimeError(
                            "format 'c0' needs a previous size".into(),
                        ));
                    };
                    results.pop();
                    size = if previous < 0.0 {
                        lauxlib::c_double_to_i64(previous) as u64 as usize
                    } else {
                        lauxlib::c_double_to_u64(previous) as usize
                    };
                    if size > ld || pos > ld - size {
                        return Err(too_short());
                    }
                }
                strings += 1;
                results.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(nul) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(mlua::Error::RuntimeError(
                        "unfinished string in data".into(),
                    ));
                };
                size = nul + 1;
                strings += 1;
                results.push(Value::String(lua.create_string(&data[pos..pos + nul])?));
            }
            _ => format.control(lua, opt, &mut header)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_iter(results))
}

/// `struct.size(fmt)`: the packed size of a format without variable-length items.
fn size(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let fmt = check_string(lua, &args, 1)?;
    let fmt = fmt.as_bytes();
    let mut format = Format::new(&fmt);
    let mut header = Header::default();
    let mut pos: usize = 0;
    while let Some(opt) = format.next_option() {
        let size = format.size_of(opt)?;
        pos = pos.wrapping_add(padding(pos, &header, opt, size));
        if opt == b's' {
            return Err(arg_error(lua, 1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            format.control(lua, opt, &mut header)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64 as f64)
}
