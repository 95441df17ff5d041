//! Access control: users, their passwords and permissions, the check every command passes,
//! and the log of denials (Valkey 9.1's ACL).
//!
//! - `user`: the user model and its ACL LIST / GETUSER descriptions.
//! - `rules`: the ACL SETUSER grammar.
//! - `check`: the permission check (databases, command bitmap, keys, channels).
//! - `log`: ACL LOG.
//! - `file`: `user` directives, the ACL file (LOAD / SAVE).
//!
//! Users live in [`Acl`], a registry of immutable `Arc<User>` values. A client keeps the
//! `Arc` of the user it authenticated as and re-reads it from the registry when the
//! registry's epoch moves (one atomic load per command, as for the configuration), so a
//! SETUSER applies to connected clients from their next command. A user that allows
//! everything is flagged `unrestricted` when it is built, so the check costs one branch.

pub mod check;
pub mod file;
pub mod log;
pub mod rules;
pub mod user;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::client::{Client, ClientShared};
use crate::context::CmdError;
use crate::server::Server;
use crate::table::TableEntry;
pub use check::{Denial, Place, user_channel_allowed};
pub use user::User;

pub const WRONGPASS: CmdError = CmdError(std::borrow::Cow::Borrowed(
    "WRONGPASS invalid username-password pair or user is disabled.",
));

/// Counters for INFO stats (`acl_access_denied_*`).
#[derive(Default)]
pub struct DeniedCounters {
    pub auth: AtomicU64,
    pub command: AtomicU64,
    pub key: AtomicU64,
    pub channel: AtomicU64,
    pub db: AtomicU64,
    /// TLS clients whose certificate named no enabled user (`tls-auth-clients-user`).
    pub tls_cert: AtomicU64,
}

impl DeniedCounters {
    pub fn reset(&self) {
        for c in [
            &self.auth,
            &self.command,
            &self.key,
            &self.channel,
            &self.db,
            &self.tls_cert,
        ] {
            c.store(0, Relaxed);
        }
    }
}

pub struct Acl {
    users: RwLock<BTreeMap<Bytes, Arc<User>>>,
    /// Moves on every change to any user; clients compare it with the one they last saw.
    epoch: AtomicU64,
    pub log: Mutex<log::AclLog>,
    pub denied: DeniedCounters,
    /// Serializes the read-modify-write of SETUSER, DELUSER, LOAD and `requirepass`.
    pub(crate) write: Mutex<()>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    /// A registry with only the `default` user (on, nopass, everything allowed).
    pub fn new() -> Acl {
        let default = User::new_default();
        let mut users = BTreeMap::new();
        users.insert(default.name.clone(), Arc::new(default));
        Acl {
            users: RwLock::new(users),
            epoch: AtomicU64::new(1),
            log: Mutex::new(log::AclLog::default()),
            denied: DeniedCounters::default(),
            write: Mutex::new(()),
        }
    }

    #[inline]
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Relaxed)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get(b"default")
            .unwrap_or_else(|| Arc::new(User::new_default()))
    }

    /// Every user, sorted by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Creates or replaces one user.
    pub fn put(&self, user: User) {
        self.users.write().insert(user.name.clone(), Arc::new(user));
        self.epoch.fetch_add(1, Relaxed);
    }

    /// Removes the named users; returns those that existed. `default` is never removed.
    pub fn remove(&self, names: &[Bytes]) -> Vec<Arc<User>> {
        let mut users = self.users.write();
        let removed = names
            .iter()
            .filter(|n| &n[..] != b"default")
            .filter_map(|n| users.remove(n))
            .collect();
        drop(users);
        self.epoch.fetch_add(1, Relaxed);
        removed
    }

    /// Replaces every user at once (ACL LOAD, start-up); a missing `default` is created.
    pub fn replace_all(&self, new_users: Vec<User>) {
        let mut map: BTreeMap<Bytes, Arc<User>> = new_users
            .into_iter()
            .map(|u| (u.name.clone(), Arc::new(u)))
            .collect();
        map.entry(Bytes::from_static(b"default"))
            .or_insert_with(|| Arc::new(User::new_default()));
        *self.users.write() = map;
        self.epoch.fetch_add(1, Relaxed);
    }

    /// `CONFIG SET requirepass`: the default user's passwords become this one (none and
    /// `nopass` when empty), as Valkey does.
    pub fn set_default_password(&self, password: &[u8]) {
        let _writer = self.write.lock();
        let mut user = (*self.default_user()).clone();
        user.passwords.clear();
        if password.is_empty() {
            user.nopass = true;
        } else {
            user.nopass = false;
            user.passwords.push(user::hash_password(password));
        }
        user.finish();
        self.put(user);
    }
}

