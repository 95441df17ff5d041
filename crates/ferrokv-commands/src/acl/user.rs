//! The user model: a user's switches and passwords, and its selectors (the permissions).
//!
//! A user is an immutable value once built: ACL SETUSER builds a new one from a copy and
//! swaps it into the registry, so a connection holding an `Arc<User>` never sees a half
//! applied rule list. Each selector keeps both the *effective* permissions (a command bitmap
//! over the command table's ids, key and channel patterns, databases) and the rule text that
//! produced its command bitmap, which ACL LIST and GETUSER print.

use std::collections::BTreeSet;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::table::TABLE;

/// A SHA-256 digest of a password: the only form in which passwords are kept.
pub type PasswordHash = [u8; 32];

pub fn hash_password(password: &[u8]) -> PasswordHash {
    Sha256::digest(password).into()
}

/// Bytes in lowercase hex: password hashes, DEBUG DIGEST's fingerprints.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A key pattern with the access it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Bytes,
    pub read: bool,
    pub write: bool,
}

impl KeyPattern {
    /// `~p`, `%R~p` or `%W~p`, as ACL LIST prints it.
    fn describe(&self, out: &mut Vec<u8>) {
        match (self.read, self.write) {
            (true, false) => out.extend_from_slice(b"%R~"),
            (false, true) => out.extend_from_slice(b"%W~"),
            _ => out.push(b'~'),
        }
        out.extend_from_slice(&self.pattern);
    }
}

/// One set of permissions. The root selector is the user's own; extra selectors (the
/// parenthesised ones) each grant an alternative set.
#[derive(Clone, Debug)]
pub struct Selector {
    /// One bit per command table entry (commands and subcommands).
    pub(crate) allowed: Vec<u64>,
    /// `+@all` / `allcommands` was the last reset: printed as `+@all`, else `-@all`.
    pub(crate) all_commands: bool,
    /// The command rules after the last reset, in order, lower-case (`+get`, `-@read`).
    pub(crate) command_rules: Vec<String>,
    /// First arguments allowed for commands without subcommands (`+select|0`), by table id.
    pub(crate) first_args: Vec<(usize, Vec<Bytes>)>,
    pub(crate) all_keys: bool,
    pub(crate) keys: Vec<KeyPattern>,
    pub(crate) all_channels: bool,
    pub(crate) channels: Vec<Bytes>,
    /// The databases this selector may touch; `None` means all of them.
    pub(crate) dbs: Option<BTreeSet<u32>>,
}

impl Selector {
    /// A selector that allows nothing (no commands, keys or channels; every database).
    /// `all_channels` is what `acl-pubsub-default` gives new users.
    pub fn new(all_channels: bool) -> Selector {
        Selector {
            allowed: vec![0; TABLE.len().div_ceil(64)],
            all_commands: false,
            command_rules: Vec::new(),
            first_args: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels,
            channels: Vec::new(),
            dbs: None,
        }
    }

    pub(crate) fn set_bit(&mut self, id: usize, on: bool) {
        let (word, bit) = (id / 64, id % 64);
        if on {
            self.allowed[word] |= 1 << bit;
        } else {
            self.allowed[word] &= !(1 << bit);
        }
    }

