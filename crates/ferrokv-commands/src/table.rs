//! The command table, built once from every family's `COMMANDS` list.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;
use std::sync::{LazyLock, OnceLock};

use crate::cmd;
use crate::spec::CommandSpec;

/// One command or subcommand, with its id (the index of its statistics counters).
pub struct TableEntry {
    pub spec: &'static CommandSpec,
    /// `get`, or `config|get` for a subcommand.
    pub full_name: String,
    pub id: usize,
    pub parent: Option<usize>,
    subcommands: HashMap<&'static [u8], usize, RandomState>,
}

pub struct CommandTable {
    entries: Vec<TableEntry>,
    by_name: HashMap<&'static [u8], usize, RandomState>,
    /// The top-level commands by name length and first letter (see `shape`): a lookup
    /// compares a few names ignoring ASCII case, without hashing or a lowercased copy. It
    /// runs for every request, up to four times for an EVALSHA (the fiber check, prefetch,
    /// dispatch, the script's own call), and the hashed lookup was 3.5% of its cycles.
    by_shape: Vec<Vec<usize>>,
    /// First letters (lower case) of the commands that may run a script, so that asking
    /// [`CommandTable::runs_lua`] of a GET costs one load, not a lookup.
    lua_initials: [bool; 256],
}

pub static TABLE: LazyLock<CommandTable> = LazyLock::new(|| CommandTable::build(cmd::FAMILIES));

/// The `rename-command` lines of the config file, applied once at start-up before any client
/// connects. Unset when the file renames nothing, so the usual lookup costs one atomic load.
static RENAMES: OnceLock<Renames> = OnceLock::new();

/// The names clients see once commands are renamed. The table itself keeps the original names:
/// ACL rules, COMMAND INFO replies and statistics still use them, as in Valkey.
struct Renames {
    /// Lower-cased new name -> id of the renamed top-level command.
    by_new_name: HashMap<Vec<u8>, usize, RandomState>,
    /// Top-level commands whose original name no longer answers (renamed or disabled).
    hidden: HashSet<usize, RandomState>,
    /// Commands renamed to "": they vanish from COMMAND COUNT/LIST/INFO/DOCS too.
    disabled: HashSet<usize, RandomState>,
}

/// Applies `rename-command old new` lines in order (`new` empty disables the command). On a bad
/// line, returns its index and Valkey's reason. Only the first successful call takes effect.
pub fn install_renames(pairs: &[(String, String)]) -> Result<(), (usize, &'static str)> {
    if pairs.is_empty() {
        return Ok(());
    }
    let _ = RENAMES.set(build_renames(pairs)?);
    Ok(())
}

/// Whether the last of these `rename-command` lines applies after the others: Valkey's reason
/// when it does not. Installs nothing (the config loader checks each line as it reads it).
pub fn check_renames(pairs: &[(String, String)]) -> Result<(), String> {
    build_renames(pairs)
        .map(|_| ())
        .map_err(|(_, reason)| reason.to_string())
}

fn build_renames(pairs: &[(String, String)]) -> Result<Renames, (usize, &'static str)> {
    let mut renames = Renames {
        by_new_name: HashMap::default(),
        hidden: HashSet::default(),
        disabled: HashSet::default(),
    };
    for (index, (old, new)) in pairs.iter().enumerate() {
        let old_id = match TABLE.find(old.as_bytes()) {
            Some(entry) if !renames.hidden.contains(&entry.id) => entry.id,
            _ => return Err((index, "No such command in rename-command")),
        };
        if new.is_empty() {
            renames.hidden.insert(old_id);
            renames.disabled.insert(old_id);
            continue;
        }
        if renames.find(&TABLE, new.as_bytes()).is_some() {
            return Err((index, "Target command name already exists"));
        }
        renames.hidden.insert(old_id);
        renames
            .by_new_name
            .insert(new.to_ascii_lowercase().into_bytes(), old_id);
    }
    Ok(renames)
}

impl Renames {
    fn find<'t>(&self, table: &'t CommandTable, name: &[u8]) -> Option<&'t TableEntry> {
        let mut buf = [0u8; 64];
        let lower = lowercase(name, &mut buf)?;
        if let Some(&id) = self.by_new_name.get(lower) {
            return Some(&table.entries[id]);
        }
        table
            .by_name
            .get(lower)
            .filter(|id| !self.hidden.contains(id))
            .map(|&id| &table.entries[id])
    }
}

