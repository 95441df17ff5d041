//! The filters of CLIENT LIST and CLIENT KILL, with Valkey 9.1's grammar: every criterion
//! (`NAME x`, `DB 3` ...) has a negated form (`NOT-NAME x`, `NOT-DB 3` ...). A client is
//! chosen when it meets every criterion given and none of the negated ones; `ID` and
//! `NOT-ID` take one or more ids and add up when repeated, any other criterion given twice
//! keeps its last value.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use crate::client::{ClientShared, flags};
use crate::cmd::args;
use crate::context::{CmdError, Ctx, errors};

/// What kind of connection a client is, for TYPE filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Primary,
    Replica,
    PubSub,
}

/// Replication connections are marked by their flags: a replica's connection here (`S`),
/// and on a replica the link to its primary (`M`); a subscribed client is of the pubsub
/// kind whatever its protocol, a MONITOR client a normal one (as in Valkey).
fn client_type(client: &ClientShared) -> ClientType {
    let bits = client.flags();
    if bits & flags::PRIMARY != 0 {
        ClientType::Primary
    } else if bits & flags::REPLICA != 0 {
        ClientType::Replica
    } else if bits & flags::PUBSUB != 0 {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

/// Letters FLAGS and NOT-FLAGS accept (those CLIENT LIST can print).
const KNOWN_FLAG_LETTERS: &[u8] = b"SOMPxbtRBdcuAUreTIN";
/// Letters CAPA and NOT-CAPA accept: `r`, CLIENT CAPA REDIRECT.
const KNOWN_CAPA_LETTERS: &[u8] = b"r";

/// One side of a filter: the criteria given plainly, or those given with `NOT-`.
#[derive(Default)]
struct Criteria {
    /// An empty list (`ID` followed by no number) matches no client.
    ids: Option<Vec<u64>>,
    kind: Option<ClientType>,
    /// USER: clients authenticated as this user.
    user: Option<Bytes>,
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    ip: Option<Bytes>,
    /// Every letter must be among the client's flags (so an empty value matches everyone).
    flags: Option<Bytes>,
    capa: Option<Bytes>,
    /// NAME, LIB-NAME, LIB-VER: a client that never set one matches no value, not even "".
    name: Option<Bytes>,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
    db: Option<usize>,
}

impl Criteria {
    /// The outcome of each criterion given, for `c`.
    fn outcomes(&self, c: &ClientShared) -> impl Iterator<Item = bool> {
        let set = |wanted: &Option<Bytes>, slot: &parking_lot::Mutex<Option<Bytes>>| {
            wanted
                .as_ref()
                .map(|w| slot.lock().as_ref().is_some_and(|have| have == w))
        };
        let letters = |wanted: &Option<Bytes>, have: &[u8]| {
            wanted
                .as_ref()
                .map(|w| w.iter().all(|letter| have.contains(letter)))
        };
        let capa: &[u8] = if c.capa_redirect.load(Relaxed) {
            b"r"
        } else {
            b""
        };
        [
            self.ids.as_ref().map(|ids| ids.contains(&c.id)),
            self.kind.map(|kind| kind == client_type(c)),
            self.user.as_ref().map(|user| *user == *c.user.lock()),
            self.addr.as_ref().map(|addr| addr == c.addr.as_bytes()),
            self.laddr.as_ref().map(|laddr| laddr == c.laddr.as_bytes()),
            self.ip.as_ref().map(|ip| ip == ip_of(&c.addr).as_bytes()),
            letters(&self.flags, c.flag_letters().as_bytes()),
            letters(&self.capa, capa),
            set(&self.name, &c.name),
            set(&self.lib_name, &c.lib_name),
            set(&self.lib_ver, &c.lib_ver),
            self.db.map(|db| db == c.db.load(Relaxed)),
        ]
        .into_iter()
        .flatten()
    }
}

/// A parsed CLIENT LIST / CLIENT KILL filter.
pub struct Filter {
    wanted: Criteria,
    unwanted: Criteria,
    skip_me: bool,
    /// Seconds: only clients at least this old (MAXAGE), or idle this long (IDLE).
    max_age: Option<i64>,
    idle: Option<i64>,
}

impl Filter {
    /// Parses `args` (the words after LIST or KILL). `skip_me` is the SKIPME default:
    /// KILL spares the caller unless told otherwise, LIST shows it.
    pub fn parse(ctx: &Ctx, args: &[Bytes], skip_me: bool) -> Result<Filter, CmdError> {
        let mut filter = Filter {
            wanted: Criteria::default(),
            unwanted: Criteria::default(),
            skip_me,
            max_age: None,
            idle: None,
        };
        let mut i = 0;
        while i < args.len() {
            let word = &args[i];
            let (negated, option) = match word.get(..4) {
                Some(prefix) if prefix.eq_ignore_ascii_case(b"not-") => (true, &word[4..]),
                _ => (false, &word[..]),
            };
            i += 1;
            if args::is(option, "id") {
                // Takes every number that follows, possibly none.
                let ids = filter.side(negated).ids.get_or_insert_with(Vec::new);
                while let Some(n) = args
                    .get(i)
                    .and_then(|a| ferrokv_protocol::number::parse_i64(a))
                {
                    if n <= 0 {
                        return Err(CmdError::err("client-id should be greater than 0"));
                    }
                    ids.push(n as u64);
                    i += 1;
                }
                continue;
            }
            let Some(value) = args.get(i) else {
                return Err(errors::SYNTAX);
            };
            i += 1;
            if !negated && args::is(option, "skipme") {
                filter.skip_me = if args::is(value, "yes") {
                    true
                } else if args::is(value, "no") {
                    false
                } else {
                    return Err(errors::SYNTAX);
                };
            } else if !negated && args::is(option, "maxage") {
                filter.max_age = Some(seconds(value, "maxage")?);
            } else if !negated && args::is(option, "idle") {
                filter.idle = Some(seconds(value, "idle")?);
            } else if args::is(option, "type") {
                filter.side(negated).kind = Some(parse_type(value)?);
            } else if args::is(option, "user") {
                if ctx.server.acl.get(value).is_none() {
                    return Err(CmdError::err(format!(
                        "No such user '{}'",
                        String::from_utf8_lossy(value)
                    )));
                }
                filter.side(negated).user = Some(value.clone());
            } else if args::is(option, "addr") {
                filter.side(negated).addr = Some(value.clone());
            } else if args::is(option, "laddr") {
                filter.side(negated).laddr = Some(value.clone());
            } else if args::is(option, "ip") {
                filter.side(negated).ip = Some(value.clone());
            } else if args::is(option, "flags") {
                filter.side(negated).flags =
                    Some(letters(value, KNOWN_FLAG_LETTERS, "flags", negated)?);
            } else if args::is(option, "capa") {
                filter.side(negated).capa =
                    Some(letters(value, KNOWN_CAPA_LETTERS, "capa", negated)?);
            } else if args::is(option, "name") {
                filter.side(negated).name = Some(value.clone());
            } else if args::is(option, "lib-name") {
                filter.side(negated).lib_name = Some(value.clone());
            } else if args::is(option, "lib-ver") {
                filter.side(negated).lib_ver = Some(value.clone());
            } else if args::is(option, "db") {
                let label = if negated { "NOT-DB" } else { "DB" };
                let db = ferrokv_protocol::number::parse_i64(value).ok_or_else(|| {
                    CmdError::err(format!("{label} is not an integer or out of range"))
                })?;
                let databases = ctx.server.keyspace.databases();
                if db < 0 || db >= databases as i64 {
                    return Err(CmdError::err(format!(
                        "{label} number should be between 0 and {}",
                        databases - 1
                    )));
                }
                filter.side(negated).db = Some(db as usize);
            } else {
                return Err(errors::SYNTAX);
            }
        }
        Ok(filter)
    }

    fn side(&mut self, negated: bool) -> &mut Criteria {
        if negated {
            &mut self.unwanted
        } else {
            &mut self.wanted
        }
    }

    /// Whether `c` is chosen; `me` is the caller's id, `now_ms` the time of the call.
    pub fn matches(&self, c: &ClientShared, me: u64, now_ms: i64) -> bool {
        if self.skip_me && c.id == me {
            return false;
        }
        let age = (now_ms - c.created_ms) / 1000;
        let idle = (now_ms - c.last_interaction_ms.load(Relaxed)) / 1000;
        if self.max_age.is_some_and(|m| age < m) || self.idle.is_some_and(|m| idle < m) {
            return false;
        }
        self.wanted.outcomes(c).all(|met| met) && !self.unwanted.outcomes(c).any(|met| met)
    }
}

/// A MAXAGE or IDLE value: whole seconds, at least 1.
fn seconds(arg: &[u8], what: &str) -> Result<i64, CmdError> {
    let n = ferrokv_protocol::number::parse_i64(arg)
        .ok_or_else(|| CmdError::err(format!("{what} is not an integer or out of range")))?;
    if n <= 0 {
        return Err(CmdError::err(format!("{what} should be greater than 0")));
    }
    Ok(n)
}

/// A FLAGS or CAPA value (`what`): letters from `known` (none at all is allowed, and
/// matches all).
fn letters(value: &Bytes, known: &[u8], what: &str, negated: bool) -> Result<Bytes, CmdError> {
    if value.iter().all(|letter| known.contains(letter)) {
        return Ok(value.clone());
    }
    let filter = if negated {
        format!("the NOT-{} filter", what.to_ascii_uppercase())
    } else {
        "the provided filter".to_string()
    };
    Err(CmdError::err(format!(
        "Unknown {what} found in {filter}: {}",
        String::from_utf8_lossy(value)
    )))
}

fn parse_type(arg: &[u8]) -> Result<ClientType, CmdError> {
    let lower = arg.to_ascii_lowercase();
    match &lower[..] {
        b"normal" => Ok(ClientType::Normal),
        b"master" | b"primary" => Ok(ClientType::Primary),
        b"replica" | b"slave" => Ok(ClientType::Replica),
        b"pubsub" => Ok(ClientType::PubSub),
        _ => Err(CmdError::err(format!(
            "Unknown client type '{}'",
            String::from_utf8_lossy(arg)
        ))),
    }
}

/// The address without its port (`1.2.3.4`, `::1`).
fn ip_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_without_port() {
        assert_eq!(ip_of("127.0.0.1:6379"), "127.0.0.1");
        assert_eq!(ip_of("[::1]:6379"), "::1");
    }

    #[test]
    fn flag_and_capa_letters() {
        let check = |v: &'static [u8]| {
            letters(&Bytes::from_static(v), KNOWN_FLAG_LETTERS, "flags", true).map_err(|e| e.0)
        };
        assert!(check(b"").is_ok());
        assert!(check(b"Nx").is_ok());
        assert_eq!(
            check(b"NZ").err().as_deref(),
            Some("ERR Unknown flags found in the NOT-FLAGS filter: NZ")
        );
    }
}
