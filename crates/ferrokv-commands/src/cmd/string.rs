//! String commands.

use bytes::Bytes;
use ferrokv_store::{StrValue, Value};

use crate::context::{CmdResult, Ctx, errors};
use crate::spec::{CommandSpec, KeySpec, category as cat, flag, key_flag as kf};

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, "string")
        .flags(flag::READONLY | flag::FAST)
        .categories(cat::STRING)
        .keys(&[KeySpec::single(1, kf::RO | kf::ACCESS)])
        .doc("1.0.0", "Returns the string value of a key.", "O(1)")
        .handler(get),
    CommandSpec::new("set", -3, "string")
        .flags(flag::WRITE | flag::DENYOOM)
        .categories(cat::STRING)
        .keys(&[KeySpec::single(1, kf::RW | kf::ACCESS | kf::UPDATE | kf::VARIABLE_FLAGS)])
        .doc(
            "1.0.0",
            "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.",
            "O(1)",
        )
        .handler(set),
];

/// `GET key`
fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    match ctx.read(&mut locked, key).map(|e| &e.value) {
        None => ctx.reply.null(),
        Some(Value::Str(StrValue::Int(n))) => ctx.reply.bulk_int(*n),
        Some(Value::Str(StrValue::Embstr(b) | StrValue::Raw(b))) => ctx.reply.bulk(b),
        #[allow(unreachable_patterns)]
        Some(_) => return Err(errors::WRONGTYPE),
    }
    Ok(())
}

/// `SET key value` (the options arrive with the full string family).
fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() != 3 {
        return Err(errors::SYNTAX);
    }
    let key = &args[1];
    let entry = ctx.new_entry(Value::Str(StrValue::from_bytes(&args[2])));
    let mut locked = ctx.lock(&[key]);
    locked.db(ctx.db(), key).insert(key, entry);
    ctx.add_dirty(1);
    ctx.reply.ok();
    Ok(())
}
