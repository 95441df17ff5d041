//! Geohash arithmetic for the geo commands, bit-compatible with Valkey.
//!
//! A geo member is a sorted set member whose score is a 52-bit interleaved geohash: 26 bits
//! of latitude (the even bits) and 26 bits of longitude (the odd bits), each the position of
//! the coordinate in its range scaled to `2^26` and truncated. Latitudes are limited to the
//! Web Mercator range (±85.05112878), so the cells are squares on a Mercator map.
//!
//! Everything a client can observe is computed with the same floating-point operations, in
//! the same order, as Valkey: the scores (ZSCORE), the decoded cell centres (GEOPOS), the
//! standard base-32 geohash strings (GEOHASH, re-encoded with a ±90 latitude range),
//! haversine distances on a sphere of radius 6372797.560856 m, and the choice of the nine
//! cells a radius or box search scans (which decides both what a search can find and the
//! order it finds it in).

/// The Earth radius Valkey's distances use, in metres.
pub const EARTH_RADIUS_M: f64 = 6372797.560856;
/// Latitude limits of the index (Web Mercator).
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LON_MIN: f64 = -180.0;
pub const LON_MAX: f64 = 180.0;
/// Bits per coordinate in a stored score.
pub const STEP_MAX: u8 = 26;
/// Half the Mercator world width in metres, the largest radius step estimation considers.
const MERCATOR_MAX: f64 = 20037726.37;

const DEG_TO_RAD: f64 = std::f64::consts::PI / 180.0;

fn deg_rad(degrees: f64) -> f64 {
    degrees * DEG_TO_RAD
}

fn rad_deg(radians: f64) -> f64 {
    radians / DEG_TO_RAD
}

/// A closed coordinate interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub min: f64,
    pub max: f64,
}

/// The ranges the index encodes against.
pub const LON_RANGE: Interval = Interval {
    min: LON_MIN,
    max: LON_MAX,
};
pub const LAT_RANGE: Interval = Interval {
    min: LAT_MIN,
    max: LAT_MAX,
};
/// The latitude range of standard geohash strings.
const STANDARD_LAT_RANGE: Interval = Interval {
    min: -90.0,
    max: 90.0,
};

/// A geohash cell: `step` bits per coordinate, interleaved in the low `2 * step` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    /// The "no cell" marker of a neighbour excluded from a search (Valkey's zeroed hash).
    pub const NONE: Cell = Cell { bits: 0, step: 0 };

    pub fn is_none(&self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The cell's bits at full 52-bit precision: the lowest score inside it.
    pub fn align52(&self) -> u64 {
        self.bits << (52 - 2 * u32::from(self.step))
    }

    /// The scores `[min, max)` of the members inside this cell.
    pub fn score_range(&self) -> (u64, u64) {
        let next = Cell {
            bits: self.bits.wrapping_add(1),
            step: self.step,
        };
        (self.align52(), next.align52())
    }
}

/// The area a cell covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub cell: Cell,
    pub lon: Interval,
    pub lat: Interval,
}

/// Spreads the 32 bits of `v` to the even bit positions of a u64.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

/// The inverse of [`spread`]: the even bits of `v`, packed.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// Latitude in the even bits, longitude in the odd bits.
fn interleave(lat_bits: u32, lon_bits: u32) -> u64 {
    spread(lat_bits) | (spread(lon_bits) << 1)
}

/// `(lat_bits, lon_bits)` of an interleaved hash.
fn deinterleave(bits: u64) -> (u32, u32) {
    (squash(bits), squash(bits >> 1))
}

/// A C `(uint32_t)` conversion of a non-negative double below 2^32 (the offsets here):
/// truncation toward zero.
fn to_u32(v: f64) -> u32 {
    v as u32
}

/// The cell of `step` bits holding the point, or `None` outside the index limits or the
/// given ranges.
pub fn encode(
    lon_range: Interval,
    lat_range: Interval,
    lon: f64,
    lat: f64,
    step: u8,
) -> Option<Cell> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < lon_range.min || lon > lon_range.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * scale;
    let lon_offset = (lon - lon_range.min) / (lon_range.max - lon_range.min) * scale;
    Some(Cell {
        bits: interleave(to_u32(lat_offset), to_u32(lon_offset)),
        step,
    })
}

/// [`encode`] against the index ranges.
pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Cell> {
    encode(LON_RANGE, LAT_RANGE, lon, lat, step)
}

/// The score GEOADD stores for a point, or `None` outside the index limits.
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(|cell| cell.align52())
}