    #[inline]
    pub fn allows_id(&self, id: usize) -> bool {
        self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn allows_every_command(&self) -> bool {
        (0..TABLE.len()).all(|id| self.allows_id(id))
    }

    pub fn db_allowed(&self, db: u32) -> bool {
        self.dbs.as_ref().is_none_or(|dbs| dbs.contains(&db))
    }

    /// The command rules as ACL GETUSER shows them: `+@all` or `-@all`, then the rules.
    pub fn describe_commands(&self) -> String {
        let mut text = String::from(if self.all_commands { "+@all" } else { "-@all" });
        for rule in &self.command_rules {
            text.push(' ');
            text.push_str(rule);
        }
        text
    }

    /// `~*`, or the patterns separated by spaces (empty when there are none).
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.all_keys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            key.describe(&mut out);
        }
        out
    }

    /// `&*`, or the patterns separated by spaces (empty when there are none).
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.all_channels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, channel) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(channel);
        }
        out
    }

    /// `alldbs`, `db=1,2` or, with no database, an empty string (GETUSER's form).
    pub fn describe_dbs(&self) -> String {
        match &self.dbs {
            None => "alldbs".into(),
            Some(dbs) => db_list(dbs),
        }
    }

    /// The selector in ACL LIST's rule syntax: keys, channels, databases, commands.
    pub fn describe(&self, out: &mut Vec<u8>) {
        if self.all_keys {
            out.extend_from_slice(b"~* ");
        } else {
            for key in &self.keys {
                key.describe(out);
                out.push(b' ');
            }
        }
        if self.all_channels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for channel in &self.channels {
                out.push(b'&');
                out.extend_from_slice(channel);
                out.push(b' ');
            }
        }
        match &self.dbs {
            None => {}
            Some(dbs) if dbs.is_empty() => out.extend_from_slice(b"resetdbs "),
            Some(dbs) => {
                out.extend_from_slice(db_list(dbs).as_bytes());
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.describe_commands().as_bytes());
    }
}

fn db_list(dbs: &BTreeSet<u32>) -> String {
    if dbs.is_empty() {
        return String::new();
    }
    let ids: Vec<String> = dbs.iter().map(u32::to_string).collect();
    format!("db={}", ids.join(","))
}

#[derive(Clone, Debug)]
pub struct User {
    pub name: Bytes,
    pub enabled: bool,
    pub nopass: bool,
    pub passwords: Vec<PasswordHash>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
    /// The root selector allows every command, key, channel and database: the permission
    /// check is skipped (the default user's common case costs one branch).
    pub(crate) unrestricted: bool,
}

impl User {
    /// A new user as ACL SETUSER creates it: off, no passwords, no permissions.
    pub fn new(name: Bytes, all_channels: bool) -> User {
        User {
            name,
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            root: Selector::new(all_channels),
            selectors: Vec::new(),
            unrestricted: false,
        }
    }

    /// The `default` user of a fresh server: on, nopass, everything allowed.
    pub fn new_default() -> User {
        User::allowed_everything(Bytes::from_static(b"default"))
    }

    /// A user that is on, needs no password and may run everything on every key and
    /// channel.
    pub fn allowed_everything(name: Bytes) -> User {
        let mut user = User::new(name, false);
        for rule in ["on", "nopass", "~*", "&*", "+@all"] {
            // These rules are valid by construction.
            let _ = super::rules::apply_rule(&mut user, rule.as_bytes(), false);
        }
        user.finish();
        user
    }

    /// Recomputes what is derived from the rules; called after every change.
    pub(crate) fn finish(&mut self) {
        let root = &self.root;
        self.unrestricted =
            root.all_keys && root.all_channels && root.dbs.is_none() && root.allows_every_command();
    }

    pub fn is_unrestricted(&self) -> bool {
        self.unrestricted
    }

    /// Whether `password` is one of the user's (any password when `nopass`), in time that
    /// does not depend on where a stored hash differs.
    pub fn password_matches(&self, password: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let attempt = hash_password(password);
        let mut found = subtle::Choice::from(0);
        for stored in &self.passwords {
            found |= subtle::ConstantTimeEq::ct_eq(&stored[..], &attempt[..]);
        }
        bool::from(found)
    }

    /// The user as one line of ACL LIST (and of an ACL file), without the trailing newline.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = b"user ".to_vec();
        out.extend_from_slice(&self.name);
        out.extend_from_slice(if self.enabled { b" on" } else { b" off" });
        if self.nopass {
            out.extend_from_slice(b" nopass");
        }
        for hash in &self.passwords {
            out.extend_from_slice(b" #");
            out.extend_from_slice(hex(hash).as_bytes());
        }
        out.push(b' ');
        self.root.describe(&mut out);
        for selector in &self.selectors {
            out.extend_from_slice(b" (");
            selector.describe(&mut out);
            out.push(b')');
        }
        out
    }
}
