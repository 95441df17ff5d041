//! HyperLogLog: the byte format and algorithms of Valkey's `PF*` commands.
//!
//! A HyperLogLog is an ordinary string value, so it can be copied with GET/SET, dumped and
//! replicated as bytes: ferrokv must read and write exactly the bytes Valkey does.
//!
//! # Format
//!
//! A 16-byte header — `HYLL`, the encoding (0 dense, 1 sparse), three unused bytes, and the
//! cached cardinality as 8 little-endian bytes whose top bit marks the cache invalid — then
//! the 16384 six-bit registers (`P` = 14 index bits):
//!
//! - **dense**: 12288 bytes, register `i` at bit `6 i`, least significant bits first;
//! - **sparse**: run-length opcodes. `00xxxxxx`: 1..=64 zero registers (ZERO);
//!   `01xxxxxx yyyyyyyy`: 1..=16384 zero registers (XZERO, 14-bit length, big-endian);
//!   `1vvvvvll`: 1..=4 registers holding value 1..=32 (VAL).
//!
//! A sparse HLL turns dense when a register needs a value above 32 or when an update would
//! make it longer than `hll-sparse-max-bytes`. The way a sparse update splits and re-merges
//! opcodes is reproduced step for step, since GET must return the same bytes as Valkey.
//!
//! The cardinality comes from Otmar Ertl's improved estimator on the register histogram
//! ("New cardinality estimation algorithms for HyperLogLog sketches", 2017), evaluated in
//! the same order as Valkey so the rounded results are equal.
//!
//! Corrupted values never panic: reads past the end of a truncated opcode see a zero byte
//! (where Valkey reads its string terminator) and every loop is bounded by the value's length.

/// Index bits: 2^14 registers.
pub const P: u32 = 14;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Bits of hash left for the run of zeros, once the index bits are taken.
const Q: u32 = 64 - P;
/// Bits per dense register.
const REGISTER_BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << REGISTER_BITS) - 1;
/// Header bytes before the registers.
pub const HEADER_LEN: usize = 16;
/// Bytes of the dense registers.
pub const DENSE_REGISTERS_LEN: usize = (REGISTERS * REGISTER_BITS).div_ceil(8);
/// Length of a whole dense HLL.
pub const DENSE_LEN: usize = HEADER_LEN + DENSE_REGISTERS_LEN;

const MAGIC: &[u8; 4] = b"HYLL";
const ENCODING_AT: usize = 4;
const CARD_AT: usize = 8;
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
/// Top bit of the cardinality's last byte: the cached value is stale.
const CACHE_INVALID: u8 = 0x80;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;

/// Seed of the element hash, fixed by the format.
const HASH_SEED: u64 = 0xadc8_3b19;

/// 1 / (2 ln 2): the limit of the bias-correction constant for many registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Dense,
    Sparse,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Dense => "dense",
            Encoding::Sparse => "sparse",
        }
    }
}

/// The string is not a HyperLogLog at all (wrong magic, encoding or dense length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHll;

/// The header is valid but the registers are not (sparse runs that do not add up to 16384).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupted;

/// The empty HLL a PFADD or PFMERGE creates: sparse, one XZERO covering every register,
/// cached cardinality 0 (valid).
pub fn new_sparse() -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 2);
    bytes.extend_from_slice(MAGIC);
    bytes.push(ENCODING_SPARSE);
    bytes.extend_from_slice(&[0; HEADER_LEN - 5]);
    push_xzero(&mut bytes, REGISTERS);
    bytes
}

/// Checks the header the way Valkey does before any PF command touches a string.
pub fn validate(bytes: &[u8]) -> Result<Encoding, NotHll> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err(NotHll);
    }
    match bytes[ENCODING_AT] {
        ENCODING_DENSE if bytes.len() == DENSE_LEN => Ok(Encoding::Dense),
        ENCODING_SPARSE => Ok(Encoding::Sparse),
        _ => Err(NotHll),
    }
}

/// The cached cardinality, if the cache is valid. Call on a validated HLL.
pub fn cached_cardinality(hll: &[u8]) -> Option<u64> {
    let card: [u8; 8] = hll.get(CARD_AT..HEADER_LEN)?.try_into().ok()?;
    (card[7] & CACHE_INVALID == 0).then(|| u64::from_le_bytes(card))
}