/// The area a cell covers.
pub fn decode(lon_range: Interval, lat_range: Interval, cell: Cell) -> Area {
    let (lat_bits, lon_bits) = deinterleave(cell.bits);
    let cells = (1u64 << cell.step) as f64;
    let lat_scale = lat_range.max - lat_range.min;
    let lon_scale = lon_range.max - lon_range.min;
    let lat_bits = f64::from(lat_bits);
    let lon_bits = f64::from(lon_bits);
    Area {
        cell,
        lat: Interval {
            min: lat_range.min + (lat_bits / cells) * lat_scale,
            max: lat_range.min + ((lat_bits + 1.0) / cells) * lat_scale,
        },
        lon: Interval {
            min: lon_range.min + (lon_bits / cells) * lon_scale,
            max: lon_range.min + ((lon_bits + 1.0) / cells) * lon_scale,
        },
    }
}

/// The centre of an area, clamped to the index limits: `(longitude, latitude)`.
pub fn area_center(area: &Area) -> (f64, f64) {
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The C conversion `(uint64_t)score` as x86-64 compilers emit it: values below 2^63 go
/// through a signed truncation (negative values wrap, out-of-range ones give 2^63), larger
/// ones are offset by 2^63 first. Any sorted set member can be asked for its position, so
/// scores that are not geohashes must decode as Valkey decodes them.
fn c_double_to_u64(score: f64) -> u64 {
    const TWO_63: f64 = 9223372036854775808.0;
    fn truncate_signed(v: f64) -> u64 {
        if (-TWO_63..TWO_63).contains(&v) {
            (v as i64) as u64
        } else {
            1 << 63
        }
    }
    if score < TWO_63 {
        truncate_signed(score)
    } else {
        truncate_signed(score - TWO_63) ^ (1 << 63)
    }
}

/// The position a score stands for (the centre of its 26-bit cell): `(longitude, latitude)`.
pub fn decode_score(score: f64) -> (f64, f64) {
    let cell = Cell {
        bits: c_double_to_u64(score),
        step: STEP_MAX,
    };
    area_center(&decode(LON_RANGE, LAT_RANGE, cell))
}

/// The 11-character standard geohash of a score (GEOHASH): the decoded position
/// re-encoded with latitudes over ±90; the 11th character stands for bits the score does
/// not have and is always `0`.
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let bits = encode(LON_RANGE, STANDARD_LAT_RANGE, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    let mut out = [b'0'; 11];
    for (i, slot) in out.iter_mut().enumerate().take(10) {
        let index = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *slot = ALPHABET[index as usize];
    }
    out
}

/// Moves a cell one step east (`1`) or west (`-1`), wrapping around the antimeridian.
fn move_lon(cell: &mut Cell, direction: i8) {
    let width = 64 - 2 * u32::from(cell.step);
    let lon = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let lat = cell.bits & 0x5555_5555_5555_5555;
    let lat_mask = 0x5555_5555_5555_5555u64.checked_shr(width).unwrap_or(0);
    let moved = if direction > 0 {
        lon.wrapping_add(lat_mask.wrapping_add(1))
    } else {
        (lon | lat_mask).wrapping_sub(lat_mask.wrapping_add(1))
    };
    let lon_mask = 0xaaaa_aaaa_aaaa_aaaau64.checked_shr(width).unwrap_or(0);
    cell.bits = (moved & lon_mask) | lat;
}

/// Moves a cell one step north (`1`) or south (`-1`), wrapping around at the poles.
fn move_lat(cell: &mut Cell, direction: i8) {
    let width = 64 - 2 * u32::from(cell.step);
    let lon = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let lat = cell.bits & 0x5555_5555_5555_5555;
    let lon_mask = 0xaaaa_aaaa_aaaa_aaaau64.checked_shr(width).unwrap_or(0);
    let moved = if direction > 0 {
        lat.wrapping_add(lon_mask.wrapping_add(1))
    } else {
        (lat | lon_mask).wrapping_sub(lon_mask.wrapping_add(1))
    };
    let lat_mask = 0x5555_5555_5555_5555u64.checked_shr(width).unwrap_or(0);
    cell.bits = lon | (moved & lat_mask);
}

/// The eight cells around one, in Valkey's search order after the centre:
/// north, south, east, west, north-east, north-west, south-east, south-west.
pub fn neighbors(cell: Cell) -> [Cell; 8] {
    let moved = |east: i8, north: i8| {
        let mut c = cell;
        if east != 0 {
            move_lon(&mut c, east);
        }
        if north != 0 {
            move_lat(&mut c, north);
        }
        c
    };
    [
        moved(0, 1),
        moved(0, -1),
        moved(1, 0),
        moved(-1, 0),
        moved(1, 1),
        moved(-1, 1),
        moved(1, -1),
        moved(-1, -1),
    ]
}

/// The coarsest cell size that still makes nine cells cover a radius at this latitude.
pub fn estimate_steps_by_radius(range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return 26;
    }
    let mut range = range_m;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    // Make sure the range is included in most of the base cases.
    step -= 2;
    // Meridians converge towards the poles: widen the cells there.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// Distance along a meridian between two latitudes, in metres.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Great-circle (haversine) distance in metres.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same meridian: the cheaper formula, as Valkey takes it (its result can differ in the
    // last bits from the general one).
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

/// What a search covers, around `center` (`(longitude, latitude)`); sizes are in the
/// client's unit, `to_meters` converts them.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub center: (f64, f64),
    pub to_meters: f64,
    pub kind: ShapeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShapeKind {
    Circle {
        radius: f64,
    },
    Box {
        width: f64,
        height: f64,
    },
    /// BYPOLYGON: the vertices as given; the shape's centre is [`polygon_center`].
    Polygon(Polygon),
}

/// A polygon on the lon/lat plane: its vertices (the closing edge is implied) and their
/// bounding box `[min_lon, min_lat, max_lon, max_lat]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    vertices: Vec<(f64, f64)>,
    bounds: [f64; 4],
}

