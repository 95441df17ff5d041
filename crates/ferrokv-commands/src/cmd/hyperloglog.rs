//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//!
//! A HyperLogLog is a string in Valkey's byte format (`ferrokv_store::types::hyperloglog`),
//! so it has no value type of its own. Every command first checks that a string holds a
//! HyperLogLog header; commands that may rewrite the value also make it `raw`, as Valkey
//! unshares the string before touching it, so OBJECT ENCODING agrees afterwards.

use std::borrow::Cow::Borrowed;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use ferrokv_store::types::hyperloglog::{self as hll, Encoding};
use ferrokv_store::{Locked, StrValue, Value};

use crate::cmd::args;
use crate::cmd::string::{string_of, string_of_mut};
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};
use crate::stats;

const HLL: u64 = cat::HYPERLOGLOG;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("pfadd", -2, "hyperloglog")
        .flags(flag::WRITE | flag::DENYOOM | flag::FAST)
        .categories(HLL)
        .keys(&[KeySpec::single(1, kf::RW | kf::INSERT)])
        .doc(
            "2.8.9",
            "Counts elements into a HyperLogLog, creating the key when missing.",
            "O(1) to add every element.",
        )
        .handler(pfadd),
    CommandSpec::new("pfcount", -2, "hyperloglog")
        // `may_replicate` (hidden): it may rewrite the cached cardinality, so CLIENT PAUSE
        // WRITE holds it back and read-only scripts may not call it, as in Valkey.
        .flags(flag::READONLY | flag::MAY_REPLICATE)
        .categories(HLL)
        .keys(&[KeySpec::to_end(1, 1, kf::RW | kf::ACCESS)])
        .key_notes(&[
            "RW because it may change the internal representation of the key, and propagate to replicas",
        ])
        .doc(
            "2.8.9",
            "Estimates how many distinct elements one HyperLogLog, or the union of several, has seen.",
            "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.",
        )
        .handler(pfcount),
    CommandSpec::new("pfmerge", -2, "hyperloglog")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(HLL)
        .keys(&[
            KeySpec::single(1, kf::RW | kf::ACCESS | kf::INSERT),
            KeySpec::to_end(2, 1, kf::RO | kf::ACCESS),
        ])
        .doc(
            "2.8.9",
            "Stores the union of HyperLogLogs (the destination's own included) in the destination.",
            "O(N) to merge N HyperLogLogs, but with high constant times.",
        )
        .handler(pfmerge),
    CommandSpec::new("pfdebug", 3, "hyperloglog")
        .flags(flag::WRITE | flag::DENYOOM | flag::ADMIN)
        .categories(HLL)
        .keys(&[KeySpec::single(2, kf::RW | kf::ACCESS)])
        .doc(
            "2.8.9",
            "Inspects or converts the internal representation of a HyperLogLog.",
            "N/A",
        )
        .handler(pfdebug),
    CommandSpec::new("pfselftest", 1, "hyperloglog")
        .flags(flag::ADMIN)
        .categories(HLL)
        .doc(
            "2.8.9",
            "Runs the HyperLogLog implementation's internal checks.",
            "N/A",
        )
        .handler(pfselftest),
];

/// A string that is not a HyperLogLog (Valkey's text, under the WRONGTYPE code).
const NOT_HLL: CmdError = CmdError(Borrowed(
    "WRONGTYPE Key is not a valid HyperLogLog string value.",
));
/// A HyperLogLog whose registers cannot be decoded.
const CORRUPTED: CmdError = CmdError(Borrowed("INVALIDOBJ Corrupted HLL object detected"));

/// Whether PFDEBUG SIMD asked for vectorised register loops. This implementation has one
/// code path, so the switch is only remembered and reported back.
static SIMD: AtomicBool = AtomicBool::new(true);

/// The HyperLogLog bytes of a value, read-only: WRONGTYPE for other types and for strings
/// without a valid header (integer-encoded strings never have one).
fn hll_of(value: &Value) -> Result<(&[u8], Encoding), CmdError> {
    match string_of(value)? {
        StrValue::Int(_) => Err(NOT_HLL),
        StrValue::Embstr(b) | StrValue::Raw(b) => Ok((b, hll::validate(b).map_err(|_| NOT_HLL)?)),
    }
}

/// The HyperLogLog bytes of a value for a command that may rewrite them; the string becomes
/// `raw`, as Valkey unshares it before any change.
fn hll_of_mut(value: &mut Value) -> Result<&mut Vec<u8>, CmdError> {
    hll_of(value)?;
    Ok(string_of_mut(value)?.make_raw())
}

fn sparse_max_bytes(ctx: &Ctx) -> u64 {
    ctx.client.config.hll_sparse_max_bytes.max(0) as u64
}

/// The HyperLogLog under `key` for writing, created empty when missing. Whether it was
/// created, or WRONGTYPE.
fn writable_hll<'l>(
    ctx: &Ctx,
    locked: &'l mut Locked<'_>,
    key: &[u8],
) -> Result<(&'l mut Vec<u8>, bool), CmdError> {
    let created = ctx.write(locked, key).is_none();
    if created {
        let entry = ctx.new_entry(Value::Str(StrValue::Raw(hll::new_sparse())));
        locked.db(ctx.db(), key).insert(key, entry);
    }
    let Some(entry) = ctx.write(locked, key) else {
        unreachable!("inserted above while holding the lock")
    };
    Ok((hll_of_mut(&mut entry.value)?, created))
}

