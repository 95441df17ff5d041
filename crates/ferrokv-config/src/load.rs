//! Reading a configuration: the file named on the command line, then `--directive value`
//! overrides, exactly as `valkey-server [file] [--directive value ...]` does.
//!
//! The overrides are turned into config lines appended after the file (one line per
//! `--name`, values quoted), so they follow the same rules and report errors the same way.

use std::path::{Path, PathBuf};

use ferrokv_protocol::split_args::split_args;
use ferrokv_store::glob::glob_match;

use crate::directives::{self, APPEND, Config, Directive, MULTI_ARG, PENDING};
use crate::values::repr;

/// The Valkey version named in fatal config errors: the one whose behaviour ferrokv
/// reproduces (INFO's `valkey_version`), so the message is Valkey's byte for byte.
pub const VALKEY_VERSION: &str = "9.1.2";

/// A configuration error, printed the way Valkey prints its fatal config errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A bad line: Valkey's "FATAL CONFIG FILE ERROR" block.
    Line {
        line_number: usize,
        line: String,
        reason: String,
    },
    /// Anything else that stops start-up (a file that cannot be read).
    Fatal(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Line {
                line_number,
                line,
                reason,
            } => write!(
                f,
                "\n*** FATAL CONFIG FILE ERROR (Version {VALKEY_VERSION}) ***\nReading the configuration file, at line {line_number}\n>>> '{line}'\n{reason}",
            ),
            ConfigError::Fatal(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Directives Valkey still accepts in a config file but ignores (renamed or retired options).
const IGNORED: &[&str] = &[
    "dynamic-hz",
    "events-per-io-thread",
    "io-threads-do-reads",
    "list-max-ziplist-entries",
    "list-max-ziplist-value",
    "lua-replicate-commands",
    "sanitize-dump-payload",
];

/// How deep `include` may nest before it is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Checks every `rename-command` pair so far (the new one last): Valkey's reason when the
/// last one cannot apply.
pub type RenameCheck = fn(&[(String, String)]) -> Result<(), String>;

/// Checks the rules of a `user` line (the words after its name): on a refused rule, the
/// position Valkey reports (see [`user_declaration_error`]) and its reason.
pub type UserRulesCheck = fn(&[String]) -> Result<(), (usize, String)>;

/// Checks of the lines whose meaning belongs to other crates (the command table, ACL
/// rules). They run as each line is read, so the first bad line of the file is the one
/// reported, with its line number, as in Valkey.
#[derive(Default, Clone, Copy)]
pub struct LineChecks {
    pub rename_command: Option<RenameCheck>,
    pub user_rules: Option<UserRulesCheck>,
}

/// State kept across the lines of one load.
#[derive(Default)]
struct Loader {
    /// Directives with [`APPEND`] already seen: the first line replaces the default, later
    /// lines add to it.
    appended: Vec<&'static str>,
    depth: usize,
    checks: LineChecks,
}

/// Parses `valkey-server`-style arguments: an optional config file path, then
/// `--name value ...` overrides. Returns the config and the file's absolute path.
pub fn from_args(args: &[String]) -> Result<(Config, Option<PathBuf>), ConfigError> {
    from_args_checked(args, LineChecks::default())
}

/// [`from_args`], with `checks` run on the lines other crates interpret.
pub fn from_args_checked(
    args: &[String],
    checks: LineChecks,
) -> Result<(Config, Option<PathBuf>), ConfigError> {
    let mut config = Config::default();
    let mut loader = Loader {
        checks,
        ..Loader::default()
    };
    let mut path = None;
    let mut rest = args;
    if let Some(first) = rest.first()
        && !first.starts_with("--")
    {
        // Absolute, so CONFIG REWRITE finds it after `dir` has moved the process.
        let absolute = std::path::absolute(first).unwrap_or_else(|_| PathBuf::from(first));
        loader.load_file(&absolute, &mut config)?;
        path = Some(absolute);
        rest = &rest[1..];
    }
    let overrides = overrides_text(rest);
    if !overrides.is_empty() {
        // Valkey appends the overrides after a newline, so they start on line 2 of their text.
        loader.load_text(&format!("\n{overrides}"), &mut config)?;
    }
    Ok((config, path))
}

/// `--port 7000 --save "" --bind a b` → `port "7000" \nsave "" \nbind "a" "b" `, by
/// Valkey's rules: a `--name` right after an option name given alone is that option's
/// value (`--proc-title-template --my--title`); `"--port 7000"` in one argument is a whole
/// line; `--save` with no value (last, or before another option) means `save ""`, and
/// `--sentinel` takes no value.
fn overrides_text(args: &[String]) -> String {
    let mut text = String::new();
    let mut wants_value = false;
    for (i, arg) in args.iter().enumerate() {
        let Some(name) = arg.strip_prefix("--").filter(|_| !wants_value) else {
            text.push_str(&repr(arg));
            text.push(' ');
            wants_value = false;
            continue;
        };
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(name);
        text.push(' ');
        let alone = split_args(arg.as_bytes()).is_ok_and(|words| words.len() == 1);
        let next_is_option = args.get(i + 1).is_some_and(|next| next.starts_with("--"));
        let last = i + 1 == args.len();
        wants_value = alone;
        if alone && arg.eq_ignore_ascii_case("--save") && (next_is_option || last) {
            text.push_str("\"\"");
            wants_value = false;
        } else if alone && arg.eq_ignore_ascii_case("--sentinel") && next_is_option {
            wants_value = false;
        }
    }
    text
}

/// Applies a config text over `config` (used by tests and `include`-free callers).
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    Loader::default().load_text(text, &mut config)?;
    Ok(config)
}

impl Loader {
    fn load_file(&mut self, path: &Path, config: &mut Config) -> Result<(), ConfigError> {
        let text = std::fs::read(path).map_err(|e| {
            ConfigError::Fatal(format!(
                "Fatal error, can't open config file '{}': {}",
                path.display(),
                crate::special::os_error_text(&e)
            ))
        })?;
        self.load_text(&String::from_utf8_lossy(&text), config)
    }

    fn load_text(&mut self, text: &str, config: &mut Config) -> Result<(), ConfigError> {
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: &str| ConfigError::Line {
                line_number: i + 1,
                line: line.to_string(),
                reason: reason.to_string(),
            };
            let words = split_args(line.as_bytes())
                .map_err(|_| error("Unbalanced quotes in configuration line"))?;
            let words: Vec<String> = words
                .into_iter()
                .map(|w| String::from_utf8_lossy(&w).into_owned())
                .collect();
            let Some((name, values)) = words.split_first() else {
                continue;
            };
            self.apply_line(name, values, config)
                .map_err(|reason| match reason {
                    LineError::Reason(r) => error(&r),
                    LineError::Nested(e) => e,
                })?;
        }
        Ok(())
    }

    fn apply_line(
        &mut self,
        name: &str,
        values: &[String],
        config: &mut Config,
    ) -> Result<(), LineError> {
        const BAD: &str = "Bad directive or wrong number of arguments";
        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), values.len()) {
            ("include", 1) => return self.include(&values[0], config),
            ("rename-command", 2) => {
                config
                    .extras
                    .rename_commands
                    .push((values[0].clone(), values[1].clone()));
                if let Some(check) = self.checks.rename_command {
                    check(&config.extras.rename_commands).map_err(LineError::Reason)?;
                }
                return Ok(());
            }
            ("user", n) if n >= 1 => {
                if config.extras.users.iter().any(|u| u[0] == values[0]) {
                    return Err(user_declaration_error(
                        name,
                        values,
                        1,
                        "Duplicate user found. A user can only be defined once in config files",
                    ));
                }
                if let Some(check) = self.checks.user_rules {
                    check(&values[1..]).map_err(|(at, reason)| {
                        user_declaration_error(name, values, at, &reason)
                    })?;
                }
                config.extras.users.push(values.to_vec());
                return Ok(());
            }
            ("loadmodule", n) if n >= 1 => {
                config.extras.modules.push(values.to_vec());
                return Ok(());
            }
            ("sentinel", _) => {
                return Err(LineError::Reason(
                    "sentinel directive while not in sentinel mode".into(),
                ));
            }
            (ignored, 1) if IGNORED.contains(&ignored) => return Ok(()),
            _ => {}
        }
        let Some(directive) = Directive::find(&lower) else {
            return Err(LineError::Reason(BAD.into()));
        };
        let arity_ok = if directive.name == "replicaof" {
            // Valkey also takes `replicaof "host port"` as one (quoted) argument.
            values.len() == 2 || (values.len() == 1 && values[0].split(' ').count() == 2)
        } else if directive.name == "save" {
            // A bare `save` line is an empty list of rules: the first `save` line replaces the
            // defaults, so alone it turns snapshots off, as `save ""` (Valkey's test suite
            // writes one).
            true
        } else if directive.has(MULTI_ARG) {
            // No value at all is the empty list, for the directive's own check to judge
            // (`bind` alone listens nowhere; `shutdown-on-sigint` alone names no flag).
            true
        } else {
            values.len() == 1
        };
        if !arity_ok {
            return Err(LineError::Reason("wrong number of arguments".into()));
        }
        if values.is_empty() && self.appended.contains(&directive.name) {
            // A bare `save` after other `save` lines adds no rule.
            return Ok(());
        }
        let mut value = values.join(" ");
        if directive.has(APPEND) {
            if self.appended.contains(&directive.name) {
                let current = directive.get(config);
                if !value.is_empty() && !current.is_empty() {
                    value = format!("{current} {value}");
                }
            } else {
                self.appended.push(directive.name);
            }
        }
        directive.set(config, &value).map_err(LineError::Reason)?;
        crate::hooks::apply(directive.name, config).map_err(LineError::Reason)
    }

    fn include(&mut self, pattern: &str, config: &mut Config) -> Result<(), LineError> {
        if self.depth >= MAX_INCLUDE_DEPTH {
            return Err(LineError::Reason("include nesting is too deep".into()));
        }
        self.depth += 1;
        let result = expand_include(pattern)
            .into_iter()
            .try_for_each(|path| self.load_file(&path, config));
        self.depth -= 1;
        result.map_err(LineError::Nested)
    }
}

