//! What a command handler works with: the server, its client, the reply buffer, and errors.

use std::borrow::Cow;

use bytes::Bytes;
use ferrokv_protocol::Reply;
use ferrokv_store::{Entry, Locked, StrRef, Value, events};

use crate::client::Client;
use crate::server::Server;
use crate::spec::CommandSpec;
use crate::stats;

/// An error reply. The text starts with the error code (`ERR`, `WRONGTYPE` ...), without the
/// leading `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdError(pub Cow<'static, str>);

pub type CmdResult = Result<(), CmdError>;

impl CmdError {
    pub fn new(text: impl Into<Cow<'static, str>>) -> CmdError {
        CmdError(text.into())
    }

    /// `ERR <text>`.
    pub fn err(text: impl std::fmt::Display) -> CmdError {
        CmdError(Cow::Owned(format!("ERR {text}")))
    }
}

/// Error replies used across command families, with Valkey's exact texts.
pub mod errors {
    use super::CmdError;
    use std::borrow::Cow::Borrowed;

    pub const WRONGTYPE: CmdError = CmdError(Borrowed(
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    ));
    pub const SYNTAX: CmdError = CmdError(Borrowed("ERR syntax error"));
    pub const NOT_INTEGER: CmdError =
        CmdError(Borrowed("ERR value is not an integer or out of range"));
    pub const NOT_FLOAT: CmdError = CmdError(Borrowed("ERR value is not a valid float"));
    pub const OVERFLOW: CmdError = CmdError(Borrowed("ERR increment or decrement would overflow"));
    pub const NO_SUCH_KEY: CmdError = CmdError(Borrowed("ERR no such key"));
    pub const DB_INDEX_OUT_OF_RANGE: CmdError = CmdError(Borrowed("ERR DB index is out of range"));
    pub const INVALID_DB_INDEX: CmdError = CmdError(Borrowed("ERR invalid DB index"));
    pub const NOAUTH: CmdError = CmdError(Borrowed("NOAUTH Authentication required."));
    pub const OOM: CmdError = CmdError(Borrowed(
        "OOM command not allowed when used memory > 'maxmemory'.",
    ));
    pub const SAME_OBJECT: CmdError =
        CmdError(Borrowed("ERR source and destination objects are the same"));
}

/// The state a handler sees while one command runs.
pub struct Ctx<'a> {
    pub server: &'a Server,
    pub client: &'a mut Client,
    pub reply: &'a mut Reply,
    /// The command being run (for a subcommand, the subcommand's entry).
    pub spec: &'static CommandSpec,
    /// The time snapshot for this command: every expiry decision inside one command uses the
    /// same instant, as Valkey does.
    pub now_ms: i64,
}

