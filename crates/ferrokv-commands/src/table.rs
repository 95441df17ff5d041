//! The command table, built once from every family's `COMMANDS` list.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::LazyLock;

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
}

pub static TABLE: LazyLock<CommandTable> = LazyLock::new(|| CommandTable::build(cmd::FAMILIES));

impl CommandTable {
    fn build(families: &[&'static [CommandSpec]]) -> CommandTable {
        let mut table = CommandTable {
            entries: Vec::new(),
            by_name: HashMap::default(),
        };
        for family in families {
            for spec in family.iter() {
                let id = table.push(spec, spec.name.to_string(), None);
                let previous = table.by_name.insert(spec.name.as_bytes(), id);
                assert!(previous.is_none(), "command {} declared twice", spec.name);
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
        self.by_name
            .get(lowercase(name, &mut [0u8; 64])?)
            .map(|&id| &self.entries[id])
    }

    /// Finds a subcommand of `parent` by name, ignoring case.
    pub fn find_sub(&self, parent: &TableEntry, name: &[u8]) -> Option<&TableEntry> {
        parent
            .subcommands
            .get(lowercase(name, &mut [0u8; 64])?)
            .map(|&id| &self.entries[id])
    }

    /// Finds `name` or `parent|sub`.
    pub fn find_full(&self, full: &[u8]) -> Option<&TableEntry> {
        match full.iter().position(|&b| b == b'|') {
            Some(bar) => self.find_sub(self.find(&full[..bar])?, &full[bar + 1..]),
            None => self.find(full),
        }
    }
}

fn lowercase<'b>(name: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..name.len())?;
    for (o, &c) in out.iter_mut().zip(name) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}
