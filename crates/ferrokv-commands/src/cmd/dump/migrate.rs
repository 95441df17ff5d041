//! MIGRATE: DUMP the keys, RESTORE them on another instance, and delete them here once the
//! target acknowledged each, as Valkey 9.1's `migrateCommand` does (cluster.c).
//!
//! **Atomicity.** Valkey blocks its whole server for the transfer, so no client ever sees a
//! key both here and not yet acknowledged there, or changes it between the DUMP and the
//! delete. ferrokv keeps that guarantee by holding the shards of the migrated keys from the
//! lookup to the delete, network I/O included (each wait bounded by the timeout): releasing
//! them during the transfer would let a write land between the DUMP and the delete and be
//! lost. Keys of other shards are not held up, nor are the other workers, unless they run
//! a command on one of those shards; the worker running MIGRATE is blocked for the transfer,
//! as Valkey's event loop is.
//!
//! **What the target receives** (all written before any reply is read): `AUTH [user] pass`
//! when asked, `SELECT db` unless the cached connection already has that database selected,
//! then `RESTORE key ttl payload [REPLACE]` per key, the TTL relative in milliseconds (0 for
//! none, never ABSTTL). In cluster mode Valkey sends RESTORE-ASKING instead, to be done with
//! cluster mode.

use std::borrow::Cow::Borrowed;
use std::time::Duration;

use bytes::Bytes;
use ferrokv_rdb::dump as payload;
use ferrokv_store::NO_EXPIRE;
use ferrokv_store::events::class;

use crate::cmd::args;
use crate::context::{CmdError, CmdResult, Ctx, errors};
use crate::migrate::{ConnectError, Failure, Target, UNKNOWN_DB};
use crate::propagate::encode;
use crate::spec::{
    ArgList, BeginSearch, CommandSpec, FindKeys, KeySpec, KeysProc, category as cat, flag,
    key_flag as kf,
};

const KEY_FLAGS: u32 = kf::RW | kf::ACCESS | kf::DELETE;

const KEYS_NEED_EMPTY_KEY: CmdError = CmdError(Borrowed(
    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
));
const IOERR_CONNECTING: CmdError =
    CmdError(Borrowed("IOERR error or timeout connecting to the client"));
const IOERR_WRITING: CmdError = CmdError(Borrowed(
    "IOERR error or timeout writing to target instance",
));
const IOERR_READING: CmdError = CmdError(Borrowed(
    "IOERR error or timeout reading to target instance",
));

/// Valkey's default when the timeout argument is not positive.
const DEFAULT_TIMEOUT_MS: i64 = 1000;

pub const SPEC: CommandSpec = CommandSpec::new("migrate", -6, "generic")
    .flags(flag::WRITE)
    .categories(cat::KEYSPACE | cat::DANGEROUS)
    .keys(&[
        KeySpec::single(3, KEY_FLAGS),
        KeySpec {
            flags: KEY_FLAGS | kf::INCOMPLETE,
            begin: BeginSearch::Keyword {
                keyword: "KEYS",
                start_from: -2,
            },
            find: FindKeys::Range {
                last_key: -1,
                step: 1,
                limit: 0,
            },
        },
    ])
    .keys_proc(KeysProc {
        reported: migrate_keys,
        touched: Some(touched_keys),
    })
    .tips(&["nondeterministic_output"])
    .doc(
        "2.6.0",
        "Atomically transfers a key from one instance to another.",
        "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed.",
    )
    .handler(migrate);

/// The keys as Valkey finds them (COMMAND GETKEYS, ACL): by the key specs while they
/// suffice; once the incomplete KEYS spec matches (KEYS searched backwards from the
/// second-to-last argument), by `migrateGetKeys`, which skips the arguments of AUTH and
/// AUTH2 and finds no key at all when KEYS comes with a non-empty key argument.
fn migrate_keys(args: &dyn ArgList, found: &mut dyn FnMut(usize, u32)) {
    let argc = args.argc();
    let keyword_spec_matches =
        (1..argc.saturating_sub(1)).any(|i| args.arg(i).eq_ignore_ascii_case(b"keys"));
    let (mut first, mut count) = (3, 1);
    if keyword_spec_matches && argc > 6 {
        let mut i = 6;
        while i < argc {
            let arg = args.arg(i);
            if arg.eq_ignore_ascii_case(b"keys") {
                if !args.arg(3).is_empty() {
                    return;
                }
                first = i + 1;
                count = argc - first;
                break;
            }
            if arg.eq_ignore_ascii_case(b"auth") {
                i += 1;
            } else if arg.eq_ignore_ascii_case(b"auth2") {
                i += 2;
            }
            i += 1;
        }
    }
    for pos in (first..first + count).take_while(|&pos| pos < argc) {
        found(pos, KEY_FLAGS);
    }
}

