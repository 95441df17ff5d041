//! Shortest-ish decimal digits of a double, by the Grisu2 algorithm (Florian Loitsch,
//! "Printing Floating-Point Numbers Quickly and Accurately with Integers", PLDI 2010).
//!
//! Valkey formats doubles with a Grisu2 implementation. Grisu2 always yields digits that read
//! back as the same double, but for about one double in a thousand they are not the shortest
//! such digits (1.23e22 comes out as 12300000000000001e6, 1e23 as 9999999999999999e7). To
//! answer byte for byte like Valkey, this module follows the same variant of the algorithm:
//! the same table of cached powers of ten, the same choice of power (the product's binary
//! exponent in [-60, -32], searched from the same estimate), the same boundaries and the same
//! final rounding loop. Its output was checked against valkey-server 9.1.2 over thousands of
//! random doubles (see the tests in `number.rs`).

/// A 64-bit significand and a binary exponent: `frac * 2^exp`.
#[derive(Clone, Copy, Debug)]
struct Fp {
    frac: u64,
    exp: i32,
}

const SIGNIFICAND_BITS: u32 = 52;
const HIDDEN_BIT: u64 = 1 << SIGNIFICAND_BITS;
const EXPONENT_BIAS: i32 = 1023 + SIGNIFICAND_BITS as i32;

/// Normalized 64-bit approximations (rounded to nearest) of 10^k for k = -348, -340, ... 340,
/// with their binary exponents. Generated with exact rational arithmetic.
const CACHED_POWERS: [(u64, i32); 87] = [
    (0xfa8fd5a0081c0288, -1220), // 1e-348
    (0xbaaee17fa23ebf76, -1193), // 1e-340
    (0x8b16fb203055ac76, -1166), // 1e-332
    (0xcf42894a5dce35ea, -1140), // 1e-324
    (0x9a6bb0aa55653b2d, -1113), // 1e-316
    (0xe61acf033d1a45df, -1087), // 1e-308
    (0xab70fe17c79ac6ca, -1060), // 1e-300
    (0xff77b1fcbebcdc4f, -1034), // 1e-292
    (0xbe5691ef416bd60c, -1007), // 1e-284
    (0x8dd01fad907ffc3c, -980),  // 1e-276
    (0xd3515c2831559a83, -954),  // 1e-268
    (0x9d71ac8fada6c9b5, -927),  // 1e-260
    (0xea9c227723ee8bcb, -901),  // 1e-252
    (0xaecc49914078536d, -874),  // 1e-244
    (0x823c12795db6ce57, -847),  // 1e-236
    (0xc21094364dfb5637, -821),  // 1e-228
    (0x9096ea6f3848984f, -794),  // 1e-220
    (0xd77485cb25823ac7, -768),  // 1e-212
    (0xa086cfcd97bf97f4, -741),  // 1e-204
    (0xef340a98172aace5, -715),  // 1e-196
    (0xb23867fb2a35b28e, -688),  // 1e-188
    (0x84c8d4dfd2c63f3b, -661),  // 1e-180
    (0xc5dd44271ad3cdba, -635),  // 1e-172
    (0x936b9fcebb25c996, -608),  // 1e-164
    (0xdbac6c247d62a584, -582),  // 1e-156
    (0xa3ab66580d5fdaf6, -555),  // 1e-148
    (0xf3e2f893dec3f126, -529),  // 1e-140
    (0xb5b5ada8aaff80b8, -502),  // 1e-132
    (0x87625f056c7c4a8b, -475),  // 1e-124
    (0xc9bcff6034c13053, -449),  // 1e-116
    (0x964e858c91ba2655, -422),  // 1e-108
    (0xdff9772470297ebd, -396),  // 1e-100
    (0xa6dfbd9fb8e5b88f, -369),  // 1e-92
    (0xf8a95fcf88747d94, -343),  // 1e-84
    (0xb94470938fa89bcf, -316),  // 1e-76
    (0x8a08f0f8bf0f156b, -289),  // 1e-68
    (0xcdb02555653131b6, -263),  // 1e-60
    (0x993fe2c6d07b7fac, -236),  // 1e-52
    (0xe45c10c42a2b3b06, -210),  // 1e-44
    (0xaa242499697392d3, -183),  // 1e-36
    (0xfd87b5f28300ca0e, -157),  // 1e-28
    (0xbce5086492111aeb, -130),  // 1e-20
    (0x8cbccc096f5088cc, -103),  // 1e-12
    (0xd1b71758e219652c, -77),   // 1e-4
    (0x9c40000000000000, -50),   // 1e4
    (0xe8d4a51000000000, -24),   // 1e12
    (0xad78ebc5ac620000, 3),     // 1e20
    (0x813f3978f8940984, 30),    // 1e28
    (0xc097ce7bc90715b3, 56),    // 1e36
    (0x8f7e32ce7bea5c70, 83),    // 1e44
    (0xd5d238a4abe98068, 109),   // 1e52
    (0x9f4f2726179a2245, 136),   // 1e60
    (0xed63a231d4c4fb27, 162),   // 1e68
    (0xb0de65388cc8ada8, 189),   // 1e76
    (0x83c7088e1aab65db, 216),   // 1e84
    (0xc45d1df942711d9a, 242),   // 1e92
    (0x924d692ca61be758, 269),   // 1e100
    (0xda01ee641a708dea, 295),   // 1e108
    (0xa26da3999aef774a, 322),   // 1e116
    (0xf209787bb47d6b85, 348),   // 1e124
    (0xb454e4a179dd1877, 375),   // 1e132
    (0x865b86925b9bc5c2, 402),   // 1e140
    (0xc83553c5c8965d3d, 428),   // 1e148
    (0x952ab45cfa97a0b3, 455),   // 1e156
    (0xde469fbd99a05fe3, 481),   // 1e164
    (0xa59bc234db398c25, 508),   // 1e172
    (0xf6c69a72a3989f5c, 534),   // 1e180
    (0xb7dcbf5354e9bece, 561),   // 1e188
    (0x88fcf317f22241e2, 588),   // 1e196
    (0xcc20ce9bd35c78a5, 614),   // 1e204
    (0x98165af37b2153df, 641),   // 1e212
    (0xe2a0b5dc971f303a, 667),   // 1e220
    (0xa8d9d1535ce3b396, 694),   // 1e228
    (0xfb9b7cd9a4a7443c, 720),   // 1e236
    (0xbb764c4ca7a44410, 747),   // 1e244
    (0x8bab8eefb6409c1a, 774),   // 1e252
    (0xd01fef10a657842c, 800),   // 1e260
    (0x9b10a4e5e9913129, 827),   // 1e268
    (0xe7109bfba19c0c9d, 853),   // 1e276
    (0xac2820d9623bf429, 880),   // 1e284
    (0x80444b5e7aa7cf85, 907),   // 1e292
    (0xbf21e44003acdd2d, 933),   // 1e300
    (0x8e679c2f5e44ff8f, 960),   // 1e308
    (0xd433179d9c8cb841, 986),   // 1e316
    (0x9e19db92b4e31ba9, 1013),  // 1e324
    (0xeb96bf6ebadf77d9, 1039),  // 1e332
    (0xaf87023b9bf0ee6b, 1066),  // 1e340
];
const FIRST_POWER: i32 = -348;
const POWER_STEP: i32 = 8;
/// The window for the binary exponent of the scaled boundaries.
const MIN_TARGET_EXP: i32 = -60;
const MAX_TARGET_EXP: i32 = -32;