impl Polygon {
    /// A polygon over `vertices` (at least one; the caller checks there are three).
    pub fn new(vertices: Vec<(f64, f64)>) -> Polygon {
        let mut bounds = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        for &(lon, lat) in &vertices {
            bounds[0] = bounds[0].min(lon);
            bounds[1] = bounds[1].min(lat);
            bounds[2] = bounds[2].max(lon);
            bounds[3] = bounds[3].max(lat);
        }
        Polygon { vertices, bounds }
    }

    /// The centre distances are measured from, as Valkey takes it: the vertices as points
    /// on the sphere (a repeated closing vertex counts twice), averaged in 3-D, and the
    /// direction of that average read back as longitude and latitude.
    pub fn center(&self) -> (f64, f64) {
        let (mut x, mut y, mut z) = (0.0, 0.0, 0.0);
        for &(lon, lat) in &self.vertices {
            let (lon, lat) = (deg_rad(lon), deg_rad(lat));
            x += EARTH_RADIUS_M * lat.cos() * lon.cos();
            y += EARTH_RADIUS_M * lat.cos() * lon.sin();
            z += EARTH_RADIUS_M * lat.sin();
        }
        let n = self.vertices.len() as f64;
        let (x, y, z) = (x / n, y / n, z / n);
        (
            rad_deg(y.atan2(x)),
            rad_deg(z.atan2((x * x + y * y).sqrt())),
        )
    }

    /// Whether a point lies inside, by the even-odd rule with straight edges on the
    /// lon/lat plane.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        let mut inside = false;
        let mut prev = match self.vertices.last() {
            Some(&v) => v,
            None => return false,
        };
        for &(vlon, vlat) in &self.vertices {
            let (plon, plat) = prev;
            if (vlat > lat) != (plat > lat)
                && lon < (plon - vlon) * (lat - vlat) / (plat - vlat) + vlon
            {
                inside = !inside;
            }
            prev = (vlon, vlat);
        }
        inside
    }
}