/// What the command touches is what Valkey reports: where its own parsing would read the
/// keys differently, it fails with a syntax error before touching any.
fn touched_keys(args: &dyn ArgList, found: &mut dyn FnMut(usize, u32)) -> bool {
    migrate_keys(args, found);
    true
}

/// The arguments, checked in Valkey's order: options (syntax, KEYS with a key), then the
/// timeout, then the database.
struct Request<'a> {
    copy: bool,
    replace: bool,
    username: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
    keys: &'a [Bytes],
    db: i64,
    timeout: Duration,
}

fn parse(args: &[Bytes]) -> Result<Request<'_>, CmdError> {
    let mut request = Request {
        copy: false,
        replace: false,
        username: None,
        password: None,
        keys: &args[3..4],
        db: 0,
        timeout: Duration::ZERO,
    };
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let arg = &args[j];
        if args::is(arg, "copy") {
            request.copy = true;
        } else if args::is(arg, "replace") {
            request.replace = true;
        } else if args::is(arg, "auth") {
            if more == 0 {
                return Err(errors::SYNTAX);
            }
            j += 1;
            request.password = Some(&args[j][..]);
        } else if args::is(arg, "auth2") {
            if more < 2 {
                return Err(errors::SYNTAX);
            }
            request.username = Some(&args[j + 1][..]);
            request.password = Some(&args[j + 2][..]);
            j += 2;
        } else if args::is(arg, "keys") {
            if !args[3].is_empty() {
                return Err(KEYS_NEED_EMPTY_KEY);
            }
            request.keys = &args[j + 1..];
            break;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    let timeout = match args::int(&args[5])? {
        ms if ms <= 0 => DEFAULT_TIMEOUT_MS,
        ms => ms,
    };
    request.timeout = Duration::from_millis(timeout as u64);
    request.db = args::int(&args[4])?;
    Ok(request)
}