/// Whether a client that has not sent AUTH may run commands as `user` (the default user
/// when it is on and has `nopass`).
pub fn needs_no_auth(user: &User) -> bool {
    user.enabled && user.nopass
}

/// Makes `client` see the current version of its user (after SETUSER, LOAD ...).
#[inline]
pub fn refresh(server: &Server, client: &mut Client) {
    let epoch = server.acl.epoch();
    if epoch != client.acl_epoch {
        if Arc::ptr_eq(&client.user, &superuser()) {
            client.acl_epoch = epoch;
            return;
        }
        if let Some(user) = server.acl.get(&client.user.name) {
            client.user = user;
        }
        client.acl_epoch = epoch;
    }
}

/// Switches `client` to `user` (AUTH, HELLO AUTH, RESET).
pub fn attach(server: &Server, client: &mut Client, user: Arc<User>, authenticated: bool) {
    *client.shared.user.lock() = user.name.clone();
    client.user = user;
    client.acl_epoch = server.acl.epoch();
    client.authenticated = authenticated;
    client.ever_authenticated |= authenticated;
}

/// AUTH / HELLO AUTH: checks the credentials and authenticates the client as that user.
/// A failure is counted and logged (object: the command name as sent); nothing about the
/// password is ever logged.
pub fn authenticate(
    server: &Server,
    client: &mut Client,
    command: &Bytes,
    username: &[u8],
    password: &[u8],
    now_ms: i64,
) -> Result<(), CmdError> {
    match server.acl.get(username) {
        Some(user) if user.enabled && user.password_matches(password) => {
            attach(server, client, user, true);
            Ok(())
        }
        _ => {
            server.acl.denied.auth.fetch_add(1, Relaxed);
            record(
                server,
                client,
                log::Denied {
                    reason: "auth",
                    context: context_of(client),
                    object: command.clone(),
                    username: Bytes::copy_from_slice(username),
                    client_info: String::new(),
                },
                now_ms,
            );
            Err(WRONGPASS)
        }
    }
}

/// A TLS client whose certificate names users (`tls-auth-clients-user`, the names from its
/// CN or URI SAN): logged in, with no password asked, as the first that is an existing,
/// enabled user. When none is, the client stays as it was (it must AUTH as usual), and the
/// miss is counted (`acl_access_denied_tls_cert`) and logged with reason `tls-cert`.
/// Returns whether the client was logged in.
pub fn login_with_certificate(server: &Server, client: &mut Client, names: &[String]) -> bool {
    for name in names {
        if let Some(user) = server.acl.get(name.as_bytes())
            && user.enabled
        {
            attach(server, client, user, true);
            return true;
        }
    }
    server.acl.denied.tls_cert.fetch_add(1, Relaxed);
    let username = names.first().map(|n| Bytes::copy_from_slice(n.as_bytes()));
    record(
        server,
        client,
        log::Denied {
            reason: "tls-cert",
            context: "toplevel",
            object: Bytes::new(),
            username: username.unwrap_or_default(),
            client_info: String::new(),
        },
        ferrokv_store::clock::now_ms(),
    );
    false
}

fn context_of(client: &Client) -> &'static str {
    if client.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    }
}

/// Adds a denial to ACL LOG, with the client's CLIENT LIST line.
fn record(server: &Server, client: &Client, denied: log::Denied, now_ms: i64) {
    record_shown(server, client, &client.shared, denied, now_ms);
}

/// Adds a denial to ACL LOG with `shown`'s CLIENT LIST line (a script's caller) and the
/// log length of `client`'s configuration.
fn record_shown(
    server: &Server,
    client: &Client,
    shown: &ClientShared,
    mut denied: log::Denied,
    now_ms: i64,
) {
    denied.client_info = crate::cmd::client::client_info(shown, now_ms);
    let max_len = client.config.acllog_max_len.max(0) as usize;
    server.acl.log.lock().add(denied, now_ms, max_len);
}

/// The check dispatch runs before a command (queued or not). A denial is counted, logged
/// and answered with Valkey's NOPERM text.
#[inline]
pub fn authorize(
    server: &Server,
    client: &Client,
    entry: &'static TableEntry,
    args: &[Bytes],
) -> Result<(), CmdError> {
    // Commands a client may send before authenticating (AUTH, HELLO ...) are never refused.
    if client.user.unrestricted || entry.spec.flags & crate::spec::flag::NO_AUTH != 0 {
        return Ok(());
    }
    let Some(denial) = check_client(server, client, entry, args) else {
        return Ok(());
    };
    note_denial(server, client, entry, args, &denial);
    Err(noperm(&client.user, entry, &denial))
}

