//! GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and the `_RO` forms.
//!
//! All of them run one search routine, as in Valkey: the options are parsed left to right
//! with the source set already looked up (FROMMEMBER resolves its member while parsing), so
//! the first error in argument order is the one reported; then the nine cells around the
//! centre are scanned by score range, each point filtered by the shape, and the matches
//! sorted, cut to COUNT, and replied or stored.

use std::cmp::Ordering;

use bytes::Bytes;
use ferrokv_store::Value;
use ferrokv_store::types::geohash::{self, Polygon, Shape, ShapeKind};
use ferrokv_store::types::skiplist;
use ferrokv_store::types::zset::ZSet;

use super::{double_or, format_coordinate, format_distance, is_word, lon_lat, unit_to_meters};
use crate::cmd::args;
use crate::cmd::partial_sort::partial_sort;
use crate::cmd::zset::{limits, serve_blocked, zset_of};
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// Which command is running: where its fixed arguments end and what it accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS / GEORADIUS_RO: `key longitude latitude radius unit`.
    Radius { store_allowed: bool },
    /// GEORADIUSBYMEMBER / GEORADIUSBYMEMBER_RO: `key member radius unit`.
    RadiusByMember { store_allowed: bool },
    /// GEOSEARCH: `key` then FROM* and BY* options.
    Search,
    /// GEOSEARCHSTORE: `destination key` then FROM* and BY* options.
    SearchStore,
}

impl Form {
    fn is_search(self) -> bool {
        matches!(self, Form::Search | Form::SearchStore)
    }

    fn store_allowed(self) -> bool {
        matches!(
            self,
            Form::Radius {
                store_allowed: true
            } | Form::RadiusByMember {
                store_allowed: true
            }
        )
    }

    /// The index of the source key.
    fn source(self) -> usize {
        if self == Form::SearchStore { 2 } else { 1 }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Unsorted,
    Ascending,
    Descending,
}

/// `GEOSEARCH key FROMMEMBER member | FROMLONLAT lon lat  BYRADIUS r unit | BYBOX w h unit
/// [ASC | DESC] [COUNT n [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]`
pub(super) fn geosearch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, Form::Search)
}

/// `GEOSEARCHSTORE destination source ... [STOREDIST]`
pub(super) fn geosearchstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    run(ctx, args, Form::SearchStore)
}

/// `GEORADIUS key longitude latitude radius unit [options] [STORE key | STOREDIST key]`
pub(super) fn georadius(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let form = Form::Radius {
        store_allowed: true,
    };
    run(ctx, args, form)
}

pub(super) fn georadius_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let form = Form::Radius {
        store_allowed: false,
    };
    run(ctx, args, form)
}

/// `GEORADIUSBYMEMBER key member radius unit [options] [STORE key | STOREDIST key]`
pub(super) fn georadiusbymember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let form = Form::RadiusByMember {
        store_allowed: true,
    };
    run(ctx, args, form)
}

pub(super) fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let form = Form::RadiusByMember {
        store_allowed: false,
    };
    run(ctx, args, form)
}

/// Every parsed option.
struct Request {
    shape: Option<Shape>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    any: bool,
    count: usize,
    order: Order,
    /// The destination, and whether it stores distances instead of geohashes.
    store: Option<(Bytes, bool)>,
}

/// One match.
struct Point {
    member: Box<[u8]>,
    score: f64,
    lon: f64,
    lat: f64,
    /// From the centre, in metres.
    dist: f64,
}

/// The keys to lock: the source, and the destination of a STORE form. For GEORADIUS every
/// argument after a STORE/STOREDIST word is locked, a superset of whatever the parser
/// ends up storing to.
fn keys_to_lock(args: &[Bytes], form: Form) -> Vec<&[u8]> {
    let mut keys: Vec<&[u8]> = vec![&args[form.source()]];
    match form {
        Form::SearchStore => keys.push(&args[1]),
        _ if form.store_allowed() => {
            for pair in args[2..].windows(2) {
                if is_word(&pair[0], "store") || is_word(&pair[0], "storedist") {
                    keys.push(&pair[1]);
                }
            }
        }
        _ => {}
    }
    keys
}

