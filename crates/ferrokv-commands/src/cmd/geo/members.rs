//! GEOADD, GEOPOS, GEODIST and GEOHASH.

use bytes::Bytes;
use ferrokv_store::types::geohash;

use super::{format_coordinate, format_distance, is_word, lon_lat, unit_to_meters};
use crate::cmd::zset::{self, zset_of};
use crate::context::{CmdResult, Ctx, errors};

/// `GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]`
///
/// As in Valkey, the points become scores and the command runs as
/// `ZADD key [NX | XX] [CH] score member ...`, so the options, the reply, the encoding
/// conversions and the serving of blocked BZPOP* clients are ZADD's.
pub(super) fn geoadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut first_point = 2;
    let (mut nx, mut xx) = (false, false);
    while let Some(arg) = args.get(first_point) {
        if is_word(arg, "nx") {
            nx = true;
        } else if is_word(arg, "xx") {
            xx = true;
        } else if !is_word(arg, "ch") {
            break;
        }
        first_point += 1;
    }
    let points = &args[first_point..];
    if !points.len().is_multiple_of(3) || (nx && xx) {
        return Err(errors::SYNTAX);
    }
    let mut zadd_args = Vec::with_capacity(first_point + points.len() / 3 * 2);
    zadd_args.push(Bytes::from_static(b"ZADD"));
    zadd_args.extend_from_slice(&args[1..first_point]);
    for point in points.chunks_exact(3) {
        let (lon, lat) = lon_lat(&point[0], &point[1])?;
        // Validated above, so the encoding cannot fail; 0 keeps this panic-free regardless.
        let score = geohash::score_of(lon, lat).unwrap_or(0);
        zadd_args.push(Bytes::from(score.to_string()));
        zadd_args.push(point[2].clone());
    }
    // Valkey propagates the ZADD it runs.
    ctx.propagate_as(zadd_args.clone());
    zset::add::zadd(ctx, &zadd_args)
}

/// `GEOPOS key [member ...]`
pub(super) fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let zset = match ctx.read(&mut locked, key) {
        None => None,
        Some(entry) => Some(zset_of(&entry.value)?),
    };
    let members = &args[2..];
    ctx.reply.array_len(members.len());
    for member in members {
        match zset.and_then(|z| z.score(member)) {
            None => ctx.reply.null_array(),
            Some(score) => {
                let (lon, lat) = geohash::decode_score(score);
                ctx.reply.array_len(2);
                ctx.reply.double_text(&format_coordinate(lon));
                ctx.reply.double_text(&format_coordinate(lat));
            }
        }
    }
    Ok(())
}

/// `GEODIST key member1 member2 [M | KM | FT | MI]`
pub(super) fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    // The unit is checked before the key, as in Valkey.
    let to_meters = match args.len() {
        4 => 1.0,
        5 => unit_to_meters(&args[4])?,
        _ => return Err(errors::SYNTAX),
    };
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let scores = match ctx.read(&mut locked, key) {
        None => None,
        Some(entry) => {
            let zset = zset_of(&entry.value)?;
            zset.score(&args[2]).zip(zset.score(&args[3]))
        }
    };
    match scores {
        None => ctx.reply.null(),
        Some((a, b)) => {
            let (lon1, lat1) = geohash::decode_score(a);
            let (lon2, lat2) = geohash::decode_score(b);
            let meters = geohash::distance(lon1, lat1, lon2, lat2);
            ctx.reply
                .bulk(format_distance(meters / to_meters).as_bytes());
        }
    }
    Ok(())
}

/// `GEOHASH key [member ...]`
pub(super) fn geohash(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut locked = ctx.lock(&[key]);
    let zset = match ctx.read(&mut locked, key) {
        None => None,
        Some(entry) => Some(zset_of(&entry.value)?),
    };
    let members = &args[2..];
    ctx.reply.array_len(members.len());
    for member in members {
        match zset.and_then(|z| z.score(member)) {
            None => ctx.reply.null(),
            Some(score) => ctx.reply.bulk(&geohash::geohash_string(score)),
        }
    }
    Ok(())
}
