//! The options of SET, GETEX and MSETEX, and the one place where an expiry argument becomes
//! an absolute timestamp.

use bytes::Bytes;
use ferrokv_protocol::number::parse_i64;

use crate::cmd::args::is;
use crate::context::{CmdError, errors};

/// Which command's options are being parsed: each accepts a different subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionSet {
    /// NX XX IFEQ GET EX PX EXAT PXAT KEEPTTL
    Set,
    /// EX PX EXAT PXAT PERSIST
    GetEx,
    /// NX XX EX PX EXAT PXAT KEEPTTL
    MSetEx,
}

/// How an expiry argument is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireUnit {
    /// Seconds from now.
    Ex,
    /// Milliseconds from now.
    Px,
    /// A Unix time in seconds.
    ExAt,
    /// A Unix time in milliseconds.
    PxAt,
}

/// Turns an EX/PX/EXAT/PXAT argument into an absolute Unix-ms timestamp, with Valkey's
/// checks and error texts: the argument must be an integer, positive, and the result must
/// neither overflow nor be <= 0. `command` names the command in the error text.
///
/// Replication will rewrite relative expiries as absolute ones; this is the function to call.
pub fn absolute_expire_ms(
    unit: ExpireUnit,
    arg: &[u8],
    now_ms: i64,
    command: &str,
) -> Result<i64, CmdError> {
    let invalid = || CmdError::err(format!("invalid expire time in '{command}' command"));
    let value = parse_i64(arg).ok_or(errors::NOT_INTEGER)?;
    if value <= 0 {
        return Err(invalid());
    }
    let ms = match unit {
        ExpireUnit::Ex | ExpireUnit::ExAt => value.checked_mul(1000).ok_or_else(invalid)?,
        ExpireUnit::Px | ExpireUnit::PxAt => value,
    };
    let at = match unit {
        ExpireUnit::Ex | ExpireUnit::Px => ms.checked_add(now_ms).ok_or_else(invalid)?,
        ExpireUnit::ExAt | ExpireUnit::PxAt => ms,
    };
    if at <= 0 {
        return Err(invalid());
    }
    Ok(at)
}

/// The condition part of SET / MSETEX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// NX: only if the key does not exist.
    Missing,
    /// XX: only if the key exists.
    Exists,
    /// IFEQ: only if the key holds exactly this string.
    Equals(Bytes),
}

