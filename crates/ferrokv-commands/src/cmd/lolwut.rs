//! LOLWUT: a piece of computer art and the server's version.
//!
//! Valkey draws a different picture for each major version; ferrokv draws its own: the
//! Mandelbrot set in ASCII, at any size. Clients only rely on the reply being text that names
//! the version, so the picture is ours while the argument grammar (`VERSION n`, then the
//! picture's own arguments) and its error texts are Valkey's.

use bytes::Bytes;

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx};
use crate::spec::{CommandSpec, flag};

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("lolwut", -1, "server")
    .flags(flag::READONLY | flag::FAST)
    .doc("5.0.0", "Displays computer art and the server version.", "")
    .handler(lolwut)];

const SYNTAX: &str = "Syntax error. Use: LOLWUT [columns rows]";

/// The picture's size when none is asked for, and the largest one drawn (a bigger request
/// is clamped, so the reply and the work stay bounded).
const DEFAULT_SIZE: (usize, usize) = (66, 22);
const MAX_SIDE: i64 = 1000;

/// Escape-time iterations per character: enough for the set's outline at terminal sizes.
const MAX_ITERATIONS: u32 = 48;

/// Darkest last: how long a point stays bounded picks its character.
const PALETTE: &[u8] = b" .,:;-=+*#%@";

/// `LOLWUT [VERSION version] [columns rows]`
fn lolwut(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut rest = &args[1..];
    if rest.first().is_some_and(|a| args::is(a, "version")) {
        let Some(version) = rest.get(1) else {
            return Err(CmdError::err(SYNTAX));
        };
        args::int(version)?;
        rest = &rest[2..];
    }
    let (columns, rows) = match rest {
        [] => DEFAULT_SIZE,
        [columns, rows] => (side(columns)?, side(rows)?),
        _ => return Err(CmdError::err(SYNTAX)),
    };
    let mut text = mandelbrot(columns, rows);
    let signature = if ctx.client.config.extended_redis_compatibility {
        format!("Redis ver. {}", crate::cmd::info::REDIS_VERSION)
    } else {
        format!("ferrokv ver. {}", env!("CARGO_PKG_VERSION"))
    };
    text.extend_from_slice(format!("The Mandelbrot set, as ASCII. {signature}\n").as_bytes());
    ctx.reply.verbatim("txt", &text);
    Ok(())
}

fn side(arg: &[u8]) -> Result<usize, CmdError> {
    Ok(args::int(arg)?.clamp(1, MAX_SIDE) as usize)
}

/// `rows` lines of `columns` characters showing the set over re in [-2.2, 0.8], im in
/// [-1.2, 1.2]; each line ends with a newline.
fn mandelbrot(columns: usize, rows: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity((columns + 1) * rows);
    for row in 0..rows {
        let im = 1.2 - 2.4 * (row as f64 + 0.5) / rows as f64;
        for column in 0..columns {
            let re = -2.2 + 3.0 * (column as f64 + 0.5) / columns as f64;
            out.push(shade(escape_time(re, im)));
        }
        out.push(b'\n');
    }
    out
}

/// Iterations of z = z² + c before |z| > 2, or MAX_ITERATIONS for points in the set.
fn escape_time(re: f64, im: f64) -> u32 {
    let (mut x, mut y) = (0.0f64, 0.0f64);
    for n in 0..MAX_ITERATIONS {
        if x * x + y * y > 4.0 {
            return n;
        }
        (x, y) = (x * x - y * y + re, 2.0 * x * y + im);
    }
    MAX_ITERATIONS
}

fn shade(iterations: u32) -> u8 {
    let last = PALETTE.len() - 1;
    PALETTE[(iterations as usize * last) / MAX_ITERATIONS as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picture_has_the_asked_size() {
        let text = mandelbrot(10, 4);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 5, "4 lines and what follows the last newline");
        assert!(lines[..4].iter().all(|l| l.len() == 10));
        assert!(lines[4].is_empty());
    }

    #[test]
    fn points_in_the_set_are_darkest_and_far_points_blank() {
        assert_eq!(shade(escape_time(0.0, 0.0)), b'@');
        assert_eq!(shade(escape_time(-1.0, 0.0)), b'@');
        assert_eq!(shade(escape_time(2.0, 2.0)), b' ');
    }
}