impl Shape {
    /// The distance in metres from the centre to a point inside the shape, or `None` when
    /// the point is outside.
    pub fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        let (clon, clat) = self.center;
        match self.kind {
            ShapeKind::Circle { radius } => {
                let d = distance(clon, clat, lon, lat);
                (d <= radius * self.to_meters).then_some(d)
            }
            ShapeKind::Box { width, height } => {
                let (width_m, height_m) = (width * self.to_meters, height * self.to_meters);
                if lat_distance(lat, clat) > height_m / 2.0 {
                    return None;
                }
                if distance(lon, lat, clon, lat) > width_m / 2.0 {
                    return None;
                }
                Some(distance(clon, clat, lon, lat))
            }
            ShapeKind::Polygon(ref polygon) => polygon
                .contains(lon, lat)
                .then(|| distance(clon, clat, lon, lat)),
        }
    }

    /// `[min_lon, min_lat, max_lon, max_lat]` of the shape.
    fn bounding_box(&self) -> [f64; 4] {
        let (lon, lat) = self.center;
        let (half_height, half_width) = match self.kind {
            ShapeKind::Circle { radius } => (radius, radius),
            ShapeKind::Box { width, height } => (height / 2.0, width / 2.0),
            ShapeKind::Polygon(ref polygon) => return polygon.bounds,
        };
        let height = self.to_meters * half_height;
        let width = self.to_meters * half_width;
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let lon_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(width / EARTH_RADIUS_M / deg_rad(lat - lat_delta).cos());
        // The side nearer the equator is the wider one.
        let lon_delta = if lat < 0.0 {
            lon_delta_bottom
        } else {
            lon_delta_top
        };
        [
            lon - lon_delta,
            lat - lat_delta,
            lon + lon_delta,
            lat + lat_delta,
        ]
    }

    /// The radius in metres the cell size is estimated from (a box's half diagonal).
    fn radius_m(&self) -> f64 {
        let r = match self.kind {
            ShapeKind::Circle { radius } => radius,
            ShapeKind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
            // The farthest corner of the polygon's bounding box from its centre.
            ShapeKind::Polygon(ref polygon) => {
                let (clon, clat) = self.center;
                let [min_lon, min_lat, max_lon, max_lat] = polygon.bounds;
                [
                    (min_lon, min_lat),
                    (min_lon, max_lat),
                    (max_lon, min_lat),
                    (max_lon, max_lat),
                ]
                .iter()
                .map(|&(lon, lat)| distance(clon, clat, lon, lat))
                .fold(0.0, f64::max)
            }
        };
        r * self.to_meters
    }

    /// The cells to scan, in Valkey's order: the centre's cell, then its neighbours
    /// (north, south, east, west, NE, NW, SE, SW), those that cannot intersect the shape
    /// being [`Cell::NONE`].
    pub fn search_cells(&self) -> [Cell; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounding_box();
        let (lon, lat) = self.center;
        // A polygon's centre can fall outside what geohashes cover (near the poles); Valkey
        // then has no cell to start from and finds nothing.
        if encode_wgs84(lon, lat, STEP_MAX).is_none() {
            return [Cell::NONE; 9];
        }
        let mut steps = estimate_steps_by_radius(self.radius_m(), lat);
        let at_step = |steps: u8| {
            let cell = encode_wgs84(lon, lat, steps).unwrap_or(Cell {
                bits: 0,
                step: steps,
            });
            (cell, neighbors(cell), decode(LON_RANGE, LAT_RANGE, cell))
        };
        let (mut cell, mut around, mut area) = at_step(steps);

        // Near a cell's edge the estimated step can be too fine for the neighbours to
        // cover the whole shape: one step coarser then.
        let [north, south, east, west, ..] = around.map(|c| decode(LON_RANGE, LAT_RANGE, c));
        let too_fine = north.lat.max < max_lat
            || south.lat.min > min_lat
            || east.lon.max < max_lon
            || west.lon.min > min_lon;
        if steps > 1 && too_fine {
            steps -= 1;
            (cell, around, area) = at_step(steps);
        }

        // Skip the neighbours the shape does not reach.
        const NORTH: usize = 0;
        const SOUTH: usize = 1;
        const EAST: usize = 2;
        const WEST: usize = 3;
        const NORTH_EAST: usize = 4;
        const NORTH_WEST: usize = 5;
        const SOUTH_EAST: usize = 6;
        const SOUTH_WEST: usize = 7;
        if steps >= 2 {
            let mut drop = |sides: [usize; 3]| {
                for side in sides {
                    around[side] = Cell::NONE;
                }
            };
            if area.lat.min < min_lat {
                drop([SOUTH, SOUTH_WEST, SOUTH_EAST]);
            }
            if area.lat.max > max_lat {
                drop([NORTH, NORTH_EAST, NORTH_WEST]);
            }
            if area.lon.min < min_lon {
                drop([WEST, SOUTH_WEST, NORTH_WEST]);
            }
            if area.lon.max > max_lon {
                drop([EAST, SOUTH_EAST, NORTH_EAST]);
            }
        }
        let mut cells = [cell; 9];
        cells[1..].copy_from_slice(&around);
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_valkey() {
        // Values read from valkey-server 9.1 (GEOADD then ZSCORE).
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(score_of(15.087269, 37.502669), Some(3479447370796909));
        assert_eq!(score_of(-180.0, -85.05112878), Some(0));
        // The upper edges overflow into bits 52 and 53, as in Valkey.
        assert_eq!(score_of(180.0, 85.05112878), Some(13510798882111488));
        assert_eq!(score_of(180.0, 85.05112879), None);
        assert_eq!(score_of(180.000001, 0.0), None);
    }

    #[test]
    fn decoding_matches_valkey() {
        let (lon, lat) = decode_score(3479099956230698.0);
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        // Scores that are not geohashes decode through C's double-to-unsigned cast.
        assert_eq!(decode_score(-5.0), (180.0, LAT_MAX));
        assert_eq!(decode_score(f64::INFINITY), decode_score(0.0));
        assert_eq!(decode_score(f64::NEG_INFINITY).0, 180.0);
        assert_eq!(decode_score(1e20), decode_score(0.0));
        assert_eq!(decode_score(0.5), decode_score(0.0));
    }

    #[test]
    fn geohash_strings_match_valkey() {
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
        assert_eq!(&geohash_string(3479447370796909.0), b"sqdtr74hyu0");
        assert_eq!(&geohash_string(0.0), b"00bh0hbj200");
        assert_eq!(&geohash_string(-5.0), b"bp05b5048p0");
    }

    #[test]
    fn distances_match_valkey() {
        let (a, b) = (
            decode_score(3479099956230698.0),
            decode_score(3479447370796909.0),
        );
        let d = distance(a.0, a.1, b.0, b.1);
        assert_eq!(format!("{d:.4}"), "166274.1516");
        assert_eq!(distance(1.0, 2.0, 1.0, 2.0), 0.0);
    }

    #[test]
    fn interleaving_round_trips() {
        for (lat, lon) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x155_5555),
            (u32::MAX, 7),
        ] {
            assert_eq!(deinterleave(interleave(lat, lon)), (lat, lon));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn neighbours_wrap_around_the_antimeridian() {
        let cell = encode_wgs84(179.99, 0.0, 4).expect("cell");
        let east = neighbors(cell)[2];
        let east_area = decode(LON_RANGE, LAT_RANGE, east);
        assert_eq!(east_area.lon.min, -180.0);
        let west_of_east = neighbors(east)[3];
        assert_eq!(west_of_east, cell);
        let north = neighbors(cell)[0];
        assert_eq!(neighbors(north)[1], cell);
    }

    #[test]
    fn step_estimation() {
        assert_eq!(estimate_steps_by_radius(0.0, 0.0), 26);
        assert_eq!(estimate_steps_by_radius(1e9, 0.0), 1);
        let equator = estimate_steps_by_radius(1000.0, 0.0);
        assert_eq!(estimate_steps_by_radius(1000.0, 70.0), equator - 1);
        assert_eq!(estimate_steps_by_radius(1000.0, -85.0), equator - 2);
    }

    #[test]
    fn search_cells_start_with_the_centre() {
        let shape = Shape {
            center: (15.0, 37.0),
            to_meters: 1000.0,
            kind: ShapeKind::Circle { radius: 200.0 },
        };
        let cells = shape.search_cells();
        let centre = cells[0];
        assert_eq!(encode_wgs84(15.0, 37.0, centre.step), Some(centre));
        let (lo, hi) = centre.score_range();
        assert!(lo < hi);
    }

    #[test]
    fn polygons_use_even_odd_and_a_spherical_centre() {
        let triangle = Polygon::new(vec![(-0.1, -0.1), (1.2, -0.1), (-0.1, 1.2)]);
        let (lon, lat) = triangle.center();
        assert!((lon - 0.333_356_5).abs() < 1e-6 && (lat - 0.333_344_1).abs() < 1e-6);
        assert!(triangle.contains(0.5, 0.5));
        assert!(!triangle.contains(1.0, 1.0));
        // A bow tie: the crossing splits it into two triangles; the middle of each side is out.
        let bow_tie = Polygon::new(vec![(0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0)]);
        assert!(bow_tie.contains(0.5, 1.0));
        assert!(bow_tie.contains(1.5, 1.0));
        assert!(!bow_tie.contains(1.0, 0.5));
        assert!(!bow_tie.contains(1.0, 1.5));
        let shape = Shape {
            center: triangle.center(),
            to_meters: 1.0,
            kind: ShapeKind::Polygon(triangle),
        };
        assert!(
            shape
                .contains(0.0, 0.0)
                .is_some_and(|d| (d - 52_435.1).abs() < 1.0)
        );
        // A centre past the Mercator limit leaves nothing to scan.
        let south = Polygon::new(vec![(-100.0, -85.0), (-60.0, -85.0), (-80.0, -84.99)]);
        let shape = Shape {
            center: south.center(),
            to_meters: 1.0,
            kind: ShapeKind::Polygon(south),
        };
        assert!(shape.search_cells().iter().all(Cell::is_none));
    }
}