impl<'a> Ctx<'a> {
    /// The client's selected database.
    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Locks the shards holding `keys` for the rest of the command.
    pub fn lock<K: AsRef<[u8]>>(&self, keys: &[K]) -> Locked<'a> {
        self.server.keyspace.lock(keys)
    }

    /// Locks the whole keyspace.
    pub fn lock_all(&self) -> Locked<'a> {
        self.server.keyspace.lock_all()
    }

    /// Counts a change to the dataset (what `rdb_changes_since_last_save` reports).
    pub fn add_dirty(&self, n: u64) {
        stats::local().dirty.add(n);
        if n > 0 && events::touches_pending() {
            // Mark watchers now, while the command still holds its keys' locks.
            crate::transaction::process_touches_on_change(self.server);
        }
    }

    /// Looks a key up for reading in the current database: expired keys vanish, hits and
    /// misses are counted, and the access time is updated unless the client asked not to.
    pub fn read<'l>(&self, locked: &'l mut Locked<'_>, key: &[u8]) -> Option<&'l mut Entry> {
        self.read_in(locked, self.client.db, key)
    }

    pub fn read_in<'l>(
        &self,
        locked: &'l mut Locked<'_>,
        db: usize,
        key: &[u8],
    ) -> Option<&'l mut Entry> {
        let found = locked.db(db, key).get(key, self.now_ms);
        self.count_read(db, key, found.is_some());
        let entry = found?;
        self.touch_access(&mut entry.access);
        Some(entry)
    }

    /// [`Ctx::read`] of a string, read where it is stored (GET's path: nothing copied out of
    /// the keyspace and back). A key of another type is a hit and a WRONGTYPE error.
    pub fn read_string<'l>(
        &self,
        locked: &'l mut Locked<'_>,
        key: &[u8],
    ) -> Result<Option<StrRef<'l>>, CmdError> {
        let db = self.client.db;
        let found = locked
            .db(db, key)
            .get_string(key, self.now_ms, |access| self.touch_access(access));
        self.count_read(db, key, found.is_some());
        match found {
            None => Ok(None),
            Some(Some(s)) => Ok(Some(s)),
            Some(None) => Err(errors::WRONGTYPE),
        }
    }

    /// A read lookup's hit or miss: counted, and a miss notified (`keymiss`).
    fn count_read(&self, db: usize, key: &[u8], hit: bool) {
        self.client.count_lookup(hit);
        if !hit {
            events::notify(events::class::KEY_MISS, "keymiss", db, key);
        }
    }

    /// Updates a read key's access stamp, unless the client asked not to (CLIENT NO-TOUCH).
    fn touch_access(&self, access: &mut u32) {
        if !self.client.no_touch {
            self.client.access_policy.touch(access);
        }
    }

    /// Looks a key up for writing: expired keys vanish, nothing is counted as a hit or miss.
    pub fn write<'l>(&self, locked: &'l mut Locked<'_>, key: &[u8]) -> Option<&'l mut Entry> {
        self.write_in(locked, self.client.db, key)
    }

    pub fn write_in<'l>(
        &self,
        locked: &'l mut Locked<'_>,
        db: usize,
        key: &[u8],
    ) -> Option<&'l mut Entry> {
        let entry = locked.db(db, key).get(key, self.now_ms)?;
        self.client.access_policy.touch(&mut entry.access);
        Some(entry)
    }

    /// Reports a keyspace notification about `key` in the current database (published
    /// after the command when `notify-keyspace-events` enables `class`).
    #[inline]
    pub fn notify(&self, class: u32, event: &'static str, key: &[u8]) {
        events::notify(class, event, self.client.db, key);
    }

    /// [`Ctx::notify`] for a key of another database.
    #[inline]
    pub fn notify_in(&self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        events::notify(class, event, db, key);
    }

    /// Whether an expiry this command sets that is already past deletes the key or field at
    /// once (Valkey's `checkAlreadyExpired`). Not while the AOF is replayed, on a replica or
    /// in import mode: there it is kept with its past time until the DEL or HDEL of the
    /// server whose history this is (the time passing here must not decide it).
    pub fn past_expiry_deletes(&self) -> bool {
        !self.client.replaying && ferrokv_store::replica_view::past_expiry_deletes()
    }

    /// Whether this command's effects are collected for the propagation stream: build a
    /// rewritten argv only then.
    #[inline]
    pub fn propagating(&self) -> bool {
        crate::propagate::collecting()
    }

    /// Propagate `args` instead of this command's argv, if it changes the dataset (the
    /// deterministic forms Valkey sends: SET .. PXAT, PEXPIREAT, SREM for SPOP ...).
    pub fn propagate_as(&self, args: Vec<Bytes>) {
        if self.propagating() {
            crate::propagate::rewrite(args);
        }
    }

    /// Propagate `args`, run in the current database, before this command's own effect.
    pub fn propagate_also(&self, args: Vec<Bytes>) {
        ferrokv_store::effects::push(self.client.db, args);
    }

    /// Propagate this command's argv even if it changes nothing (Valkey's
    /// `forceCommandPropagation`: a FLUSHALL of empty databases still reaches replicas and
    /// the AOF).
    pub fn propagate_always(&self) {
        if self.propagating() {
            crate::propagate::force();
        }
    }

    /// This command's argv is not propagated (its effects were added one by one).
    pub fn propagate_none(&self) {
        if self.propagating() {
            crate::propagate::suppress();
        }
    }

    /// A fresh entry for `value`, stamped with the current access clock.
    pub fn new_entry(&self, value: Value) -> Entry {
        Entry::new(value, self.client.access_policy.initial())
    }
}