fn run(ctx: &mut Ctx, args: &[Bytes], form: Form) -> CmdResult {
    let keys = keys_to_lock(args, form);
    let mut locked = ctx.lock(&keys);
    let source = &args[form.source()];
    let zset = match ctx.read(&mut locked, source) {
        None => None,
        Some(entry) => Some(zset_of(&entry.value)?),
    };
    let mut request = parse(args, form, zset)?;
    let (zset, shape) = match (zset, request.shape.take()) {
        (Some(zset), Some(shape)) => (zset, shape),
        // No source: nothing matches, whatever the shape.
        _ => {
            match &request.store {
                Some((dst, _)) => {
                    let db = ctx.db();
                    if locked.db(db, dst).delete(dst) {
                        ctx.notify(ferrokv_store::events::class::GENERIC, "del", dst);
                        ctx.add_dirty(1);
                    }
                    ctx.reply.int(0);
                }
                None => ctx.reply.array_len(0),
            }
            return Ok(());
        }
    };
    let limit = if request.any { request.count } else { 0 };
    let mut points = collect(zset, &shape, limit);
    let returned = if request.count == 0 {
        points.len()
    } else {
        points.len().min(request.count)
    };
    sort(&mut points, request.order, returned);
    points.truncate(returned);

    match request.store {
        None => reply(ctx, &request, &points, shape.to_meters),
        Some((dst, store_dist)) => {
            let pairs = points
                .into_iter()
                .map(|p| {
                    let score = if store_dist {
                        p.dist / shape.to_meters
                    } else {
                        p.score
                    };
                    (p.member, score)
                })
                .collect();
            store(ctx, &mut locked, &dst, pairs);
        }
    }
    Ok(())
}