/// EXEC re-checks each queued command: the user's rules may have changed since it was
/// queued (Valkey's text names the reason).
pub fn authorize_queued(
    server: &Server,
    client: &Client,
    entry: &'static TableEntry,
    args: &[Bytes],
) -> Result<(), CmdError> {
    if client.user.unrestricted || entry.spec.flags & crate::spec::flag::NO_AUTH != 0 {
        return Ok(());
    }
    let Some(denial) = check_client(server, client, entry, args) else {
        return Ok(());
    };
    note_denial(server, client, entry, args, &denial);
    let reason = match denial {
        Denial::Command => "no permission to execute the command or subcommand",
        Denial::Key(_) => "no permission to touch the specified keys",
        Denial::Channel(_) => "no permission to access one of the channels used as arguments",
        Denial::Db(_) => "no permission",
    };
    Err(CmdError::new(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
    )))
}

/// The denial, if the client's user may not run the command.
fn check_client(
    server: &Server,
    client: &Client,
    entry: &TableEntry,
    args: &[Bytes],
) -> Option<Denial> {
    let place = Place {
        db: client.db,
        databases: server.keyspace.databases(),
    };
    check::check_command(&client.user, entry, args, place).err()
}

fn note_denial(
    server: &Server,
    client: &Client,
    entry: &TableEntry,
    args: &[Bytes],
    denial: &Denial,
) {
    // CLIENT LIST shows the refused command as the client's last one, as Valkey does.
    client.shared.last_command.store(entry.id + 1, Relaxed);
    note_denial_of(
        server,
        client,
        &client.shared,
        context_of(client),
        entry,
        args,
        denial,
    );
}

/// Counts a denial and logs it for `user_client`'s user, with `shown`'s CLIENT LIST line
/// (the caller of a script, when the script's own client was refused).
fn note_denial_of(
    server: &Server,
    user_client: &Client,
    shown: &ClientShared,
    context: &'static str,
    entry: &TableEntry,
    args: &[Bytes],
    denial: &Denial,
) {
    let now_ms = ferrokv_store::clock::now_ms();
    let counters = &server.acl.denied;
    let (counter, object) = match denial {
        Denial::Command => (&counters.command, Bytes::from(entry.full_name.clone())),
        Denial::Key(i) => (&counters.key, args[*i].clone()),
        Denial::Channel(i) => (&counters.channel, args[*i].clone()),
        Denial::Db(object) => (&counters.db, object.clone()),
    };
    counter.fetch_add(1, Relaxed);
    let denied = log::Denied {
        reason: denial.reason(),
        context,
        object,
        username: user_client.user.name.clone(),
        client_info: String::new(),
    };
    record_shown(server, user_client, shown, denied, now_ms);
}

/// `redis.call` from a script: the script's client runs as the caller's user, and a
/// denial is Valkey's "ACL failure in script" error, logged with context `lua` and the
/// caller's CLIENT LIST line.
pub fn authorize_in_script(
    server: &Server,
    script_client: &Client,
    caller: &ClientShared,
    entry: &'static TableEntry,
    args: &[Bytes],
) -> Result<(), String> {
    if script_client.user.unrestricted {
        return Ok(());
    }
    let Some(denial) = check_client(server, script_client, entry, args) else {
        return Ok(());
    };
    note_denial_of(server, script_client, caller, "lua", entry, args, &denial);
    let text = noperm(&script_client.user, entry, &denial).0;
    let reason = text.strip_prefix("NOPERM ").unwrap_or(&text);
    Err(format!("ERR ACL failure in script: {reason}"))
}

/// Whether the client's user may run this command reading any key of the database (see
/// [`check::may_read_every_key`]). A client without a user in Valkey (the primary's link, the
/// AOF loader) may.
pub fn may_read_every_key(
    server: &Server,
    client: &Client,
    entry: &TableEntry,
    args: &[Bytes],
) -> bool {
    let place = Place {
        db: client.db,
        databases: server.keyspace.databases(),
    };
    client.must_obey || check::may_read_every_key(&client.user, entry, args, place)
}