/// The decimal digits of `value` (finite, > 0) and the power of ten of the last digit:
/// `value ~ digits * 10^exponent`. Returns the number of digits written to `digits`.
pub(crate) fn digits(value: f64, digits: &mut [u8; 18]) -> (usize, i32) {
    let w = decompose(value);
    let (lower, upper) = boundaries(w);
    let w = normalize(w);
    let (power, k) = cached_power(upper.exp);
    let w = multiply(w, power);
    let mut upper = multiply(upper, power);
    let mut lower = multiply(lower, power);
    lower.frac = lower.frac.wrapping_add(1);
    upper.frac = upper.frac.wrapping_sub(1);
    generate(w, upper, lower, -k, digits)
}

fn decompose(value: f64) -> Fp {
    let bits = value.to_bits();
    let frac = bits & (HIDDEN_BIT - 1);
    let biased = ((bits >> SIGNIFICAND_BITS) & 0x7ff) as i32;
    if biased == 0 {
        Fp {
            frac,
            exp: 1 - EXPONENT_BIAS,
        }
    } else {
        Fp {
            frac: frac + HIDDEN_BIT,
            exp: biased - EXPONENT_BIAS,
        }
    }
}

fn normalize(mut fp: Fp) -> Fp {
    while fp.frac & HIDDEN_BIT == 0 {
        fp.frac <<= 1;
        fp.exp -= 1;
    }
    let shift = 64 - SIGNIFICAND_BITS as i32 - 1;
    Fp {
        frac: fp.frac << shift,
        exp: fp.exp - shift,
    }
}