pub fn set_cached_cardinality(hll: &mut [u8], card: u64) {
    if let Some(slot) = hll.get_mut(CARD_AT..HEADER_LEN) {
        slot.copy_from_slice(&card.to_le_bytes());
    }
}

pub fn invalidate_cache(hll: &mut [u8]) {
    if let Some(b) = hll.get_mut(HEADER_LEN - 1) {
        *b |= CACHE_INVALID;
    }
}

// ---- hashing ----

/// MurmurHash64A (Austin Appleby), blocks read little-endian, as Valkey computes it.
pub fn murmur_hash64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes([
            block[0], block[1], block[2], block[3], block[4], block[5], block[6], block[7],
        ]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the value it proposes: the position of the first
/// set bit of the remaining hash bits, counting from 1 (at most `Q + 1` = 51).
pub fn register_for(element: &[u8]) -> (usize, u8) {
    let hash = murmur_hash64a(element, HASH_SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit bounds the count when every remaining bit is zero.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---- dense registers ----

/// Register `index` of dense register bytes. A register may straddle two bytes; the byte past
/// the last register reads as zero.
pub fn dense_get(registers: &[u8], index: usize) -> u8 {
    let bit = index * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let lo = registers.get(byte).copied().unwrap_or(0) as u16;
    let hi = registers.get(byte + 1).copied().unwrap_or(0) as u16;
    (((lo | (hi << 8)) >> shift) as u8) & REGISTER_MAX
}

pub fn dense_set(registers: &mut [u8], index: usize, value: u8) {
    let bit = index * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let mask = (REGISTER_MAX as u16) << shift;
    let bits = ((value & REGISTER_MAX) as u16) << shift;
    if let Some(b) = registers.get_mut(byte) {
        *b = (*b & !(mask as u8)) | bits as u8;
    }
    if let Some(b) = registers.get_mut(byte + 1) {
        *b = (*b & !((mask >> 8) as u8)) | (bits >> 8) as u8;
    }
}

/// Raises a dense register to `count`; whether it changed.
fn dense_raise(registers: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(registers, index) {
        dense_set(registers, index, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes ----

fn is_zero(op: u8) -> bool {
    op & 0xc0 == 0x00
}

fn is_xzero(op: u8) -> bool {
    op & 0xc0 == 0x40
}

fn is_val(op: u8) -> bool {
    op & 0x80 != 0
}

fn zero_len(op: u8) -> usize {
    (op & 0x3f) as usize + 1
}

fn xzero_len(op: u8, next: u8) -> usize {
    ((((op & 0x3f) as usize) << 8) | next as usize) + 1
}

fn val_value(op: u8) -> u8 {
    ((op >> 2) & 0x1f) + 1
}

fn val_len(op: u8) -> usize {
    (op & 0x03) as usize + 1
}

fn val_op(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

fn push_zero(out: &mut Vec<u8>, len: usize) {
    out.push((len - 1) as u8);
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let n = len - 1;
    out.push(0x40 | (n >> 8) as u8);
    out.push((n & 0xff) as u8);
}

/// A run of `len` zero registers in the shortest opcode.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        push_zero(out, len);
    }
}

/// One decoded sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// `len` zero registers, in a one-byte (ZERO) or two-byte (XZERO) opcode.
    Zeros { len: usize, extended: bool },
    /// `len` registers holding `value`.
    Val { value: u8, len: usize },
}

impl Opcode {
    fn bytes(self) -> usize {
        match self {
            Opcode::Zeros { extended: true, .. } => 2,
            _ => 1,
        }
    }

    fn len(self) -> usize {
        match self {
            Opcode::Zeros { len, .. } | Opcode::Val { len, .. } => len,
        }
    }
}

/// The opcode at `at` in `hll`; a truncated XZERO reads its missing byte as zero.
fn opcode_at(hll: &[u8], at: usize) -> Opcode {
    let op = hll[at];
    if is_zero(op) {
        Opcode::Zeros {
            len: zero_len(op),
            extended: false,
        }
    } else if is_xzero(op) {
        Opcode::Zeros {
            len: xzero_len(op, hll.get(at + 1).copied().unwrap_or(0)),
            extended: true,
        }
    } else {
        Opcode::Val {
            value: val_value(op),
            len: val_len(op),
        }
    }
}

/// Every opcode of a sparse HLL, in order.
pub fn sparse_opcodes(hll: &[u8]) -> impl Iterator<Item = Opcode> + '_ {
    let mut at = HEADER_LEN;
    std::iter::from_fn(move || {
        if at >= hll.len() {
            return None;
        }
        let op = opcode_at(hll, at);
        at += op.bytes();
        Some(op)
    })
}

/// Sets register `index` of a sparse HLL to `count` if that raises it, rewriting the
/// opcode that covers it; the HLL turns dense when needed. Whether a register changed.
fn sparse_raise(
    hll: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max_bytes: u64,
) -> Result<bool, Corrupted> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote_and_raise(hll, index, count);
    }
    // Find the opcode covering `index`, and the one before it (where merging restarts).
    let mut at = HEADER_LEN;
    let mut first = 0usize;
    let mut prev = None;
    let mut found = None;
    while at < hll.len() {
        let op = opcode_at(hll, at);
        if index < first + op.len() {
            found = Some(op);
            break;
        }
        prev = Some(at);
        at += op.bytes();
        first += op.len();
    }
    let Some(op) = found else {
        return Err(Corrupted);
    };
    let last = first + op.len() - 1;

    match op {
        Opcode::Val { value, .. } if value >= count => return Ok(false),
        Opcode::Val { len: 1, .. } | Opcode::Zeros { len: 1, .. } => {
            hll[at] = val_op(count, 1);
        }
        _ => {
            // Split the run into up to three opcodes: before, the register, after.
            let mut seq = Vec::with_capacity(5);
            match op {
                Opcode::Zeros { .. } => {
                    if index != first {
                        push_zeros(&mut seq, index - first);
                    }
                    seq.push(val_op(count, 1));
                    if index != last {
                        push_zeros(&mut seq, last - index);
                    }
                }
                Opcode::Val { value, .. } => {
                    if index != first {
                        seq.push(val_op(value, index - first));
                    }
                    seq.push(val_op(count, 1));
                    if index != last {
                        seq.push(val_op(value, last - index));
                    }
                }
            }
            let old_len = hll.len();
            let new_len = (old_len + seq.len())
                .checked_sub(op.bytes())
                .ok_or(Corrupted)?;
            if new_len > old_len && new_len as u64 > sparse_max_bytes {
                return promote_and_raise(hll, index, count);
            }
            // Replace the opcode with the sequence. A truncated XZERO at the very end
            // shortens the value by its missing byte, as Valkey's length arithmetic does.
            let tail = hll.split_off((at + op.bytes()).min(old_len));
            hll.truncate(at);
            hll.extend_from_slice(&seq);
            hll.extend_from_slice(&tail);
            hll.truncate(new_len);
        }
    }
    merge_adjacent_vals(hll, prev.unwrap_or(HEADER_LEN));
    invalidate_cache(hll);
    Ok(true)
}

/// Joins neighbouring VAL opcodes of equal value whose lengths fit one opcode, looking at up
/// to five opcodes from `at` (Valkey's bounded scan, so the bytes come out the same).
fn merge_adjacent_vals(hll: &mut Vec<u8>, mut at: usize) {
    let mut budget = 5;
    while at < hll.len() && budget > 0 {
        budget -= 1;
        let op = hll[at];
        if is_xzero(op) {
            at += 2;
            continue;
        }
        if is_zero(op) {
            at += 1;
            continue;
        }
        if let Some(&next) = hll.get(at + 1)
            && is_val(next)
            && val_value(op) == val_value(next)
        {
            let len = val_len(op) + val_len(next);
            if len <= SPARSE_VAL_MAX_LEN {
                hll[at + 1] = val_op(val_value(op), len);
                hll.remove(at);
                // Retry here: the merged opcode may merge with the next one too.
                continue;
            }
        }
        at += 1;
    }
}

fn promote_and_raise(hll: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupted> {
    to_dense(hll)?;
    Ok(dense_raise(&mut hll[HEADER_LEN..], index, count))
}

/// Rewrites a sparse HLL as dense (header, cache included, kept); a dense one is left as is.
/// Whether it converted.
pub fn to_dense(hll: &mut Vec<u8>) -> Result<bool, Corrupted> {
    if hll.get(ENCODING_AT) == Some(&ENCODING_DENSE) {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_LEN];
    dense[..HEADER_LEN].copy_from_slice(&hll[..HEADER_LEN]);
    dense[ENCODING_AT] = ENCODING_DENSE;
    let registers = &mut dense[HEADER_LEN..];
    let mut index = 0usize;
    for op in sparse_opcodes(hll) {
        match op {
            Opcode::Zeros { len, .. } => index += len,
            Opcode::Val { value, len } => {
                if index + len > REGISTERS {
                    return Err(Corrupted);
                }
                for i in index..index + len {
                    dense_set(registers, i, value);
                }
                index += len;
            }
        }
    }
    if index != REGISTERS {
        return Err(Corrupted);
    }
    *hll = dense;
    Ok(true)
}

// ---- adding, merging, counting ----

/// PFADD of one element to a validated HLL; whether a register changed.
pub fn add(hll: &mut Vec<u8>, element: &[u8], sparse_max_bytes: u64) -> Result<bool, Corrupted> {
    let (index, count) = register_for(element);
    match validate(hll) {
        Ok(Encoding::Dense) => Ok(dense_raise(&mut hll[HEADER_LEN..], index, count)),
        Ok(Encoding::Sparse) => sparse_raise(hll, index, count, sparse_max_bytes),
        Err(NotHll) => Err(Corrupted),
    }
}

/// Raises each of `max` (one byte per register) to the registers of a validated HLL.
pub fn merge_into(max: &mut [u8; REGISTERS], hll: &[u8]) -> Result<(), Corrupted> {
    if hll.get(ENCODING_AT) == Some(&ENCODING_DENSE) {
        let registers = &hll[HEADER_LEN..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(registers, i));
        }
        return Ok(());
    }
    let mut index = 0usize;
    for op in sparse_opcodes(hll) {
        match op {
            Opcode::Zeros { len, .. } => index += len,
            Opcode::Val { value, len } => {
                if index + len > REGISTERS {
                    return Err(Corrupted);
                }
                for m in &mut max[index..index + len] {
                    *m = (*m).max(value);
                }
                index += len;
            }
        }
    }
    if index == REGISTERS {
        Ok(())
    } else {
        Err(Corrupted)
    }
}

/// Writes merged registers into a validated HLL (PFMERGE's destination, which was one of the
/// inputs): as dense bytes when `dense`, else register by register, which keeps it sparse
/// while it fits.
pub fn store_registers(
    hll: &mut Vec<u8>,
    max: &[u8; REGISTERS],
    dense: bool,
    sparse_max_bytes: u64,
) -> Result<(), Corrupted> {
    if dense {
        to_dense(hll)?;
        let registers = &mut hll[HEADER_LEN..];
        for (i, &m) in max.iter().enumerate() {
            dense_set(registers, i, m);
        }
    } else {
        for (i, &m) in max.iter().enumerate() {
            if m == 0 {
                continue;
            }
            if hll[ENCODING_AT] == ENCODING_DENSE {
                dense_raise(&mut hll[HEADER_LEN..], i, m);
            } else {
                // As in Valkey, a failure here (only possible on a value that merged
                // cleanly, so never in practice) is not reported.
                let _ = sparse_raise(hll, i, m, sparse_max_bytes);
            }
        }
    }
    invalidate_cache(hll);
    Ok(())
}

/// The register histogram of a validated HLL: how many registers hold each value (registers
/// are six bits, so values reach 63 in a tampered dense HLL). Sparse runs that do not cover
/// exactly 16384 registers are corrupted.
fn histogram(hll: &[u8]) -> Result<[u32; 64], Corrupted> {
    let mut histo = [0u32; 64];
    if hll.get(ENCODING_AT) == Some(&ENCODING_DENSE) {
        let registers = &hll[HEADER_LEN..];
        for i in 0..REGISTERS {
            histo[dense_get(registers, i) as usize] += 1;
        }
        return Ok(histo);
    }
    let mut covered = 0usize;
    for op in sparse_opcodes(hll) {
        match op {
            Opcode::Zeros { len, .. } => histo[0] = histo[0].saturating_add(len as u32),
            Opcode::Val { value, len } => {
                histo[value as usize] = histo[value as usize].saturating_add(len as u32)
            }
        }
        covered = covered.saturating_add(op.len());
    }
    if covered == REGISTERS {
        Ok(histo)
    } else {
        Err(Corrupted)
    }
}

/// The estimated cardinality of a validated HLL, ignoring the cache.
pub fn count(hll: &[u8]) -> Result<u64, Corrupted> {
    Ok(estimate(&histogram(hll)?))
}

/// The estimated cardinality of registers held one per byte (PFCOUNT of several keys).
pub fn count_registers(registers: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in registers {
        histo[(r & 63) as usize] += 1;
    }
    estimate(&histo)
}

/// Ertl's estimator: `alpha_inf m^2 / (m sigma(C0/m) + sum_k C_k 2^-k + m tau(1 - C_{q+1}/m) 2^-q)`,
/// with the sum accumulated from the top (Horner's scheme) in Valkey's order.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - histo[q + 1] as f64) / m);
    for j in (1..=q).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    let e = ALPHA_INF * m * m / z;
    // Rounded half away from zero; an empty HLL gives z = inf and so 0.
    e.round() as u64
}

