//! XADD, XLEN, XDEL, XTRIM and XSETID.

use bytes::Bytes;
use ferrokv_store::types::stream::{Stream, StreamId, TrimTo};
use ferrokv_store::{Locked, Value};

use super::ids::{self, IdRules};
use super::{node_limits, opt_stream, reply_id};
use crate::blocking;
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::dispatch::arity_error;

/// Entries `~` trimming may remove per call when LIMIT is not given: 100 nodes' worth,
/// within Valkey's bounds.
fn default_trim_limit(max_entries: i64) -> u64 {
    let limit = max_entries.saturating_mul(100);
    if limit <= 0 || limit > 1_000_000 {
        10_000
    } else {
        limit as u64
    }
}

/// The trimming and ID arguments shared by XADD and XTRIM.
struct AddOrTrim {
    trim: Option<TrimTo>,
    approx: bool,
    limit: u64,
    no_mkstream: bool,
    /// XADD's explicit ID and whether its sequence was given (`None` for `*`).
    id: Option<(StreamId, bool)>,
    /// Index of XADD's ID argument (`args.len()` when none was found).
    id_index: usize,
    /// Index of the threshold argument, when `~` preceded it (the propagated form rewrites
    /// both to an exact trim).
    approx_threshold_index: Option<usize>,
}