/// `PFADD key [element ...]`: 1 if the key was created or a register changed.
fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let max_bytes = sparse_max_bytes(ctx);
    let mut locked = ctx.lock(&[key]);
    let (bytes, created) = writable_hll(ctx, &mut locked, key)?;
    let mut updated = created as u64;
    for element in &args[2..] {
        // A corrupted value stops the command where it is; what was added so far stays, as
        // in Valkey.
        if hll::add(bytes, element, max_bytes).map_err(|_| CORRUPTED)? {
            updated += 1;
        }
    }
    if updated > 0 {
        hll::invalidate_cache(bytes);
        ctx.notify(ferrokv_store::events::class::STRING, "pfadd", key);
        ctx.add_dirty(updated);
    }
    ctx.reply.int((updated > 0) as i64);
    Ok(())
}

/// `PFCOUNT key [key ...]`: one key uses (and refreshes) its cached cardinality; several keys
/// are merged into temporary registers and nothing is written.
fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let keys = &args[1..];
    let mut locked = ctx.lock(keys);
    if let [key] = keys {
        let Some(entry) = ctx.read(&mut locked, key) else {
            ctx.reply.int(0);
            return Ok(());
        };
        let bytes = hll_of_mut(&mut entry.value)?;
        let card = match hll::cached_cardinality(bytes) {
            Some(card) => card,
            None => {
                let card = hll::count(bytes).map_err(|_| CORRUPTED)?;
                hll::set_cached_cardinality(bytes, card);
                ctx.add_dirty(1);
                card
            }
        };
        ctx.reply.int(card as i64);
        return Ok(());
    }
    let mut max = Box::new([0u8; hll::REGISTERS]);
    for key in keys {
        let Some(entry) = ctx.read(&mut locked, key) else {
            continue;
        };
        let (bytes, _) = hll_of(&entry.value)?;
        hll::merge_into(&mut max, bytes).map_err(|_| CORRUPTED)?;
    }
    ctx.reply.int(hll::count_registers(&max) as i64);
    Ok(())
}

/// `PFMERGE destkey [sourcekey ...]`: the destination takes the register-wise maximum of
/// itself and the sources; it turns dense if any input was dense.
fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let dest = &args[1];
    let max_bytes = sparse_max_bytes(ctx);
    let mut locked = ctx.lock(&args[1..]);
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut any_dense = false;
    for key in &args[1..] {
        let Some(entry) = ctx.read(&mut locked, key) else {
            continue;
        };
        let (bytes, encoding) = hll_of(&entry.value)?;
        any_dense |= encoding == Encoding::Dense;
        hll::merge_into(&mut max, bytes).map_err(|_| CORRUPTED)?;
    }
    let (bytes, _) = writable_hll(ctx, &mut locked, dest)?;
    hll::store_registers(bytes, &max, any_dense, max_bytes).map_err(|_| CORRUPTED)?;
    ctx.notify(ferrokv_store::events::class::STRING, "pfadd", dest);
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}

/// `PFDEBUG <GETREG | DECODE | ENCODING | TODENSE> key` and `PFDEBUG SIMD <ON | OFF>`.
fn pfdebug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if args::is(sub, "simd") {
        if args::is(&args[2], "on") {
            SIMD.store(true, Ordering::Relaxed);
        } else if args::is(&args[2], "off") {
            SIMD.store(false, Ordering::Relaxed);
        } else {
            // Valkey 9.1 sends the error and then, having not returned, the current state
            // as well: two replies to one command. Clients see the same pair from ferrokv.
            const BAD_ARGUMENT: &str = "ERR Argument must be ON or OFF";
            stats::local().count_error(BAD_ARGUMENT);
            ctx.reply.error(BAD_ARGUMENT);
        }
        let on = SIMD.load(Ordering::Relaxed);
        ctx.reply.simple(if on { "enabled" } else { "disabled" });
        return Ok(());
    }
    let key = &args[2];
    let mut locked = ctx.lock(&[key]);
    let Some(entry) = ctx.write(&mut locked, key) else {
        return Err(CmdError::err("The specified key does not exist"));
    };
    let bytes = hll_of_mut(&mut entry.value)?;
    if args::is(sub, "getreg") {
        if hll::to_dense(bytes).map_err(|_| CORRUPTED)? {
            // Valkey counts the conversion as a change so that it propagates.
            ctx.add_dirty(1);
        }
        ctx.reply.array_len(hll::REGISTERS);
        for register in hll::dense_registers(bytes) {
            ctx.reply.int(register as i64);
        }
    } else if args::is(sub, "decode") {
        if hll::validate(bytes) != Ok(Encoding::Sparse) {
            return Err(CmdError::err("HLL encoding is not sparse"));
        }
        ctx.reply.bulk(hll::decode_sparse(bytes).as_bytes());
    } else if args::is(sub, "encoding") {
        let encoding = hll::validate(bytes).unwrap_or(Encoding::Dense);
        ctx.reply.simple(encoding.name());
    } else if args::is(sub, "todense") {
        let converted = hll::to_dense(bytes).map_err(|_| CORRUPTED)?;
        if converted {
            ctx.add_dirty(1);
        }
        ctx.reply.int(converted as i64);
    } else {
        return Err(CmdError::err(format!(
            "Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(())
}

/// `PFSELFTEST`: OK, or the first check that failed.
fn pfselftest(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    hll::self_test().map_err(CmdError::new)?;
    ctx.reply.ok();
    Ok(())
}
