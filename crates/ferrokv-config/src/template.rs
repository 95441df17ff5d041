//! The shipped `ferrokv.conf`, generated from the directive table so that it always lists
//! every directive with its default and description.
//!
//! `cargo test -p ferrokv-config` checks the file at the repository root against this
//! output; run it with `FERROKV_WRITE_CONF=1` to regenerate the file after changing the table.

use crate::directives::{DIRECTIVES, Directive, HIDDEN, IMMUTABLE, MULTI_ARG, PENDING, PROTECTED};
use crate::values::repr;

const HEADER: &str = "\
# ferrokv configuration file.
#
# Start the server with it:   ferrokv-server /path/to/ferrokv.conf [--directive value ...]
# Arguments given as --directive value are applied after the file, in order.
#
# The syntax is Valkey's: one directive per line, arguments separated by spaces, \"double\"
# or 'single' quotes around arguments with spaces, # starts a comment line. Sizes take units:
# 1k = 1000 bytes, 1kb = 1024 bytes (likewise m/mb and g/gb), in any case.
# `include /path/to/other.conf` reads another file at that point (a later line wins).
# An existing valkey.conf or redis.conf works unchanged: every directive of Valkey 9.1 is
# accepted, with Valkey's names, aliases (slaveof, masterauth, slave-read-only, ...) and checks.
#
# Every directive below is set to its default. Marks in the description:
#   [not implemented yet]  accepted and checked, but ferrokv does not act on it yet; the
#                          server logs a warning at start-up when it is set to another value.
#   [immutable]            CONFIG SET cannot change it; restart to change it.
#   [protected]            CONFIG SET changes it only when enable-protected-configs allows.
#   [hidden]               CONFIG GET lists it only when asked for by its exact name.
";

/// The whole shipped config file.
pub fn shipped_conf() -> String {
    let mut out = String::from(HEADER);
    for directive in DIRECTIVES {
        out.push('\n');
        out.push_str(&format!("# {}{}\n", directive.doc, marks(directive)));
        if !directive.aliases.is_empty() {
            out.push_str(&format!(
                "# Also accepted as: {}.\n",
                directive.aliases.join(", ")
            ));
        }
        out.push_str(&line(directive));
        out.push('\n');
    }
    out
}

fn marks(d: &Directive) -> String {
    let mut marks = String::new();
    for (flag, text) in [
        (PENDING, " [not implemented yet]"),
        (IMMUTABLE, " [immutable]"),
        (PROTECTED, " [protected]"),
        (HIDDEN, " [hidden]"),
    ] {
        if d.has(flag) {
            marks.push_str(text);
        }
    }
    marks
}

/// The directive's line at its default value.
fn line(d: &Directive) -> String {
    let value = d.default;
    match d.name {
        // No primary by default; the directive takes a host and a port.
        "replicaof" => return "# replicaof <host> <port>".into(),
        // The default is the directory the server starts in.
        "dir" => return "dir ./".into(),
        _ => {}
    }
    let needs_quotes = value.is_empty()
        || value.bytes().any(|b| {
            matches!(b, b'"' | b'\'' | b'\\' | b'#') || !b.is_ascii_graphic() && b != b' '
        })
        || (value.contains(' ') && !d.has(MULTI_ARG));
    if needs_quotes {
        format!("{} {}", d.name, repr(value))
    } else {
        format!("{} {value}", d.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directives::Config;

    fn repo_conf_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ferrokv.conf")
    }

    #[test]
    fn shipped_conf_is_up_to_date() {
        let generated = shipped_conf();
        let path = repo_conf_path();
        if std::env::var_os("FERROKV_WRITE_CONF").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let shipped = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == generated,
            "ferrokv.conf is out of date: run FERROKV_WRITE_CONF=1 cargo test -p ferrokv-config"
        );
    }

    #[test]
    fn shipped_conf_loads_to_the_defaults() {
        let config = crate::load::parse(&shipped_conf()).unwrap();
        let defaults = Config::default();
        for d in DIRECTIVES {
            assert_eq!(d.get(&config), d.get(&defaults), "{}", d.name);
        }
    }
}
