//! The options of the SCAN family (`SCAN`, `HSCAN`, `SSCAN`, `ZSCAN`) after the cursor, parsed
//! once for all four: `MATCH pattern`, `COUNT count` (at least 1), and the option only one
//! member of the family has (`TYPE` for SCAN, `NOVALUES` for HSCAN, `NOSCORES` for ZSCAN), with
//! Valkey's errors when another member is given it.

use bytes::Bytes;
use ferrokv_store::ObjectType;

use crate::cmd::args;
use crate::context::{CmdError, errors};

/// Which member of the family is parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanFamily {
    Keys,
    Hash,
    Set,
    ZSet,
}

pub(crate) struct ScanOptions<'a> {
    pub count: u64,
    pub pattern: Option<&'a [u8]>,
    /// SCAN's `TYPE`.
    pub object_type: Option<ObjectType>,
    /// HSCAN's `NOVALUES`.
    pub no_values: bool,
    /// ZSCAN's `NOSCORES`.
    pub no_scores: bool,
}

pub(crate) fn parse(args: &[Bytes], family: ScanFamily) -> Result<ScanOptions<'_>, CmdError> {
    let mut options = ScanOptions {
        count: 10,
        pattern: None,
        object_type: None,
        no_values: false,
        no_scores: false,
    };
    let mut i = 0;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        let option = &args[i];
        if args::is(option, "count") && has_value {
            let count = args::int(&args[i + 1])?;
            options.count = u64::try_from(count)
                .ok()
                .filter(|&c| c >= 1)
                .ok_or(errors::SYNTAX)?;
            i += 2;
        } else if args::is(option, "match") && has_value {
            options.pattern = Some(&args[i + 1]);
            i += 2;
        } else if family == ScanFamily::Keys && args::is(option, "type") && has_value {
            let name = &args[i + 1];
            options.object_type = Some(ObjectType::from_name(name).ok_or_else(|| {
                CmdError::err(format!(
                    "unknown type name '{}'",
                    String::from_utf8_lossy(name)
                ))
            })?);
            i += 2;
        } else if args::is(option, "novalues") {
            if family != ScanFamily::Hash {
                return Err(CmdError::err("NOVALUES option can only be used in HSCAN"));
            }
            options.no_values = true;
            i += 1;
        } else if args::is(option, "noscores") {
            if family != ScanFamily::ZSet {
                return Err(CmdError::err("NOSCORES option can only be used in ZSCAN"));
            }
            options.no_scores = true;
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok(options)
}
