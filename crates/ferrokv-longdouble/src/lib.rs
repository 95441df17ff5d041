//! The C `long double` arithmetic behind INCRBYFLOAT and HINCRBYFLOAT.
//!
//! Valkey adds these increments in `long double` (80-bit x87 extended precision on x86-64,
//! IEEE quad on aarch64 Linux) and prints the sum with `%.17Lf`, trailing zeros trimmed. The
//! extra precision is visible to clients: `0.1 + 0.2` prints `0.3`, and `10.5 + 0.1` prints
//! `10.6`, which `f64` arithmetic does not reproduce. Rust has no `long double`, and no
//! maintained crate does 80-bit arithmetic together with glibc-identical `strtold` parsing
//! (hex floats, `inf`, subnormals, ERANGE rules) and `%Lf` printing. So a 60-line C file
//! compiled for the same platform does exactly what valkey-server's own C does there, with
//! the same C library, which is the only way to be byte-exact on every input.

#![deny(unsafe_op_in_unsafe_fn)]

use std::ffi::c_char;

/// Storage for one C `long double`: 16 bytes, 16-aligned (the C side asserts it fits).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Storage([u8; 16]);

/// A C `long double` value.
#[derive(Clone, Copy)]
pub struct LongDouble(Storage);

/// Longest number text accepted, and the size of the print buffer (as in valkey-server).
pub const MAX_CHARS: usize = 5 * 1024;

unsafe extern "C" {
    fn fkv_ld_parse(text: *const c_char, len: usize, out: *mut Storage) -> i32;
    fn fkv_ld_add(a: *const Storage, b: *const Storage, out: *mut Storage);
    fn fkv_ld_is_finite(a: *const Storage) -> i32;
    fn fkv_ld_format_human(value: *const Storage, buf: *mut c_char, cap: usize) -> usize;
}

impl LongDouble {
    /// Parses `text` with Valkey's rules: `strtold` must consume all of it, no leading
    /// whitespace, no NaN, no overflow, no underflow to zero, at most 5 KiB.
    pub fn parse(text: &[u8]) -> Option<LongDouble> {
        let mut out = Storage([0; 16]);
        // SAFETY: `text` is valid for `text.len()` bytes (the C side copies at most that
        // many, and only when it fits its own buffer); `out` is a valid, aligned, writable
        // Storage, which the C side's static assertions guarantee holds a long double.
        let ok = unsafe { fkv_ld_parse(text.as_ptr().cast(), text.len(), &mut out) };
        (ok == 1).then_some(LongDouble(out))
    }

    /// The exact value of an integer (every i64 is representable in a long double wider than
    /// a double, and its decimal form parses exactly).
    pub fn from_i64(n: i64) -> LongDouble {
        let text = n.to_string();
        match LongDouble::parse(text.as_bytes()) {
            Some(v) => v,
            None => unreachable!("a formatted i64 always parses"),
        }
    }

    /// `self + other`, rounded as the C `+` on long double.
    pub fn add(&self, other: &LongDouble) -> LongDouble {
        let mut out = Storage([0; 16]);
        // SAFETY: all three pointers are to valid, aligned Storage values; inputs hold
        // values written by the C side.
        unsafe { fkv_ld_add(&self.0, &other.0, &mut out) };
        LongDouble(out)
    }

    /// Neither infinite nor NaN.
    pub fn is_finite(&self) -> bool {
        // SAFETY: a pointer to a valid, aligned Storage holding a value written by C.
        unsafe { fkv_ld_is_finite(&self.0) == 1 }
    }

    /// The text INCRBYFLOAT replies and stores: `%.17Lf` with trailing zeros (and a bare
    /// point) removed, `-0` as `0`.
    pub fn to_human(&self) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_CHARS];
        // SAFETY: `buf` is writable for `buf.len()` bytes, which is the capacity passed;
        // the C side writes at most that many (snprintf) and returns the length used.
        let len = unsafe { fkv_ld_format_human(&self.0, buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(len.min(MAX_CHARS));
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incr(a: &str, b: &str) -> Option<String> {
        let sum = LongDouble::parse(a.as_bytes())?.add(&LongDouble::parse(b.as_bytes())?);
        sum.is_finite()
            .then(|| String::from_utf8(sum.to_human()).unwrap_or_default())
    }

    #[test]
    fn extended_precision_shows_in_sums() {
        assert_eq!(incr("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(incr("10.5", "0.1").as_deref(), Some("10.6"));
        assert_eq!(incr("1e20", "1").as_deref(), Some("100000000000000000000"));
        assert_eq!(incr("-0.0", "0").as_deref(), Some("0"));
        assert_eq!(incr("1e-20", "0").as_deref(), Some("0"));
        assert_eq!(incr("0x10", "0").as_deref(), Some("16"));
        assert_eq!(incr("inf", "1"), None);
    }

    #[test]
    fn parse_rejects_what_valkey_rejects() {
        for bad in [
            "", " 1", "1 ", "nan", "1e5000", "-1e5000", "1e-5000", "abc", "1\u{0}",
        ] {
            assert!(LongDouble::parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        let mut long = vec![b'0'; MAX_CHARS];
        assert!(LongDouble::parse(&long).is_none());
        long.pop();
        assert!(LongDouble::parse(&long).is_some());
        for good in ["inf", "-inf", "1e-4940", "+5", ".5", "5.", "1E3"] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good:?}");
        }
    }

    #[test]
    fn integers_convert_exactly() {
        let v = LongDouble::from_i64(i64::MAX).add(&LongDouble::from_i64(0));
        assert_eq!(v.to_human(), b"9223372036854775807");
        assert_eq!(
            LongDouble::from_i64(i64::MIN).to_human(),
            b"-9223372036854775808"
        );
    }
}