/// Parses everything after the fixed arguments, with Valkey's precedence of errors.
fn parse(args: &[Bytes], form: Form, zset: Option<&ZSet>) -> Result<Request, CmdError> {
    let mut request = Request {
        shape: None,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        any: false,
        count: 0,
        order: Order::Unsorted,
        store: None,
    };
    let mut center = None;
    let mut kind = None;
    let mut to_meters = 1.0;
    let base = match form {
        Form::Radius { .. } => {
            center = Some(lon_lat(&args[2], &args[3])?);
            let (radius, unit) = radius(&args[4], &args[5])?;
            kind = Some(ShapeKind::Circle { radius });
            to_meters = unit;
            6
        }
        Form::RadiusByMember { .. } => {
            // Without a source the member and radius are not looked at: the reply is empty.
            if let Some(zset) = zset {
                center = Some(member_position(zset, &args[2])?);
                let (radius, unit) = radius(&args[3], &args[4])?;
                kind = Some(ShapeKind::Circle { radius });
                to_meters = unit;
            }
            5
        }
        Form::Search => 2,
        Form::SearchStore => {
            request.store = Some((args[1].clone(), false));
            3
        }
    };

    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box, mut by_polygon) =
        (false, false, false, false, false);
    let options = &args[base..];
    let mut i = 0;
    while i < options.len() {
        let arg = &options[i];
        let remaining = options.len() - i - 1;
        if is_word(arg, "withdist") {
            request.with_dist = true;
        } else if is_word(arg, "withhash") {
            request.with_hash = true;
        } else if is_word(arg, "withcoord") {
            request.with_coord = true;
        } else if is_word(arg, "any") {
            request.any = true;
        } else if is_word(arg, "asc") {
            request.order = Order::Ascending;
        } else if is_word(arg, "desc") {
            request.order = Order::Descending;
        } else if is_word(arg, "count") && remaining >= 1 {
            let count = args::int(&options[i + 1])?;
            if count <= 0 {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            request.count = usize::try_from(count).unwrap_or(usize::MAX);
            i += 1;
        } else if (is_word(arg, "store") || is_word(arg, "storedist"))
            && remaining >= 1
            && form.store_allowed()
        {
            request.store = Some((options[i + 1].clone(), is_word(arg, "storedist")));
            i += 1;
        } else if is_word(arg, "storedist") && form == Form::SearchStore {
            request.store = Some((args[1].clone(), true));
        } else if is_word(arg, "frommember")
            && remaining >= 1
            && form.is_search()
            && !from_lonlat
            && !by_polygon
        {
            if let Some(zset) = zset {
                center = Some(member_position(zset, &options[i + 1])?);
            }
            from_member = true;
            i += 1;
        } else if is_word(arg, "fromlonlat")
            && remaining >= 2
            && form.is_search()
            && !from_member
            && !by_polygon
        {
            center = Some(lon_lat(&options[i + 1], &options[i + 2])?);
            from_lonlat = true;
            i += 2;
        } else if is_word(arg, "byradius")
            && remaining >= 2
            && form.is_search()
            && !by_box
            && !by_polygon
        {
            let (radius, unit) = radius(&options[i + 1], &options[i + 2])?;
            kind = Some(ShapeKind::Circle { radius });
            to_meters = unit;
            by_radius = true;
            i += 2;
        } else if is_word(arg, "bybox")
            && remaining >= 3
            && form.is_search()
            && !by_radius
            && !by_polygon
        {
            let width = double_or(&options[i + 1], "need numeric width")?;
            let height = double_or(&options[i + 2], "need numeric height")?;
            if width < 0.0 || height < 0.0 {
                return Err(CmdError::err("height or width cannot be negative"));
            }
            to_meters = unit_to_meters(&options[i + 3])?;
            kind = Some(ShapeKind::Box { width, height });
            by_box = true;
            i += 3;
        } else if is_word(arg, "bypolygon")
            && remaining >= 2
            && form.is_search()
            && !(from_member || from_lonlat || by_radius || by_box)
        {
            // A later BYPOLYGON replaces an earlier one, as in Valkey.
            let polygon = polygon(&options[i + 1..])?;
            i += 1 + 2 * polygon.len();
            let polygon = Polygon::new(polygon);
            center = Some(polygon.center());
            kind = Some(ShapeKind::Polygon(polygon));
            to_meters = 1.0;
            by_polygon = true;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }

    let storing = request.store.is_some();
    if storing && (request.with_dist || request.with_hash || request.with_coord) {
        return Err(CmdError::err(if form == Form::SearchStore {
            "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        }));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if form.is_search() && !(from_member || from_lonlat || by_polygon) {
        return Err(CmdError::err(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if form.is_search() && !(by_radius || by_box || by_polygon) {
        return Err(CmdError::err(format!(
            "exactly one of BYRADIUS, BYBOX and BYPOLYGON can be specified for {name}"
        )));
    }
    if request.any && request.count == 0 {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    // COUNT alone means the nearest ones.
    if request.count != 0 && request.order == Order::Unsorted && !request.any {
        request.order = Order::Ascending;
    }
    request.shape = center.zip(kind).map(|(center, kind)| Shape {
        center,
        to_meters,
        kind,
    });
    Ok(request)
}

/// `count lon lat [lon lat ...]` (what follows BYPOLYGON) → the vertices. The count must
/// be a 32-bit integer of at least 3, with that many pairs following.
fn polygon(args: &[Bytes]) -> Result<Vec<(f64, f64)>, CmdError> {
    let count = args::int(&args[0])
        .ok()
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| CmdError::err("invalid number of vertices"))?;
    let pairs = (args.len() - 1) / 2;
    if count < 3 || count as usize > pairs {
        return Err(CmdError::err(
            "GEOSEARCH BYPOLYGON must have at least 3 vertices",
        ));
    }
    args[1..]
        .chunks_exact(2)
        .take(count as usize)
        .map(|pair| lon_lat(&pair[0], &pair[1]))
        .collect()
}

/// `radius unit` → (radius, metres per unit).
fn radius(value: &[u8], unit: &[u8]) -> Result<(f64, f64), CmdError> {
    let radius = double_or(value, "need numeric radius")?;
    if radius < 0.0 {
        return Err(CmdError::err("radius cannot be negative"));
    }
    Ok((radius, unit_to_meters(unit)?))
}

/// The position of a member, or Valkey's error naming it.
fn member_position(zset: &ZSet, member: &[u8]) -> Result<(f64, f64), CmdError> {
    match zset.score(member) {
        Some(score) => Ok(geohash::decode_score(score)),
        None => {
            // Valkey formats the name as a C string: it ends at a zero byte.
            let name = member.split(|&b| b == 0).next().unwrap_or(member);
            Err(CmdError::err(format!(
                "member {} does not exist",
                String::from_utf8_lossy(name)
            )))
        }
    }
}

/// The members inside `shape`, in scan order: cell by cell, ascending scores within each.
/// With `limit` (ANY), the scan stops once that many are found.
fn collect(zset: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let cells = shape.search_cells();
    let mut points = Vec::new();
    // Valkey skips a neighbour equal to the last cell it scanned (large radii make
    // neighbours coincide); the centre (index 0) never counts as "last scanned".
    let mut last_scanned = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_none() {
            continue;
        }
        if last_scanned != 0 && *cell == cells[last_scanned] {
            continue;
        }
        if limit != 0 && points.len() >= limit {
            break;
        }
        let (min, max) = cell.score_range();
        let (min, max) = (min as f64, max as f64);
        let start = zset.count_while(|score, _| score < min);
        for (member, score) in zset.range(start, zset.len(), false) {
            if score >= max {
                break;
            }
            let (lon, lat) = geohash::decode_score(score);
            if let Some(dist) = shape.contains(lon, lat) {
                points.push(Point {
                    member: member.into(),
                    score,
                    lon,
                    lat,
                    dist,
                });
            }
            if limit != 0 && points.len() >= limit {
                break;
            }
        }
        last_scanned = i;
    }
    points
}

/// Orders the points as Valkey does: a full sort is stable (glibc's merge sort), a sort
/// for a smaller COUNT is Valkey's partial quicksort.
fn sort(points: &mut [Point], order: Order, returned: usize) {
    let ascending = |a: &Point, b: &Point| {
        if a.dist > b.dist {
            Ordering::Greater
        } else if a.dist == b.dist {
            Ordering::Equal
        } else {
            Ordering::Less
        }
    };
    let descending = |a: &Point, b: &Point| ascending(b, a);
    let by: &dyn Fn(&Point, &Point) -> Ordering = match order {
        Order::Unsorted => return,
        Order::Ascending => &ascending,
        Order::Descending => &descending,
    };
    if returned == points.len() {
        points.sort_by(by);
    } else if returned > 0 {
        partial_sort(points, 0, returned - 1, &mut |a, b| by(a, b));
    }
}

fn reply(ctx: &mut Ctx, request: &Request, points: &[Point], to_meters: f64) {
    let extras = [request.with_dist, request.with_hash, request.with_coord]
        .iter()
        .filter(|&&on| on)
        .count();
    ctx.reply.array_len(points.len());
    for point in points {
        if extras > 0 {
            ctx.reply.array_len(extras + 1);
        }
        ctx.reply.bulk(&point.member);
        if request.with_dist {
            ctx.reply
                .bulk(format_distance(point.dist / to_meters).as_bytes());
        }
        if request.with_hash {
            ctx.reply.int(point.score as i64);
        }
        if request.with_coord {
            ctx.reply.array_len(2);
            ctx.reply.double_text(&format_coordinate(point.lon));
            ctx.reply.double_text(&format_coordinate(point.lat));
        }
    }
}

/// Replaces `dst` with the points as a sorted set (deletes it when there are none) and
/// replies with their number.
fn store<'a>(
    ctx: &mut Ctx<'a>,
    locked: &mut ferrokv_store::Locked<'a>,
    dst: &[u8],
    mut pairs: Vec<(Box<[u8]>, f64)>,
) {
    let db = ctx.db();
    let count = pairs.len();
    if count == 0 {
        if locked.db(db, dst).delete(dst) {
            ctx.notify(ferrokv_store::events::class::GENERIC, "del", dst);
            ctx.add_dirty(1);
        }
        ctx.reply.int(0);
        return;
    }
    pairs.sort_by(|a, b| skiplist::compare(a.1, &a.0, b.1, &b.0));
    // A member is found at most once; keep the sorted set's invariant regardless.
    pairs.dedup_by(|a, b| a.0 == b.0);
    let zset = ZSet::from_sorted(pairs, limits(ctx));
    let entry = ctx.new_entry(Value::ZSet(zset));
    locked.db(db, dst).insert(dst, entry);
    let event = if ctx.spec.name == "geosearchstore" {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    ctx.notify(ferrokv_store::events::class::ZSET, event, dst);
    ctx.add_dirty(count as u64);
    serve_blocked(ctx, locked, dst);
    ctx.reply.int(count as i64);
}
