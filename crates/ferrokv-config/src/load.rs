//! Reading a configuration: the file named on the command line, then `--directive value`
//! overrides, exactly as `valkey-server [file] [--directive value ...]` does.

use std::path::PathBuf;

use ferrokv_protocol::split_args::split_args;

use crate::directives::{Config, Directive};

/// A configuration error, printed the way Valkey prints its fatal config errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line_number: usize,
    pub line: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (Version {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
            env!("CARGO_PKG_VERSION"),
            self.line_number,
            self.line,
            self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

/// Parses `valkey-server`-style arguments: an optional config file path (or `-` for stdin is
/// not supported), then `--name value ...` overrides. Returns the config and its file path.
pub fn from_args(args: &[String]) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let mut text = String::new();
    let mut path = None;
    let mut rest = args;
    if let Some(first) = rest.first()
        && !first.starts_with("--")
    {
        let content = std::fs::read_to_string(first).map_err(|e| ConfigError {
            line_number: 0,
            line: first.clone(),
            reason: format!("Fatal error, can't open config file '{first}': {e}"),
        })?;
        text.push_str(&content);
        text.push('\n');
        path = Some(PathBuf::from(first));
        rest = &rest[1..];
    }
    // Overrides become extra config lines: `--port 7000 --save "" ""` → `port 7000`, `save "" ""`.
    let mut overrides = String::new();
    for arg in rest {
        if let Some(name) = arg.strip_prefix("--") {
            if !overrides.is_empty() {
                overrides.push('\n');
            }
            overrides.push_str(name);
        } else {
            overrides.push(' ');
            overrides.push_str(&quote(arg));
        }
    }
    text.push_str(&overrides);
    let config = parse(&text)?;
    Ok((config, path))
}

fn quote(arg: &str) -> String {
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Applies every line of a config text over the defaults.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let error = |reason: &str| ConfigError {
            line_number: i + 1,
            line: trimmed.to_string(),
            reason: reason.to_string(),
        };
        let words = split_args(trimmed.as_bytes())
            .map_err(|_| error("Unbalanced quotes in configuration line"))?;
        let words: Vec<String> = words
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w).into_owned())
            .collect();
        let Some((name, values)) = words.split_first() else {
            continue;
        };
        let Some(directive) = Directive::find(name) else {
            return Err(error("Bad directive or wrong number of arguments"));
        };
        (directive.set)(&mut config, &values.join(" ")).map_err(|e| error(&e))?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_after_the_file() {
        let (c, path) = from_args(&[
            "--port".into(),
            "7001".into(),
            "--maxclients".into(),
            "5".into(),
        ])
        .unwrap();
        assert_eq!((c.port, c.maxclients), (7001, 5));
        assert!(path.is_none());
    }

    #[test]
    fn unknown_directive_names_its_line() {
        let e = parse("port 1\n\nnot-a-directive 1\n").unwrap_err();
        assert_eq!(e.line_number, 3);
        assert_eq!(e.reason, "Bad directive or wrong number of arguments");
    }
}