/// The midpoints between `w` and its neighbours, the upper one normalized and the lower one
/// brought to the same exponent. The lower neighbour is closer when `w` is a power of two.
fn boundaries(w: Fp) -> (Fp, Fp) {
    let mut upper = Fp {
        frac: (w.frac << 1) + 1,
        exp: w.exp - 1,
    };
    while upper.frac & (HIDDEN_BIT << 1) == 0 {
        upper.frac <<= 1;
        upper.exp -= 1;
    }
    let shift = 64 - SIGNIFICAND_BITS as i32 - 2;
    upper.frac <<= shift;
    upper.exp -= shift;
    let lower_shift = if w.frac == HIDDEN_BIT { 2 } else { 1 };
    let lower_exp = w.exp - lower_shift;
    let lower = Fp {
        frac: ((w.frac << lower_shift) - 1) << (lower_exp - upper.exp),
        exp: upper.exp,
    };
    (lower, upper)
}

/// The cached power that brings a number with binary exponent `exp` into the target window,
/// and its decimal exponent. The search starts from an estimate and steps until it fits,
/// which for some exponents picks one of two fitting powers: the digits depend on which.
fn cached_power(exp: i32) -> (Fp, i32) {
    const LOG10_2: f64 = 0.30102999566398114;
    let estimate = (-(exp + CACHED_POWERS.len() as i32) as f64 * LOG10_2) as i32;
    let mut index = (estimate - FIRST_POWER) / POWER_STEP;
    loop {
        let clamped = index.clamp(0, CACHED_POWERS.len() as i32 - 1);
        let (frac, power_exp) = CACHED_POWERS[clamped as usize];
        let scaled = exp + power_exp + 64;
        if scaled < MIN_TARGET_EXP && clamped < CACHED_POWERS.len() as i32 - 1 {
            index = clamped + 1;
        } else if scaled > MAX_TARGET_EXP && clamped > 0 {
            index = clamped - 1;
        } else {
            return (
                Fp {
                    frac,
                    exp: power_exp,
                },
                FIRST_POWER + clamped * POWER_STEP,
            );
        }
    }
}

/// The upper 64 bits of the 128-bit product, rounded half up.
fn multiply(a: Fp, b: Fp) -> Fp {
    let product = a.frac as u128 * b.frac as u128;
    let rounded = (product >> 64) as u64 + ((product >> 63) & 1) as u64;
    Fp {
        frac: rounded,
        exp: a.exp + b.exp + 64,
    }
}

const POWERS_OF_TEN: [u64; 20] = {
    let mut table = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Generates digits of `upper` until the rest is within the safe interval, then nudges the
/// last digit towards `w`.
fn generate(w: Fp, upper: Fp, lower: Fp, mut k: i32, out: &mut [u8; 18]) -> (usize, i32) {
    let distance = upper.frac.wrapping_sub(w.frac);
    let mut delta = upper.frac.wrapping_sub(lower.frac);
    let shift = (-upper.exp) as u32;
    let one = 1u64 << shift;
    let mut integral = upper.frac >> shift;
    let mut fraction = upper.frac & (one - 1);
    let mut len = 0;
    // The integral part, against 10^9 down to 10^0.
    for kappa in (0..10).rev() {
        let divisor = POWERS_OF_TEN[kappa];
        let digit = integral / divisor;
        push_digit(out, &mut len, digit);
        integral -= digit * divisor;
        let rest = (integral << shift).wrapping_add(fraction);
        if rest <= delta {
            k += kappa as i32;
            round_last(&mut out[..len], delta, rest, divisor << shift, distance);
            return (len, k);
        }
    }
    // The fractional part, one digit at a time.
    let mut unit: u64 = 10;
    let mut kappa: i32 = 0;
    loop {
        fraction = fraction.wrapping_mul(10);
        delta = delta.wrapping_mul(10);
        kappa -= 1;
        push_digit(out, &mut len, fraction >> shift);
        fraction &= one - 1;
        if fraction < delta {
            k += kappa;
            round_last(
                &mut out[..len],
                delta,
                fraction,
                one,
                distance.wrapping_mul(unit),
            );
            return (len, k);
        }
        unit = unit.wrapping_mul(10);
    }
}

/// Appends a digit, leaving out leading zeros.
fn push_digit(out: &mut [u8; 18], len: &mut usize, digit: u64) {
    if (digit != 0 || *len > 0) && *len < out.len() {
        out[*len] = b'0' + digit as u8;
        *len += 1;
    }
}

/// Lowers the last digit while that brings the number closer to the exact value and stays
/// inside the interval of numbers that read back as it.
fn round_last(digits: &mut [u8], delta: u64, mut rest: u64, ten_kappa: u64, distance: u64) {
    let Some(last) = digits.last_mut() else {
        return;
    };
    while rest < distance
        && delta.wrapping_sub(rest) >= ten_kappa
        && (rest.wrapping_add(ten_kappa) < distance
            || distance.wrapping_sub(rest) > rest.wrapping_add(ten_kappa).wrapping_sub(distance))
    {
        *last -= 1;
        rest = rest.wrapping_add(ten_kappa);
    }
}