/// sigma(x) = x + sum_k x^(2^k) 2^(k-1), summed until it stops changing.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

/// tau(x) = (1 - x - sum_k (1 - x^(2^-k))^2 2^-k) / 3, summed until it stops changing.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

// ---- introspection (PFDEBUG) ----

/// Every register of a validated dense HLL.
pub fn dense_registers(hll: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let registers = &hll[HEADER_LEN.min(hll.len())..];
    (0..REGISTERS).map(move |i| dense_get(registers, i))
}

/// The opcodes of a sparse HLL as PFDEBUG DECODE spells them: `z:LEN`, `Z:LEN`, `v:VALUE,LEN`.
pub fn decode_sparse(hll: &[u8]) -> String {
    let mut out = String::new();
    for op in sparse_opcodes(hll) {
        if !out.is_empty() {
            out.push(' ');
        }
        match op {
            Opcode::Zeros {
                len,
                extended: false,
            } => out.push_str(&format!("z:{len}")),
            Opcode::Zeros {
                len,
                extended: true,
            } => out.push_str(&format!("Z:{len}")),
            Opcode::Val { value, len } => out.push_str(&format!("v:{value},{len}")),
        }
    }
    out
}

// ---- self test (PFSELFTEST) ----

/// Checks the implementation against itself: dense registers read back what was written,
/// sparse and dense HLLs fed the same elements agree, and the estimate stays within the
/// expected error. A description of the first failure.
pub fn self_test() -> Result<(), String> {
    // Registers: random values written to every register read back, neighbours untouched.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut registers = vec![0u8; DENSE_REGISTERS_LEN];
    for _round in 0..10 {
        let values: Vec<u8> = (0..REGISTERS)
            .map(|_| (next() & REGISTER_MAX as u64) as u8)
            .collect();
        for (i, &v) in values.iter().enumerate() {
            dense_set(&mut registers, i, v);
        }
        for (i, &v) in values.iter().enumerate() {
            if dense_get(&registers, i) != v {
                return Err(format!("TESTFAILED Register error at {i}"));
            }
        }
    }
    // Estimates: a sparse HLL (promoted to dense on the way) and a dense one see the same
    // elements.
    let mut sparse = new_sparse();
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|_| "TESTFAILED dense conversion".to_string())?;
    let relative_error = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint = 1u64;
    for n in 1..=100_000u64 {
        let element = n.to_le_bytes();
        let changed_sparse =
            add(&mut sparse, &element, 3000).map_err(|_| "TESTFAILED sparse add".to_string())?;
        let changed_dense =
            add(&mut dense, &element, 3000).map_err(|_| "TESTFAILED dense add".to_string())?;
        if changed_sparse != changed_dense {
            return Err(format!("TESTFAILED sparse/dense update mismatch at {n}"));
        }
        if n == checkpoint {
            checkpoint *= 10;
            let (s, d) = (count(&sparse), count(&dense));
            if s != d {
                return Err(format!(
                    "TESTFAILED sparse/dense count mismatch at {n}: {s:?} {d:?}"
                ));
            }
            let estimate = d.unwrap_or(0) as f64;
            // Small cardinalities are almost exact; larger ones within 5 standard errors.
            let allowed = if n < 10 {
                1.0
            } else {
                n as f64 * relative_error * 5.0
            };
            if (estimate - n as f64).abs() > allowed {
                return Err(format!(
                    "TESTFAILED too big error. card:{n} abserr:{}",
                    (estimate - n as f64).abs()
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hll_bytes_match_valkey() {
        let hll = new_sparse();
        assert_eq!(
            hll,
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        );
        assert_eq!(validate(&hll), Ok(Encoding::Sparse));
        assert_eq!(count(&hll), Ok(0));
        assert_eq!(decode_sparse(&hll), "Z:16384");
    }

    #[test]
    fn three_elements_give_valkeys_bytes() {
        // PFADD h a b c on valkey-server 9.1.2, then GET h.
        let mut hll = new_sparse();
        for e in [&b"a"[..], b"b", b"c"] {
            assert_eq!(add(&mut hll, e, 3000), Ok(true));
        }
        assert_eq!(
            &hll[HEADER_LEN..],
            b"\x60\xf3\x80\x50\xb1\x84\x4b\xfb\x80\x42\x5a"
        );
        assert_eq!(
            decode_sparse(&hll),
            "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
        );
        assert_eq!(count(&hll), Ok(3));
        assert_eq!(hll[15] & CACHE_INVALID, CACHE_INVALID);
    }

    #[test]
    fn murmur_tail_lengths_are_stable() {
        // Every tail length (0..8) and a multi-block input hash differently.
        let data = b"0123456789abcdefXYZ";
        let hashes: Vec<u64> = (0..data.len())
            .map(|n| murmur_hash64a(&data[..n], HASH_SEED))
            .collect();
        let mut unique = hashes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), hashes.len());
    }

    #[test]
    fn dense_registers_round_trip_at_every_alignment() {
        let mut regs = vec![0u8; DENSE_REGISTERS_LEN];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8, "register {i}");
        }
        dense_set(&mut regs, REGISTERS - 1, 63);
        assert_eq!(
            dense_get(&regs, REGISTERS - 2),
            ((REGISTERS - 2) % 64) as u8
        );
    }

    #[test]
    fn sparse_and_dense_agree_and_promotion_happens() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        assert_eq!(to_dense(&mut dense), Ok(true));
        assert_eq!(dense.len(), DENSE_LEN);
        let mut promoted_at = None;
        for n in 0..5000u32 {
            let e = format!("element:{n}");
            let a = add(&mut sparse, e.as_bytes(), 3000).unwrap();
            let b = add(&mut dense, e.as_bytes(), 3000).unwrap();
            assert_eq!(a, b, "element {n}");
            if promoted_at.is_none() && validate(&sparse) == Ok(Encoding::Dense) {
                promoted_at = Some(n);
            }
            if validate(&sparse) == Ok(Encoding::Sparse) {
                assert!(sparse.len() <= 3000);
            }
        }
        assert!(promoted_at.is_some());
        assert_eq!(&sparse[HEADER_LEN..], &dense[HEADER_LEN..]);
        let mut max = [0u8; REGISTERS];
        merge_into(&mut max, &dense).unwrap();
        assert_eq!(count_registers(&max), count(&dense).unwrap());
        let c = count(&dense).unwrap() as f64;
        assert!((c - 5000.0).abs() < 5000.0 * 0.05, "{c}");
    }

    #[test]
    fn a_value_above_32_turns_a_sparse_hll_dense() {
        let mut hll = new_sparse();
        assert_eq!(sparse_raise(&mut hll, 100, 32, 3000), Ok(true));
        assert_eq!(validate(&hll), Ok(Encoding::Sparse));
        assert_eq!(sparse_raise(&mut hll, 100, 32, 3000), Ok(false));
        assert_eq!(sparse_raise(&mut hll, 7, 33, 3000), Ok(true));
        assert_eq!(validate(&hll), Ok(Encoding::Dense));
        assert_eq!(dense_get(&hll[HEADER_LEN..], 7), 33);
        assert_eq!(dense_get(&hll[HEADER_LEN..], 100), 32);
        assert_eq!(dense_get(&hll[HEADER_LEN..], 101), 0);
    }

    #[test]
    fn neighbouring_equal_values_merge_into_one_opcode() {
        let mut hll = new_sparse();
        for index in [10, 12, 11, 13] {
            assert_eq!(sparse_raise(&mut hll, index, 3, 3000), Ok(true));
        }
        assert_eq!(decode_sparse(&hll), "z:10 v:3,4 Z:16370");
        // A fifth register of the same value starts a new run: four is the most one holds.
        assert_eq!(sparse_raise(&mut hll, 14, 3, 3000), Ok(true));
        assert_eq!(decode_sparse(&hll), "z:10 v:3,4 v:3,1 Z:16369");
        // Raising the middle of a run splits it in three; the right part then merges on.
        assert_eq!(sparse_raise(&mut hll, 11, 5, 3000), Ok(true));
        assert_eq!(decode_sparse(&hll), "z:10 v:3,1 v:5,1 v:3,3 Z:16369");
    }

    #[test]
    fn cache_round_trip() {
        let mut hll = new_sparse();
        assert_eq!(cached_cardinality(&hll), Some(0));
        invalidate_cache(&mut hll);
        assert_eq!(cached_cardinality(&hll), None);
        set_cached_cardinality(&mut hll, 1234);
        assert_eq!(cached_cardinality(&hll), Some(1234));
    }

    #[test]
    fn validation_rejects_non_hlls() {
        assert_eq!(validate(b"hello"), Err(NotHll));
        assert_eq!(
            validate(b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"),
            Err(NotHll)
        );
        assert_eq!(
            validate(b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0\x7f\xff"),
            Err(NotHll)
        );
        assert_eq!(
            validate(b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0"),
            Ok(Encoding::Sparse)
        );
    }

    #[test]
    fn corrupted_sparse_values_are_reported_not_panicked_on() {
        // Header only: nothing covers any register.
        let mut hll = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
        assert_eq!(count(&hll), Err(Corrupted));
        assert_eq!(add(&mut hll, b"a", 3000), Err(Corrupted));
        // A truncated XZERO reads its missing byte as zero: 0x3f00 + 1 registers.
        let hll = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f".to_vec();
        assert_eq!(decode_sparse(&hll), "Z:16129");
        assert_eq!(count(&hll), Err(Corrupted));
    }

    #[test]
    fn fuzzed_values_never_panic() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            // Start from a real HLL (sparse or dense) and damage some bytes, or make noise.
            let mut hll = new_sparse();
            for n in 0..(next() % 400) {
                add(&mut hll, &n.to_le_bytes(), 3000).unwrap();
            }
            let flips = 1 + next() % 8;
            for _ in 0..flips {
                let at = HEADER_LEN + (next() as usize) % (hll.len() - HEADER_LEN + 1);
                if at < hll.len() {
                    hll[at] = next() as u8;
                }
            }
            if round % 3 == 0 {
                let cut = HEADER_LEN + (next() as usize) % (hll.len() - HEADER_LEN + 1);
                hll.truncate(cut);
            }
            if validate(&hll).is_err() {
                continue;
            }
            let _ = count(&hll);
            let _ = decode_sparse(&hll);
            let mut max = [0u8; REGISTERS];
            let _ = merge_into(&mut max, &hll);
            let mut copy = hll.clone();
            let _ = to_dense(&mut copy);
            for n in 0..50u32 {
                if add(&mut hll, &n.to_be_bytes(), 3000).is_err() {
                    break;
                }
            }
            let _ = store_registers(&mut hll, &max, round % 2 == 0, 3000);
        }
    }

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(), Ok(()));
    }
}
