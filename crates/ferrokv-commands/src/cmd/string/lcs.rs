//! LCS: the longest common subsequence of two strings, with Valkey's reply shapes and the
//! order in which it reports matching ranges (from the end of the strings backwards).

use bytes::Bytes;
use ferrokv_protocol::Reply;

use super::string_of;
use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]`
pub fn lcs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (a, b) = {
        let mut locked = ctx.lock(&[&args[1], &args[2]]);
        let mut fetch = |key: &[u8]| -> Result<Vec<u8>, CmdError> {
            match ctx.read(&mut locked, key) {
                None => Ok(Vec::new()),
                Some(e) => string_of(&e.value)
                    .map(|s| s.to_bytes().into_owned())
                    .map_err(|_| CmdError::err("The specified keys must contain string values")),
            }
        };
        let a = fetch(&args[1]);
        let b = fetch(&args[2]);
        (a?, b?)
    };
    let mut want_len = false;
    let mut want_idx = false;
    let mut with_match_len = false;
    let mut min_match_len: u64 = 0;
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        if args::is(opt, "idx") {
            want_idx = true;
        } else if args::is(opt, "len") {
            want_len = true;
        } else if args::is(opt, "withmatchlen") {
            with_match_len = true;
        } else if args::is(opt, "minmatchlen") && i + 1 < args.len() {
            min_match_len = args::int(&args[i + 1])?.max(0) as u64;
            i += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    if want_len && want_idx {
        return Err(CmdError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    // The table of prefix LCS lengths is (|a|+1) x (|b|+1) u32 cells; Valkey refuses when
    // that transient memory would exceed proto-max-bulk-len.
    let cells = (a.len() as u128 + 1) * (b.len() as u128 + 1);
    if cells * 4 > ctx.client.config.proto_max_bulk_len.max(0) as u128 {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let table = Table::build(&a, &b);
    if want_len {
        ctx.reply.int(table.total() as i64);
        return Ok(());
    }
    let walk = table.walk(&a, &b);
    if want_idx {
        reply_ranges(ctx.reply, &walk.ranges, min_match_len, with_match_len);
        ctx.reply.bulk(b"len");
        ctx.reply.int(table.total() as i64);
    } else {
        ctx.reply.bulk(&walk.common);
    }
    Ok(())
}

/// One matching run: `a[a_start..=a_end]` equals `b[b_start..=b_end]`.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    a_start: usize,
    a_end: usize,
    b_start: usize,
    b_end: usize,
}

impl Range {
    fn len(&self) -> u64 {
        (self.a_end - self.a_start + 1) as u64
    }
}

fn reply_ranges(reply: &mut Reply, ranges: &[Range], min_len: u64, with_len: bool) {
    reply.map_len(2);
    reply.bulk(b"matches");
    let shown: Vec<&Range> = ranges
        .iter()
        .filter(|r| min_len == 0 || r.len() >= min_len)
        .collect();
    reply.array_len(shown.len());
    for r in shown {
        reply.array_len(if with_len { 3 } else { 2 });
        reply.array_len(2);
        reply.int(r.a_start as i64);
        reply.int(r.a_end as i64);
        reply.array_len(2);
        reply.int(r.b_start as i64);
        reply.int(r.b_end as i64);
        if with_len {
            reply.int(r.len() as i64);
        }
    }
}

/// Prefix LCS lengths: `cell(i, j)` = LCS of `a[..i]` and `b[..j]`.
struct Table {
    cells: Vec<u32>,
    width: usize,
    a_len: usize,
    b_len: usize,
}

struct Walk {
    common: Vec<u8>,
    ranges: Vec<Range>,
}

impl Table {
    fn build(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        Table {
            cells,
            width,
            a_len: a.len(),
            b_len: b.len(),
        }
    }

    fn cell(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    fn total(&self) -> u32 {
        self.cell(self.a_len, self.b_len)
    }

    /// Walks back from the end, collecting the common subsequence and the runs of matches,
    /// in the order Valkey reports them (last run first). On a tie between skipping a byte
    /// of `a` or of `b`, Valkey skips the byte of `b`.
    fn walk(&self, a: &[u8], b: &[u8]) -> Walk {
        let mut common = vec![0u8; self.total() as usize];
        let mut remaining = common.len();
        let mut ranges = Vec::new();
        let mut current: Option<Range> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let mut close = false;
            if a[i - 1] == b[j - 1] {
                remaining -= 1;
                common[remaining] = a[i - 1];
                match current.as_mut() {
                    None => {
                        current = Some(Range {
                            a_start: i - 1,
                            a_end: i - 1,
                            b_start: j - 1,
                            b_end: j - 1,
                        })
                    }
                    // A match right after a match extends the run backwards.
                    Some(r) => {
                        r.a_start -= 1;
                        r.b_start -= 1;
                    }
                }
                if current
                    .as_ref()
                    .is_some_and(|r| r.a_start == 0 || r.b_start == 0)
                {
                    close = true;
                }
                i -= 1;
                j -= 1;
            } else {
                if self.cell(i - 1, j) > self.cell(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                close = current.is_some();
            }
            if close && let Some(r) = current.take() {
                ranges.push(r);
            }
        }
        Walk { common, ranges }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_example() {
        let (a, b) = (b"ohmytext".as_slice(), b"mynewtext".as_slice());
        let table = Table::build(a, b);
        assert_eq!(table.total(), 6);
        let walk = table.walk(a, b);
        assert_eq!(walk.common, b"mytext");
        assert_eq!(
            walk.ranges,
            vec![
                Range {
                    a_start: 4,
                    a_end: 7,
                    b_start: 5,
                    b_end: 8
                },
                Range {
                    a_start: 2,
                    a_end: 3,
                    b_start: 0,
                    b_end: 1
                },
            ]
        );
    }

    #[test]
    fn empty_inputs() {
        let table = Table::build(b"", b"abc");
        assert_eq!(table.total(), 0);
        let walk = table.walk(b"", b"abc");
        assert!(walk.common.is_empty() && walk.ranges.is_empty());
    }
}