/// `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
/// [AUTH password | AUTH2 username password] [KEYS key [key ...]]`
fn migrate(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let request = parse(args)?;
    let db = ctx.db();
    let mut locked = ctx.lock(request.keys);

    // Serialized while the keys are looked up: the shards stay locked, so nothing changes
    // before the deletes.
    let mut any_found = false;
    let mut restores = Vec::new();
    let mut sent: Vec<&Bytes> = Vec::new();
    for key in request.keys {
        let Some(entry) = ctx.read(&mut locked, key) else {
            continue;
        };
        any_found = true;
        let ttl = if entry.expire_at == NO_EXPIRE {
            0
        } else {
            match entry.expire_at - ctx.now_ms {
                ttl if ttl < 0 => continue,
                ttl => ttl.max(1),
            }
        };
        let dumped = payload::dump(&entry.value, ctx.client.config.rdbcompression);
        let ttl = itoa::Buffer::new().format(ttl).as_bytes().to_vec();
        let mut restore: Vec<&[u8]> = vec![b"RESTORE", key, &ttl, &dumped];
        if request.replace {
            restore.push(b"REPLACE");
        }
        encode(&mut restores, &restore);
        sent.push(key);
    }
    if !any_found {
        drop(locked);
        ctx.reply.simple("NOKEY");
        return Ok(());
    }

    let (host, port) = (&args[1], &args[2]);
    let name = [&host[..], b":", &port[..]].concat();
    let cache = &ctx.server.migrate_sockets;
    let timeout = request.timeout;
    let mut may_retry = true;
    let mut deleted: Vec<&Bytes> = Vec::new();
    let mut removed = Vec::new();
    // Valkey's `try_again` loop: a failure other than a timeout before any RESTORE was
    // acknowledged (typically a cached connection the target closed) is retried once on a
    // new connection.
    let outcome = loop {
        let mut target = match cache.take(&name) {
            Some(target) => target,
            None => match Target::connect(host, port, timeout) {
                Ok(target) => target,
                Err(ConnectError::Unresolved) => break Err(IOERR_CONNECTING),
                Err(ConnectError::Failed(failure)) => {
                    if retry(failure, &mut may_retry) {
                        continue;
                    }
                    break Err(IOERR_WRITING);
                }
            },
        };
        let select = target.last_db != request.db;
        let mut head = Vec::new();
        if let Some(password) = request.password {
            match request.username {
                Some(user) => encode(&mut head, &[b"AUTH", user, password]),
                None => encode(&mut head, &[b"AUTH", password]),
            }
        }
        if select {
            let db_text = itoa::Buffer::new().format(request.db).as_bytes().to_vec();
            encode(&mut head, &[&b"SELECT"[..], &db_text]);
        }
        let written = target
            .write_all(&head, timeout)
            .and_then(|()| target.write_all(&restores, timeout));
        if let Err(failure) = written {
            drop(target);
            if retry(failure, &mut may_retry) {
                continue;
            }
            break Err(IOERR_WRITING);
        }
        let head = read_reply_if(&mut target, request.password.is_some(), timeout)
            .and_then(|auth| Ok((auth, read_reply_if(&mut target, select, timeout)?)));
        let (auth_reply, select_reply) = match head {
            Ok(replies) => replies,
            Err(failure) => {
                drop(target);
                if retry(failure, &mut may_retry) {
                    continue;
                }
                break Err(IOERR_READING);
            }
        };
        let head_error = [&auth_reply, &select_reply]
            .into_iter()
            .flatten()
            .find(|line| line.first() == Some(&b'-'));
        let mut target_error = None;
        let mut socket_error = None;
        let mut acknowledged = 0;
        for key in &sent {
            let line = match target.read_line(timeout) {
                Ok(line) => line,
                Err(failure) => {
                    socket_error = Some(failure);
                    break;
                }
            };
            acknowledged += 1;
            let error = head_error.or((line.first() == Some(&b'-')).then_some(&line));
            if let Some(error) = error {
                if target_error.is_none() {
                    target.last_db = UNKNOWN_DB;
                    target_error = Some(replied_error(error));
                }
            } else if !request.copy {
                removed.extend(locked.db(db, key).remove(key));
                ctx.notify(class::GENERIC, "del", key);
                deleted.push(key);
            }
        }
        if let Some(failure) = socket_error {
            drop(target);
            if target_error.is_none() && acknowledged == 0 && retry(failure, &mut may_retry) {
                continue;
            }
        } else {
            if target_error.is_none() {
                target.last_db = request.db;
            }
            cache.put(name.clone(), target);
        }
        break match (target_error, socket_error) {
            (Some(error), _) => Err(error),
            (None, Some(_)) => Err(IOERR_READING),
            (None, None) => Ok(()),
        };
    };

    if !deleted.is_empty() {
        // Replicas and the AOF see the acknowledged keys deleted, with DEL whatever
        // `lazyfree-lazy-server-del` says, as Valkey rewrites MIGRATE.
        let mut del = Vec::with_capacity(deleted.len() + 1);
        del.push(Bytes::from_static(b"DEL"));
        del.extend(deleted.iter().map(|key| (*key).clone()));
        ctx.propagate_as(del);
        ctx.add_dirty(deleted.len() as u64);
    }
    drop(locked);
    drop(removed);
    outcome?;
    ctx.reply.ok();
    Ok(())
}

/// The next reply line when a command was sent for it.
fn read_reply_if(
    target: &mut Target,
    sent: bool,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, Failure> {
    sent.then(|| target.read_line(timeout)).transpose()
}

/// Whether to try again on a new connection after `failure` (once, never after a timeout).
fn retry(failure: Failure, may_retry: &mut bool) -> bool {
    let again = *may_retry && !failure.timed_out;
    *may_retry = false;
    again
}

/// "Target instance replied with error: ..." with the reply line after its `-`, which is a
/// C string in Valkey (it ends at a NUL).
fn replied_error(line: &[u8]) -> CmdError {
    let text = line[1..].split(|&b| b == 0).next().unwrap_or_default();
    CmdError::err(format!(
        "Target instance replied with error: {}",
        String::from_utf8_lossy(text)
    ))
}
