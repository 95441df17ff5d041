//! The `#!<engine> [option ...]` first line of EVAL scripts and function libraries.

use ferrokv_protocol::split_args::{UnbalancedQuotes, split_args};

use crate::context::CmdError;

/// Script flags (EVAL shebang `flags=` and `register_function` flags).
pub mod script_flag {
    pub const NO_WRITES: u32 = 1 << 0;
    pub const ALLOW_OOM: u32 = 1 << 1;
    pub const ALLOW_STALE: u32 = 1 << 2;
    pub const NO_CLUSTER: u32 = 1 << 3;
    pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;
    /// A script without a shebang: Valkey's pre-7 rules (may write, OOM checked per call).
    pub const EVAL_COMPAT: u32 = 1 << 5;

    /// Flag names, in the order FUNCTION LIST prints them.
    pub const NAMES: &[(&str, u32)] = &[
        ("no-writes", NO_WRITES),
        ("allow-oom", ALLOW_OOM),
        ("allow-stale", ALLOW_STALE),
        ("no-cluster", NO_CLUSTER),
        ("allow-cross-slot-keys", ALLOW_CROSS_SLOT),
    ];

    pub fn by_name(name: &[u8]) -> Option<u32> {
        NAMES
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|&(_, f)| f)
    }
}

/// A parsed shebang line.
pub struct Shebang {
    pub engine: Vec<u8>,
    pub options: Vec<Vec<u8>>,
    /// Length of the first line, without its newline.
    pub line_len: usize,
}

/// The shebang of `code`, if it starts with `#!`. The line is split as Valkey splits it
/// (quotes and escapes as in the inline protocol, so `name="lib"` names `lib`); the engine
/// is what follows `#!` in the first word (`#! name=x` names the engine ''). `Err`:
/// unbalanced quotes.
pub fn parse(code: &[u8]) -> Option<Result<Shebang, UnbalancedQuotes>> {
    if !code.starts_with(b"#!") {
        return None;
    }
    let line_end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let words = match split_args(&code[..line_end]) {
        Ok(words) => words,
        Err(e) => return Some(Err(e)),
    };
    let mut words = words.into_iter();
    let engine = words
        .next()
        .map(|first| first.get(2..).unwrap_or_default().to_vec())
        .unwrap_or_default();
    Some(Ok(Shebang {
        engine,
        options: words.collect(),
        line_len: line_end,
    }))
}

/// The flags an EVAL script declares, and its body with the shebang line blanked (line
/// numbers in error messages stay those of the source).
pub fn eval_flags(code: &[u8]) -> Result<(u32, Vec<u8>), CmdError> {
    let flags = declared_flags(code)?;
    let body = match parse(code) {
        Some(Ok(shebang)) => blank_first_line(code, shebang.line_len),
        _ => code.to_vec(),
    };
    Ok((flags, body))
}

/// The flags an EVAL script declares (`EVAL_COMPAT` without a shebang), without copying it.
pub fn declared_flags(code: &[u8]) -> Result<u32, CmdError> {
    let shebang = match parse(code) {
        None => return Ok(script_flag::EVAL_COMPAT),
        Some(Err(UnbalancedQuotes)) => {
            return Err(CmdError::err("Invalid engine in script shebang"));
        }
        Some(Ok(shebang)) => shebang,
    };
    if !shebang.engine.eq_ignore_ascii_case(b"lua") {
        return Err(CmdError::err(format!(
            "Could not find scripting engine '{}'",
            String::from_utf8_lossy(&shebang.engine)
        )));
    }
    let mut flags = 0;
    for option in &shebang.options {
        let Some(list) = option.strip_prefix(b"flags=") else {
            return Err(CmdError::err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(option)
            )));
        };
        for name in list.split(|&b| b == b',').filter(|n| !n.is_empty()) {
            flags |= script_flag::by_name(name).ok_or_else(|| {
                CmdError::err(format!(
                    "Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(name)
                ))
            })?;
        }
    }
    Ok(flags)
}

/// The library name a FUNCTION LOAD payload declares (`#!lua name=<lib>`).
pub fn library_name(code: &[u8]) -> Result<(String, Vec<u8>), CmdError> {
    let shebang = match parse(code) {
        None => return Err(CmdError::err("Missing library metadata")),
        Some(Err(UnbalancedQuotes)) => return Err(CmdError::err("Invalid library metadata")),
        Some(Ok(shebang)) => shebang,
    };
    if !code.contains(&b'\n') {
        return Err(CmdError::err("Invalid library metadata"));
    }
    if !shebang.engine.eq_ignore_ascii_case(b"lua") {
        return Err(CmdError::err(format!(
            "Engine '{}' not found",
            String::from_utf8_lossy(&shebang.engine)
        )));
    }
    let mut name = None;
    for option in &shebang.options {
        match option.strip_prefix(b"name=") {
            Some(_) if name.is_some() => {
                return Err(CmdError::err(
                    "Invalid metadata value, name argument was given multiple times",
                ));
            }
            Some(value) => name = Some(String::from_utf8_lossy(value).into_owned()),
            None => {
                return Err(CmdError::err(format!(
                    "Invalid metadata value given: {}",
                    String::from_utf8_lossy(option)
                )));
            }
        }
    }
    let Some(name) = name else {
        return Err(CmdError::err("Library name was not given"));
    };
    if !valid_name(name.as_bytes()) {
        return Err(CmdError::err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    Ok((name, blank_first_line(code, shebang.line_len)))
}

/// Function and library names: letters, digits and underscores, at least one.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `code` without its first line, but with that line's newline, so that line numbers in
/// error messages stay those of the source.
fn blank_first_line(code: &[u8], line_len: usize) -> Vec<u8> {
    code[line_len.min(code.len())..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_flags_and_line_numbers() {
        let (flags, body) = eval_flags(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert_eq!(flags, script_flag::NO_WRITES | script_flag::ALLOW_OOM);
        assert_eq!(body, b"\nreturn 1");
        let (flags, body) = eval_flags(b"return 1").unwrap();
        assert_eq!(flags, script_flag::EVAL_COMPAT);
        assert_eq!(body, b"return 1");
        assert!(eval_flags(b"#!lua flags=bogus\n").is_err());
        assert!(eval_flags(b"#!luax\n").is_err());
        let (name, _) = library_name(b"#!lua name=mylib\nx").unwrap();
        assert_eq!(name, "mylib");
        assert!(library_name(b"return 1").is_err());
    }
}