/// Valkey's "Error in user declaration" reason. It names the word of the whole line
/// (`user` counted as word 0) at `at`, where `at` is the position of the refused rule among
/// the rules (after selectors are merged), or 1 for a duplicate user: Valkey's own indexing,
/// reproduced for identical messages.
fn user_declaration_error(
    directive: &str,
    values: &[String],
    at: usize,
    reason: &str,
) -> LineError {
    let word = if at == 0 {
        directive
    } else {
        values.get(at - 1).map_or("", String::as_str)
    };
    LineError::Reason(format!("Error in user declaration '{word}': {reason}"))
}

/// An error from one line: a reason (reported at that line) or an error already located in an
/// included file.
enum LineError {
    Reason(String),
    Nested(ConfigError),
}

/// The files an `include` names: the path itself, or, when its file name has glob characters,
/// the matching files of its directory in name order (Valkey 7+ accepts such patterns).
fn expand_include(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !file_name.contains(['*', '?', '[']) {
        return vec![path.to_path_buf()];
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().is_some_and(|f| {
                        glob_match(file_name.as_bytes(), f.as_encoded_bytes(), false)
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// One warning per directive ferrokv accepts but does not act on yet, for those whose value
/// differs from the default.
pub fn pending_warnings(config: &Config) -> Vec<String> {
    directives::DIRECTIVES
        .iter()
        .filter(|d| d.has(PENDING) && d.get(config) != d.default)
        .map(|d| format!("directive {} is accepted but not implemented yet", d.name))
        .chain(
            (!config.extras.modules.is_empty())
                .then(|| "directive loadmodule is accepted but not implemented yet".into()),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_error(e: ConfigError) -> (usize, String, String) {
        match e {
            ConfigError::Line {
                line_number,
                line,
                reason,
            } => (line_number, line, reason),
            ConfigError::Fatal(t) => panic!("not a line error: {t}"),
        }
    }

    #[test]
    fn overrides_apply_after_the_file() {
        let (c, path) = from_args(&[
            "--port".into(),
            "7001".into(),
            "--maxclients".into(),
            "5".into(),
            "--save".into(),
            "".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "::1".into(),
        ])
        .unwrap();
        assert_eq!((c.port, c.maxclients), (7001, 5));
        assert_eq!(c.save, "");
        assert_eq!(c.bind, ["127.0.0.1", "::1"]);
        assert!(path.is_none());
    }

    #[test]
    fn override_values_may_start_with_dashes_as_in_valkey() {
        let text =
            |args: &[&str]| overrides_text(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        assert_eq!(
            text(&[
                "--proc-title-template",
                "--my--title",
                "--loglevel",
                "verbose"
            ]),
            "proc-title-template \"--my--title\" \nloglevel \"verbose\" "
        );
        assert_eq!(
            text(&["--maxmemory 700mb", "--maxmemory-policy 'volatile-lru'"]),
            "maxmemory 700mb \nmaxmemory-policy 'volatile-lru' "
        );
        assert_eq!(text(&["--save", "--port", "1"]), "save \"\"\nport \"1\" ");
        assert_eq!(text(&["--port", "1", "--save"]), "port \"1\" \nsave \"\"");
        assert_eq!(
            text(&[
                "--proc-title-template",
                "--save",
                "--save",
                "",
                "--port",
                "1"
            ]),
            "proc-title-template \"--save\" \nsave \"\" \nport \"1\" "
        );
        let (c, _) = from_args(&[
            "--save".into(),
            "--maxmemory 700mb".into(),
            "--shutdown-on-sigint".into(),
            "nosave".into(),
            "force".into(),
        ])
        .unwrap();
        assert_eq!((c.save.as_str(), c.maxmemory), ("", 700 << 20));
    }

    #[test]
    fn override_errors_name_their_line() {
        let e =
            from_args(&["--port".into(), "0".into(), "--nosuch".into(), "1".into()]).unwrap_err();
        assert_eq!(
            line_error(e),
            (
                3,
                "nosuch \"1\"".into(),
                "Bad directive or wrong number of arguments".into()
            )
        );
    }

    #[test]
    fn unknown_directive_names_its_line() {
        let e = parse("port 1\n\n  not-a-directive 1  \n").unwrap_err();
        let (n, line, reason) = line_error(e);
        assert_eq!((n, line.as_str()), (3, "not-a-directive 1"));
        assert_eq!(reason, "Bad directive or wrong number of arguments");
    }

    #[test]
    fn a_bare_save_line_turns_snapshots_off() {
        assert_eq!(parse("save \n").expect("accepted").save, "");
        assert_eq!(parse("save 100 1\nsave\n").expect("accepted").save, "100 1");
    }

    #[test]
    fn argument_counts() {
        for (text, reason) in [
            ("port", "wrong number of arguments"),
            ("appendfsync", "wrong number of arguments"),
            ("hz 1 2", "wrong number of arguments"),
            ("replicaof h", "wrong number of arguments"),
            ("replicaof \"h 1 2\"", "wrong number of arguments"),
            ("include", "Bad directive or wrong number of arguments"),
            (
                "requirepass \"a b",
                "Unbalanced quotes in configuration line",
            ),
        ] {
            assert_eq!(line_error(parse(text).unwrap_err()).2, reason, "{text}");
        }
    }

    #[test]
    fn replicaof_host_and_port_as_one_quoted_argument() {
        assert_eq!(parse("replicaof \"h 6380\"\n").unwrap().replicaof, "h 6380");
    }

    #[test]
    fn multi_arg_and_append() {
        let c = parse(
            "save 100 1\nsave 200 2\nbind 127.0.0.1 ::1\nreplicaof h 6380\n\
             client-output-buffer-limit pubsub 1mb 2mb 3\nmaxmemory 1GB\nhz 7\r\n\
             requirepass \"a\\x41 b\"\nrename-command FLUSHALL \"\"\ndynamic-hz yes\n",
        )
        .unwrap();
        assert_eq!(c.save, "100 1 200 2");
        assert_eq!(c.bind, ["127.0.0.1", "::1"]);
        assert_eq!(c.replicaof, "h 6380");
        assert_eq!(
            c.client_output_buffer_limit,
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 3"
        );
        assert_eq!((c.maxmemory, c.hz), (1 << 30, 7));
        assert_eq!(c.requirepass, "aA b");
        assert_eq!(c.extras.rename_commands.len(), 1);
    }

    #[test]
    fn pending_directives_are_reported() {
        let c = parse("activedefrag yes\nhz 20\n").unwrap();
        assert_eq!(
            pending_warnings(&c),
            ["directive activedefrag is accepted but not implemented yet"]
        );
    }
}