/// What happens to the key's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireOption<'a> {
    /// No expiry option: SET clears the TTL, GETEX leaves it.
    None,
    KeepTtl,
    Persist,
    Set(ExpireUnit, &'a [u8]),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions<'a> {
    pub condition: Condition,
    pub get: bool,
    pub expire: ExpireOption<'a>,
}

impl<'a> WriteOptions<'a> {
    /// Parses `opts` (the arguments after the value) as Valkey does: a repeated option is
    /// accepted (the last expiry wins), conflicting ones are a syntax error.
    pub fn parse(opts: &'a [Bytes], set: OptionSet) -> Result<WriteOptions<'a>, CmdError> {
        let mut parsed = WriteOptions {
            condition: Condition::Always,
            get: false,
            expire: ExpireOption::None,
        };
        let conditions = matches!(set, OptionSet::Set | OptionSet::MSetEx);
        let mut i = 0;
        while i < opts.len() {
            let opt = &opts[i];
            let next = opts.get(i + 1);
            let expire_free = matches!(parsed.expire, ExpireOption::None);
            let timed = |unit| matches!(parsed.expire, ExpireOption::Set(u, _) if u == unit);
            if conditions
                && is(opt, "nx")
                && matches!(parsed.condition, Condition::Always | Condition::Missing)
            {
                parsed.condition = Condition::Missing;
            } else if conditions
                && is(opt, "xx")
                && matches!(parsed.condition, Condition::Always | Condition::Exists)
            {
                parsed.condition = Condition::Exists;
            } else if set == OptionSet::Set
                && is(opt, "ifeq")
                && parsed.condition == Condition::Always
                && let Some(value) = next
            {
                parsed.condition = Condition::Equals(value.clone());
                i += 1;
            } else if set == OptionSet::Set && is(opt, "get") {
                parsed.get = true;
            } else if conditions
                && is(opt, "keepttl")
                && matches!(parsed.expire, ExpireOption::None | ExpireOption::KeepTtl)
            {
                parsed.expire = ExpireOption::KeepTtl;
            } else if set == OptionSet::GetEx
                && is(opt, "persist")
                && matches!(parsed.expire, ExpireOption::None | ExpireOption::Persist)
            {
                parsed.expire = ExpireOption::Persist;
            } else if let Some(unit) = expire_unit(opt)
                && (expire_free || timed(unit))
                && let Some(value) = next
            {
                parsed.expire = ExpireOption::Set(unit, value);
                i += 1;
            } else {
                return Err(errors::SYNTAX);
            }
            i += 1;
        }
        Ok(parsed)
    }
}

fn expire_unit(opt: &[u8]) -> Option<ExpireUnit> {
    if is(opt, "ex") {
        Some(ExpireUnit::Ex)
    } else if is(opt, "px") {
        Some(ExpireUnit::Px)
    } else if is(opt, "exat") {
        Some(ExpireUnit::ExAt)
    } else if is(opt, "pxat") {
        Some(ExpireUnit::PxAt)
    } else {
        None
    }
}

/// The TTL decision once the expiry argument has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// SET without an expiry option: clear; GETEX: leave alone.
    Default,
    Keep,
    Persist,
    /// Absolute Unix ms.
    At(i64),
}

impl ExpireOption<'_> {
    pub fn resolve(self, now_ms: i64, command: &str) -> Result<Ttl, CmdError> {
        Ok(match self {
            ExpireOption::None => Ttl::Default,
            ExpireOption::KeepTtl => Ttl::Keep,
            ExpireOption::Persist => Ttl::Persist,
            ExpireOption::Set(unit, arg) => {
                Ttl::At(absolute_expire_ms(unit, arg, now_ms, command)?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str, set: OptionSet) -> Result<WriteOptions<'static>, CmdError> {
        let args: Vec<Bytes> = line
            .split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let leaked: &'static [Bytes] = Box::leak(args.into_boxed_slice());
        WriteOptions::parse(leaked, set)
    }

    #[test]
    fn conflicting_options_are_syntax_errors() {
        for bad in [
            "nx xx",
            "xx nx",
            "ex 1 px 1",
            "keepttl ex 1",
            "ex 1 keepttl",
            "ifeq a nx",
            "nx ifeq a",
            "ifeq a ifeq b",
            "ex",
            "ifeq",
            "persist",
            "foo",
        ] {
            assert_eq!(parse(bad, OptionSet::Set), Err(errors::SYNTAX), "{bad}");
        }
        for bad in ["nx", "get", "keepttl", "ex 1 persist", "ifeq a"] {
            assert_eq!(parse(bad, OptionSet::GetEx), Err(errors::SYNTAX), "{bad}");
        }
        for bad in ["get", "persist", "ifeq a"] {
            assert_eq!(parse(bad, OptionSet::MSetEx), Err(errors::SYNTAX), "{bad}");
        }
    }

    #[test]
    fn repeats_are_accepted_and_the_last_expiry_wins() {
        let o = parse("NX nx GET get EX 1 ex 2", OptionSet::Set).unwrap();
        assert_eq!(o.condition, Condition::Missing);
        assert!(o.get);
        assert_eq!(o.expire, ExpireOption::Set(ExpireUnit::Ex, b"2"));
        let o = parse("persist PERSIST", OptionSet::GetEx).unwrap();
        assert_eq!(o.expire, ExpireOption::Persist);
    }

    #[test]
    fn expiry_arguments_follow_valkey_checks() {
        let now = 1_700_000_000_000;
        let at = |u, a: &str| absolute_expire_ms(u, a.as_bytes(), now, "set");
        assert_eq!(at(ExpireUnit::Ex, "10"), Ok(now + 10_000));
        assert_eq!(at(ExpireUnit::Px, "10"), Ok(now + 10));
        assert_eq!(at(ExpireUnit::ExAt, "10"), Ok(10_000));
        assert_eq!(at(ExpireUnit::PxAt, &i64::MAX.to_string()), Ok(i64::MAX));
        assert_eq!(at(ExpireUnit::Ex, "x"), Err(errors::NOT_INTEGER));
        let invalid = Err(CmdError::err("invalid expire time in 'set' command"));
        for (unit, arg) in [
            (ExpireUnit::Ex, "0"),
            (ExpireUnit::Px, "-1"),
            (ExpireUnit::Ex, "9223372036854775"),
            (ExpireUnit::Px, "9223372036854775807"),
            (ExpireUnit::ExAt, "9223372036854776"),
        ] {
            assert_eq!(at(unit, arg), invalid, "{arg}");
        }
    }
}