impl CommandTable {
    fn build(families: &[&'static [CommandSpec]]) -> CommandTable {
        let mut table = CommandTable {
            entries: Vec::new(),
            by_name: HashMap::default(),
            by_shape: vec![Vec::new(); SHAPES],
            lua_initials: [false; 256],
        };
        for family in families {
            for spec in family.iter() {
                let id = table.push(spec, spec.name.to_string(), None);
                let previous = table.by_name.insert(spec.name.as_bytes(), id);
                assert!(previous.is_none(), "command {} declared twice", spec.name);
                if let Some(shape) = shape(spec.name.as_bytes()) {
                    table.by_shape[shape].push(id);
                }
                if spec.runs_lua {
                    table.lua_initials[usize::from(spec.name.as_bytes()[0])] = true;
                }
                for sub in spec.subcommands {
                    let sub_id = table.push(sub, format!("{}|{}", spec.name, sub.name), Some(id));
                    table.entries[id]
                        .subcommands
                        .insert(sub.name.as_bytes(), sub_id);
                }
            }
        }
        table
    }

    fn push(
        &mut self,
        spec: &'static CommandSpec,
        full_name: String,
        parent: Option<usize>,
    ) -> usize {
        let id = self.entries.len();
        self.entries.push(TableEntry {
            spec,
            full_name,
            id,
            parent,
            subcommands: HashMap::default(),
        });
        id
    }

    /// Number of entries, subcommands included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entry(&self, id: usize) -> &TableEntry {
        &self.entries[id]
    }

    /// Top-level commands, in declaration order.
    pub fn commands(&self) -> impl Iterator<Item = &TableEntry> {
        self.entries.iter().filter(|e| e.parent.is_none())
    }

    pub fn subcommands_of(&self, id: usize) -> impl Iterator<Item = &TableEntry> {
        self.entries.iter().filter(move |e| e.parent == Some(id))
    }

    /// Finds a top-level command by name, ignoring case, without allocating.
    pub fn find(&self, name: &[u8]) -> Option<&TableEntry> {
        if let Some(shape) = shape(name) {
            return self.by_shape[shape]
                .iter()
                .map(|&id| &self.entries[id])
                .find(|e| e.spec.name.as_bytes().eq_ignore_ascii_case(name));
        }
        self.by_name
            .get(lowercase(name, &mut [0u8; 64])?)
            .map(|&id| &self.entries[id])
    }

    /// Whether the command `name` (as clients call it) may run a Lua script
    /// (`CommandSpec::runs_lua`).
    pub fn runs_lua(&self, name: &[u8]) -> bool {
        self.lua_command(name).is_some()
    }

    /// The command `name` when it may run a Lua script.
    pub fn lua_command(&self, name: &[u8]) -> Option<&TableEntry> {
        let &first = name.first()?;
        if RENAMES.get().is_none() && !self.lua_initials[usize::from(first.to_ascii_lowercase())] {
            return None;
        }
        self.lookup(name).filter(|e| e.spec.runs_lua)
    }

    /// Finds a top-level command by the name clients call it, after `rename-command`.
    pub fn lookup(&self, name: &[u8]) -> Option<&TableEntry> {
        match RENAMES.get() {
            None => self.find(name),
            Some(renames) => renames.find(self, name),
        }
    }

    /// Finds `name` or `parent|sub` by the names clients call them, after `rename-command`.
    pub fn lookup_full(&self, full: &[u8]) -> Option<&TableEntry> {
        match full.iter().position(|&b| b == b'|') {
            Some(bar) => self.find_sub(self.lookup(&full[..bar])?, &full[bar + 1..]),
            None => self.lookup(full),
        }
    }

    /// Top-level commands COMMAND lists: all but those `rename-command` disabled.
    pub fn listed_commands(&self) -> impl Iterator<Item = &TableEntry> {
        let disabled = RENAMES.get().map(|r| &r.disabled);
        self.commands()
            .filter(move |e| disabled.is_none_or(|d| !d.contains(&e.id)))
    }

    /// Finds a subcommand of `parent` by name, ignoring case.
    pub fn find_sub(&self, parent: &TableEntry, name: &[u8]) -> Option<&TableEntry> {
        parent
            .subcommands
            .get(lowercase(name, &mut [0u8; 64])?)
            .map(|&id| &self.entries[id])
    }