/// `obey`: the AOF loader, which may send LIMIT with an exact trim (what an approximate
/// trim propagates as).
fn parse_add_or_trim(
    args: &[Bytes],
    start: usize,
    xadd: bool,
    max_entries: i64,
    obey: bool,
) -> Result<AddOrTrim, CmdError> {
    let mut parsed = AddOrTrim {
        trim: None,
        approx: false,
        limit: 0,
        no_mkstream: false,
        id: None,
        id_index: args.len(),
        approx_threshold_index: None,
    };
    let mut limit_given = false;
    let mut i = start;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            parsed.id_index = i;
            break;
        } else if (args::is(opt, "maxlen") || args::is(opt, "minid")) && more > 0 {
            if parsed.trim.is_some() {
                return Err(CmdError::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            parsed.approx = false;
            parsed.approx_threshold_index = None;
            let next = &args[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                parsed.approx = true;
                parsed.approx_threshold_index = Some(i + 2);
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            let threshold = &args[i + 1];
            parsed.trim = Some(if args::is(opt, "maxlen") {
                let max = args::int(threshold)?;
                if max < 0 {
                    return Err(CmdError::err("The MAXLEN argument must be >= 0."));
                }
                TrimTo::MaxLen(max as u64)
            } else {
                TrimTo::MinId(ids::strict(threshold)?)
            });
            i += 1;
        } else if args::is(opt, "limit") && more > 0 {
            let limit = args::int(&args[i + 1])?;
            if limit < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            parsed.limit = limit as u64;
            limit_given = true;
            i += 1;
        } else if xadd && args::is(opt, "nomkstream") {
            parsed.no_mkstream = true;
        } else if xadd {
            let rules = IdRules {
                strict: true,
                missing_seq: 0,
                allow_seq_wildcard: true,
            };
            parsed.id = Some(ids::parse_with(opt, rules)?);
            parsed.id_index = i;
            break;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    if parsed.limit > 0 && parsed.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && parsed.trim.is_none() {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if limit_given {
        if !parsed.approx && !obey {
            return Err(CmdError::err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if parsed.approx {
        parsed.limit = default_trim_limit(max_entries);
    } else {
        parsed.limit = 0;
    }
    Ok(parsed)
}

const SMALLER_THAN_TOP: &str =
    "The ID specified in XADD is equal or smaller than the target stream top item";

/// The ID XADD gives the new entry, or its error.
fn new_entry_id(
    stream: &Stream,
    requested: Option<(StreamId, bool)>,
    now_ms: i64,
) -> Result<StreamId, CmdError> {
    let last = stream.last_id;
    let id = match requested {
        None => {
            return stream
                .auto_id(now_ms)
                .ok_or_else(|| CmdError::err(SMALLER_THAN_TOP));
        }
        Some((id, true)) => id,
        Some((id, false)) if id.ms == last.ms => {
            if last.seq == u64::MAX {
                return Err(CmdError::err(SMALLER_THAN_TOP));
            }
            StreamId::new(id.ms, last.seq + 1)
        }
        Some((id, false)) => id,
    };
    if id <= last {
        return Err(CmdError::err(SMALLER_THAN_TOP));
    }
    Ok(id)
}

/// Serves clients blocked on `key` before this command's locks go.
pub(super) fn wake_readers<'a>(ctx: &Ctx<'a>, locked: &mut Locked<'a>, key: &Bytes) {
    blocking::signal_ready(ctx, key);
    if blocking::pending() {
        blocking::serve_ready(ctx.server, locked, ctx.now_ms);
    }
}

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...`
pub(super) fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let limits = node_limits(&ctx.client.config);
    let parsed = parse_add_or_trim(args, 2, true, limits.max_entries, ctx.client.must_obey)?;
    let field_pos = parsed.id_index + 1;
    if args.len() < field_pos + 2 || !(args.len() - field_pos).is_multiple_of(2) {
        return Err(arity_error("xadd"));
    }
    if let Some((id, true)) = parsed.id
        && id.is_zero()
    {
        return Err(CmdError::err(
            "The ID specified in XADD must be greater than 0-0",
        ));
    }
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let existing = opt_stream(ctx.write(&mut locked, key))?;
    let mut fresh = None;
    let stream = match existing {
        Some(stream) => stream,
        None if parsed.no_mkstream => {
            ctx.reply.null();
            return Ok(());
        }
        None => fresh.insert(Stream::new()),
    };
    if stream.last_id == StreamId::MAX {
        return Err(CmdError::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let id = new_entry_id(stream, parsed.id, ctx.now_ms)?;
    stream.append(id, &args[field_pos..], limits);
    let trimmed = match parsed.trim {
        Some(to) => stream.trim(to, parsed.approx, parsed.limit),
        None => 0,
    };
    if let Some(stream) = fresh {
        let entry = ctx.new_entry(Value::Stream(Box::new(stream)));
        locked.db(ctx.db(), key).insert(key, entry);
    }
    ctx.notify(ferrokv_store::events::class::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(ferrokv_store::events::class::STREAM, "xtrim", key);
    }
    let auto_id = args[parsed.id_index].contains(&b'*');
    if ctx.propagating() && (auto_id || parsed.approx_threshold_index.is_some()) {
        // An ID the server chose goes out explicitly, so every copy stores the same one;
        // an approximate trim goes out as the exact trim it amounted to.
        let mut rewritten = args.to_vec();
        if auto_id {
            rewritten[parsed.id_index] = Bytes::from(id.to_bytes().to_vec());
        }
        if let Some(stream) = opt_stream(ctx.read(&mut locked, key))? {
            exact_trim_form(&mut rewritten, &parsed, stream);
        }
        ctx.propagate_as(rewritten);
    }
    ctx.add_dirty(1);
    reply_id(ctx.reply, id);
    wake_readers(ctx, &mut locked, key);
    Ok(())
}

/// Rewrites `~ threshold` in `args` to the exact trim that leaves `stream` as it is now
/// (what Valkey propagates): `= length` for MAXLEN, `= first ID` for MINID (the largest ID
/// when the stream is empty). LIMIT stays; replicas accept it with `=`.
fn exact_trim_form(args: &mut [Bytes], parsed: &AddOrTrim, stream: &Stream) {
    let Some(at) = parsed.approx_threshold_index else {
        return;
    };
    args[at - 1] = Bytes::from_static(b"=");
    args[at] = match parsed.trim {
        Some(TrimTo::MaxLen(_)) => {
            Bytes::copy_from_slice(itoa::Buffer::new().format(stream.len()).as_bytes())
        }
        _ => {
            let first = stream.first_entry().map_or(StreamId::MAX, |e| e.id());
            Bytes::from(first.to_bytes().to_vec())
        }
    };
}

/// `XLEN key`
pub(super) fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[1]]);
    let len = opt_stream(ctx.read(&mut locked, &args[1]))?.map_or(0, |s| s.len());
    ctx.reply.int(len as i64);
    Ok(())
}

/// `XDEL key id [id ...]`
pub(super) fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut locked = ctx.lock(&[&args[1]]);
    let Some(stream) = opt_stream(ctx.write(&mut locked, &args[1]))? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let ids = args[2..]
        .iter()
        .map(|a| ids::strict(a))
        .collect::<Result<Vec<_>, _>>()?;
    let deleted = stream.delete(&ids);
    if deleted > 0 {
        ctx.notify(ferrokv_store::events::class::STREAM, "xdel", &args[1]);
    }
    ctx.add_dirty(deleted as u64);
    ctx.reply.int(deleted as i64);
    Ok(())
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
pub(super) fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let max_entries = ctx.client.config.stream_node_max_entries;
    let parsed = parse_add_or_trim(args, 2, false, max_entries, ctx.client.must_obey)?;
    let mut locked = ctx.lock(&[&args[1]]);
    let Some(stream) = opt_stream(ctx.write(&mut locked, &args[1]))? else {
        ctx.reply.int(0);
        return Ok(());
    };
    let deleted = match parsed.trim {
        Some(to) => stream.trim(to, parsed.approx, parsed.limit),
        None => 0,
    };
    if deleted > 0 {
        ctx.notify(ferrokv_store::events::class::STREAM, "xtrim", &args[1]);
        if ctx.propagating() && parsed.approx_threshold_index.is_some() {
            let mut rewritten = args.to_vec();
            exact_trim_form(&mut rewritten, &parsed, stream);
            ctx.propagate_as(rewritten);
        }
    }
    ctx.add_dirty(deleted);
    ctx.reply.int(deleted as i64);
    Ok(())
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`
pub(super) fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = ids::strict(&args[2])?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::ZERO;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args::is(&args[i], "entriesadded") && more > 0 {
            let n = args::int(&args[i + 1])?;
            if n < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if args::is(&args[i], "maxdeletedid") && more > 0 {
            max_deleted = ids::strict(&args[i + 1])?;
            if id < max_deleted {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    let mut locked = ctx.lock(&[&args[1]]);
    let Some(stream) = opt_stream(ctx.write(&mut locked, &args[1]))? else {
        return Err(errors::NO_SUCH_KEY);
    };
    if id < stream.max_deleted_id {
        return Err(CmdError::err(
            "The ID specified in XSETID is smaller than current max_deleted_entry_id",
        ));
    }
    if !stream.is_empty() {
        if id < stream.last_valid_id() {
            return Err(CmdError::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| stream.len() > n) {
            return Err(CmdError::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    stream.last_id = id;
    if let Some(n) = entries_added {
        stream.entries_added = n;
    }
    if !max_deleted.is_zero() {
        stream.max_deleted_id = max_deleted;
    }
    ctx.notify(ferrokv_store::events::class::STREAM, "xsetid", &args[1]);
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}