/// `server.acl_check_cmd`: whether the script's user may run the command with these
/// arguments (nothing is counted or logged).
pub fn script_may_run(
    server: &Server,
    script_client: &Client,
    entry: &'static TableEntry,
    args: &[Bytes],
) -> bool {
    script_client.user.unrestricted || check_client(server, script_client, entry, args).is_none()
}

/// The NOPERM error a refused command gets.
pub fn noperm(user: &User, entry: &TableEntry, denial: &Denial) -> CmdError {
    match denial {
        Denial::Command => CmdError::new(format!(
            "NOPERM User {} has no permissions to run the '{}' command",
            String::from_utf8_lossy(&user.name),
            entry.full_name
        )),
        Denial::Key(_) => CmdError::new("NOPERM No permissions to access a key"),
        Denial::Channel(_) => CmdError::new("NOPERM No permissions to access a channel"),
        Denial::Db(_) => CmdError::new("NOPERM No permissions to access database"),
    }
}

/// ACL DRYRUN's description of a denial.
pub fn dryrun_text(user: &User, entry: &TableEntry, args: &[Bytes], denial: &Denial) -> String {
    let name = String::from_utf8_lossy(&user.name);
    let arg = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
    match denial {
        Denial::Command => format!(
            "User {name} has no permissions to run the '{}' command",
            entry.full_name
        ),
        Denial::Key(i) => format!(
            "User {name} has no permissions to access the '{}' key",
            arg(*i)
        ),
        Denial::Channel(i) => format!(
            "User {name} has no permissions to access the '{}' channel",
            arg(*i)
        ),
        Denial::Db(object) => format!(
            "User {name} has no permissions to access database {}",
            String::from_utf8_lossy(object)
        ),
    }
}

/// Disconnects the clients authenticated as any of `names` (DELUSER, ACL LOAD); the
/// calling client, if among them, is closed once its reply is written.
pub fn kill_clients_of(server: &Server, me: &mut Client, names: &[Bytes]) {
    for client in server.clients.all() {
        let user = client.user.lock().clone();
        if !names.contains(&user) {
            continue;
        }
        if client.id == me.id {
            me.close_after_reply = true;
        } else {
            client.kill();
        }
    }
}

/// After a user's channel permissions changed: its clients subscribed to something the
/// new rules no longer allow are disconnected, as Valkey does.
pub fn kill_unauthorized_subscribers(server: &Server, user: &User) {
    for (client, channel, is_pattern) in server.pubsub.subscriptions() {
        if *client.user.lock() == user.name && !user_channel_allowed(user, &channel, is_pattern) {
            client.kill();
        }
    }
}

/// The user of the clients that replay what was already accepted (an AOF being loaded, a
/// replica's link to its primary): allowed everything, whatever the ACL says (Valkey runs
/// them with no user). Not in the ACL, so ACL changes never reach it.
pub fn superuser() -> Arc<User> {
    static SUPERUSER: std::sync::LazyLock<Arc<User>> = std::sync::LazyLock::new(|| {
        Arc::new(User::allowed_everything(Bytes::from_static(b"(superuser)")))
    });
    SUPERUSER.clone()
}

/// What a `Client` holds until the connection attaches it to the default user.
pub fn placeholder_user() -> Arc<User> {
    static PLACEHOLDER: std::sync::LazyLock<Arc<User>> =
        std::sync::LazyLock::new(|| Arc::new(User::new(Bytes::from_static(b"default"), false)));
    PLACEHOLDER.clone()
}

/// A new connection runs as the default user, authenticated when that needs no password.
pub fn attach_new_client(server: &Server, client: &mut Client) {
    attach_default(server, client);
}

/// Back to the default user (new connection, RESET).
pub fn attach_default(server: &Server, client: &mut Client) {
    let user = server.acl.default_user();
    let authenticated = needs_no_auth(&user);
    attach(server, client, user, authenticated);
}

static REQUIREPASS_TARGET: RwLock<Option<std::sync::Weak<Server>>> = RwLock::new(None);

/// Makes CONFIG SET requirepass update the default user of `server` (Valkey's behaviour:
/// the password replaces the default user's passwords; empty means `nopass`).
pub fn install_requirepass_hook(server: &Arc<Server>) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    *REQUIREPASS_TARGET.write() = Some(Arc::downgrade(server));
    REGISTER.call_once(|| {
        ferrokv_config::hooks::on_change("requirepass", |config| {
            let target = REQUIREPASS_TARGET.read().as_ref().and_then(|w| w.upgrade());
            if let Some(server) = target {
                server
                    .acl
                    .set_default_password(config.requirepass.as_bytes());
            }
            Ok(())
        });
    });
}