    /// Calls `found` with each key of the request `args` where its command's key specs
    /// place them; nothing for an unknown command or one with subcommands (whose keys the
    /// subcommand's specs place). Prefetching a pipeline's keys uses it before the requests
    /// run; the request is not checked here (arity and the rest come when it runs).
    pub fn request_keys<'a, A: AsRef<[u8]>>(&self, args: &'a [A], mut found: impl FnMut(&'a [u8])) {
        let Some(entry) = args.first().and_then(|name| self.lookup(name.as_ref())) else {
            return;
        };
        if entry.subcommands.is_empty() {
            crate::spec::for_each_command_key(entry.spec, args, |i, _| found(args[i].as_ref()));
        }
    }

    /// Finds `name` or `parent|sub`.
    pub fn find_full(&self, full: &[u8]) -> Option<&TableEntry> {
        match full.iter().position(|&b| b == b'|') {
            Some(bar) => self.find_sub(self.find(&full[..bar])?, &full[bar + 1..]),
            None => self.find(full),
        }
    }
}

/// Names up to this long are found through `by_shape`; longer ones are hashed.
const MAX_SHAPE_LEN: usize = 24;
const SHAPES: usize = (MAX_SHAPE_LEN + 1) * 32;

/// The `by_shape` slot of a name: its length and the low five bits of its first byte (the
/// same for a letter in either case).
fn shape(name: &[u8]) -> Option<usize> {
    let &first = name.first()?;
    (name.len() <= MAX_SHAPE_LEN).then(|| name.len() * 32 + usize::from(first & 0x1f))
}

fn lowercase<'b>(name: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..name.len())?;
    for (o, &c) in out.iter_mut().zip(name) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::TABLE;

    fn keys(request: &str) -> Vec<String> {
        let args: Vec<&[u8]> = request.split(' ').map(str::as_bytes).collect();
        let mut found = Vec::new();
        TABLE.request_keys(&args, |key| {
            found.push(String::from_utf8_lossy(key).into_owned())
        });
        found
    }

    #[test]
    fn request_keys_follow_the_key_specs() {
        assert_eq!(keys("get k"), ["k"]);
        assert_eq!(keys("MSET a 1 b 2 c 3"), ["a", "b", "c"]);
        assert_eq!(keys("mget a b c"), ["a", "b", "c"]);
        assert_eq!(keys("lmove src dst LEFT RIGHT"), ["src", "dst"]);
        assert_eq!(keys("zunionstore dst 2 a b WEIGHTS 1 2"), ["dst", "a", "b"]);
        // A keys procedure where the specs are `unknown`.
        assert_eq!(keys("sort k BY w_* STORE d"), ["k", "d"]);
        assert_eq!(keys("sort_ro k STORE d"), ["k"]);
        // Unknown commands, commands without keys, containers (their subcommands hold the
        // key specs), and too few arguments give nothing rather than a wrong guess.
        assert!(keys("nosuchcommand k").is_empty());
        assert!(keys("ping hello").is_empty());
        assert!(keys("object encoding k").is_empty());
        assert!(keys("get").is_empty());
        assert!(keys("sort").is_empty());
    }

    #[test]
    fn every_command_is_found_by_its_name_in_any_case_and_nothing_else_is() {
        for entry in TABLE.commands() {
            let name = entry.spec.name;
            for variant in [
                name.to_string(),
                name.to_ascii_uppercase(),
                name.chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if i % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect(),
            ] {
                let found = TABLE.find(variant.as_bytes()).map(|e| e.id);
                assert_eq!(found, Some(entry.id), "{variant}");
            }
            let mut longer = name.to_string();
            longer.push('x');
            assert!(
                TABLE
                    .find(longer.as_bytes())
                    .is_none_or(|e| e.spec.name != name)
            );
            assert!(
                TABLE
                    .find(&name.as_bytes()[1..])
                    .is_none_or(|e| e.spec.name != name)
            );
        }
        // Same shape as `get` but another first byte with the same low bits ('G' ^ 0x40).
        assert!(TABLE.find(b"\x07et").is_none());
        assert!(TABLE.find(b"").is_none());
        assert!(TABLE.find(&[b'a'; 100]).is_none());
    }

    #[test]
    fn the_commands_that_run_scripts_are_known_by_name() {
        for name in [
            "EVAL",
            "evalsha",
            "Eval_Ro",
            "evalsha_ro",
            "fcall",
            "FCALL_RO",
            "exec",
        ] {
            assert!(TABLE.runs_lua(name.as_bytes()), "{name}");
        }
        for name in [
            "get", "expire", "exists", "function", "script", "multi", "", "e",
        ] {
            assert!(!TABLE.runs_lua(name.as_bytes()), "{name}");
        }
    }
}
