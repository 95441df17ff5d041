//! The ACL SETUSER rule grammar, applied to a user (Valkey's rules, errors and compaction).

use std::collections::BTreeSet;

use bytes::Bytes;

use super::user::{KeyPattern, PasswordHash, Selector, User, hash_password};
use crate::context::CmdError;
use crate::spec::category;
use crate::table::{TABLE, TableEntry};

/// Why one rule was refused; the texts are Valkey's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    Unknown,
    Syntax,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSubcommand,
    DbOutOfRange,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::FirstArgOfSubcommand => {
                "Allowing first-arg of a subcommand is not supported"
            }
            RuleError::DbOutOfRange => "The provided database ID is out of range",
        }
    }
}

/// Groups the arguments of ACL SETUSER (or of a `user` line) into rules: a selector written
/// over several arguments, `(~a` `+get)`, becomes one rule `(~a +get)`.
pub fn merge_selectors(args: &[Bytes]) -> Result<Vec<Bytes>, CmdError> {
    merge_selectors_at(args).map_err(|open| {
        CmdError::err(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(&args[open])
        ))
    })
}

/// [`merge_selectors`], failing with the position of the argument that opens a selector
/// never closed.
pub fn merge_selectors_at(args: &[Bytes]) -> Result<Vec<Bytes>, usize> {
    let mut rules = Vec::with_capacity(args.len());
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.first() == Some(&b'(') && arg.last() != Some(&b')') {
            let open = i;
            let mut merged = arg.to_vec();
            let mut closed = false;
            for next in &args[i + 1..] {
                i += 1;
                merged.push(b' ');
                merged.extend_from_slice(next);
                if next.last() == Some(&b')') {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(open);
            }
            rules.push(Bytes::from(merged));
        } else {
            rules.push(arg.clone());
        }
        i += 1;
    }
    Ok(rules)
}

/// Applies ACL SETUSER's rules to `user` in order; on the first refused rule, returns
/// Valkey's error for it (the caller keeps the unchanged user: SETUSER is all or nothing).
pub fn apply_rules(user: &mut User, args: &[Bytes], all_channels: bool) -> Result<(), CmdError> {
    for rule in merge_selectors(args)? {
        apply_rule(user, &rule, all_channels).map_err(|e| {
            CmdError::err(format!(
                "Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(&rule),
                e.text()
            ))
        })?;
    }
    user.finish();
    Ok(())
}

/// Applies one rule (a whole parenthesised selector counts as one).
pub fn apply_rule(user: &mut User, op: &[u8], all_channels: bool) -> Result<(), RuleError> {
    let lower = op.to_ascii_lowercase();
    match &lower[..] {
        b"on" => user.enabled = true,
        b"off" => user.enabled = false,
        b"nopass" => {
            user.nopass = true;
            user.passwords.clear();
        }
        b"resetpass" => {
            user.nopass = false;
            user.passwords.clear();
        }
        b"clearselectors" => user.selectors.clear(),
        // Payload sanitizing applies to RESTORE, which ferrokv does not have yet; the flags
        // are accepted so that Valkey ACL files load.
        b"sanitize-payload" | b"skip-sanitize-payload" => {}
        b"reset" => {
            user.nopass = false;
            user.passwords.clear();
            user.enabled = false;
            user.selectors.clear();
            user.root = Selector::new(all_channels);
        }
        _ => match op.first() {
            Some(b'>') => add_password(user, hash_password(&op[1..])),
            Some(b'#') => add_password(user, parse_hash(&op[1..])?),
            Some(b'<') => remove_password(user, &hash_password(&op[1..]))?,
            Some(b'!') => remove_password(user, &parse_hash(&op[1..])?)?,
            Some(b'(') if op.last() == Some(&b')') => {
                let mut selector = Selector::new(all_channels);
                for inner in op[1..op.len() - 1].split(|&b| b == b' ') {
                    if !inner.is_empty() {
                        apply_selector_rule(&mut selector, inner)?;
                    }
                }
                user.selectors.push(selector);
            }
            _ => apply_selector_rule(&mut user.root, op)?,
        },
    }
    Ok(())
}

fn add_password(user: &mut User, hash: PasswordHash) {
    user.nopass = false;
    if !user.passwords.contains(&hash) {
        user.passwords.push(hash);
    }
}

fn remove_password(user: &mut User, hash: &PasswordHash) -> Result<(), RuleError> {
    let before = user.passwords.len();
    user.passwords.retain(|h| h != hash);
    if user.passwords.len() == before {
        return Err(RuleError::NoSuchPassword);
    }
    Ok(())
}

/// 64 lower-case hex digits.
fn parse_hash(text: &[u8]) -> Result<PasswordHash, RuleError> {
    if text.len() != 64 {
        return Err(RuleError::BadHash);
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(RuleError::BadHash),
    };
    let mut hash = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        hash[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Ok(hash)
}

/// The rules a selector understands: keys, channels, databases, commands.
fn apply_selector_rule(sel: &mut Selector, op: &[u8]) -> Result<(), RuleError> {
    let lower = op.to_ascii_lowercase();
    match &lower[..] {
        b"allkeys" | b"~*" => {
            sel.all_keys = true;
            sel.keys.clear();
        }
        b"resetkeys" => {
            sel.all_keys = false;
            sel.keys.clear();
        }
        b"allchannels" | b"&*" => {
            sel.all_channels = true;
            sel.channels.clear();
        }
        b"resetchannels" => {
            sel.all_channels = false;
            sel.channels.clear();
        }
        b"alldbs" => sel.dbs = None,
        b"resetdbs" => sel.dbs = Some(BTreeSet::new()),
        b"allcommands" | b"+@all" => set_all_commands(sel, true),
        b"nocommands" | b"-@all" => set_all_commands(sel, false),
        _ => match op.first() {
            Some(b'~' | b'%') => add_key_pattern(sel, op)?,
            Some(b'&') => {
                if sel.all_channels {
                    return Err(RuleError::ChannelAfterAll);
                }
                if has_spaces(&op[1..]) {
                    return Err(RuleError::Syntax);
                }
                let channel = Bytes::copy_from_slice(&op[1..]);
                if !sel.channels.contains(&channel) {
                    sel.channels.push(channel);
                }
            }
            Some(b'+' | b'-') => command_rule(sel, op[0] == b'+', &lower[1..])?,
            _ if lower.starts_with(b"db=") => sel.dbs = Some(parse_dbs(&op[3..])?),
            _ => return Err(RuleError::Syntax),
        },
    }
    Ok(())
}

fn parse_dbs(list: &[u8]) -> Result<BTreeSet<u32>, RuleError> {
    let mut dbs = BTreeSet::new();
    for id in list.split(|&b| b == b',') {
        let n = ferrokv_protocol::number::parse_i64(id).ok_or(RuleError::Syntax)?;
        if !(0..=i32::MAX as i64).contains(&n) {
            return Err(RuleError::DbOutOfRange);
        }
        dbs.insert(n as u32);
    }
    Ok(dbs)
}

/// `~pattern` (read and write), `%R~pattern`, `%W~pattern`, `%RW~pattern`.
fn add_key_pattern(sel: &mut Selector, op: &[u8]) -> Result<(), RuleError> {
    let (read, write, pattern) = if op[0] == b'%' {
        let tilde = op
            .iter()
            .position(|&b| b == b'~')
            .ok_or(RuleError::Syntax)?;
        let (mut read, mut write) = (false, false);
        for &flag in &op[1..tilde] {
            match flag.to_ascii_uppercase() {
                b'R' => read = true,
                b'W' => write = true,
                _ => return Err(RuleError::Syntax),
            }
        }
        if !read && !write {
            return Err(RuleError::Syntax);
        }
        (read, write, &op[tilde + 1..])
    } else {
        (true, true, &op[1..])
    };
    if sel.all_keys {
        return Err(RuleError::KeyAfterAll);
    }
    if has_spaces(pattern) {
        return Err(RuleError::Syntax);
    }
    match sel.keys.iter_mut().find(|k| k.pattern == pattern) {
        Some(existing) => {
            existing.read |= read;
            existing.write |= write;
        }
        None => sel.keys.push(KeyPattern {
            pattern: Bytes::copy_from_slice(pattern),
            read,
            write,
        }),
    }
    Ok(())
}

/// Key and channel patterns may not hold white space or NUL: ACL LIST and ACL files separate
/// rules with spaces, so such a pattern could not be written back (Valkey refuses them too).
fn has_spaces(pattern: &[u8]) -> bool {
    pattern
        .iter()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0))
}

fn set_all_commands(sel: &mut Selector, allow: bool) {
    sel.all_commands = allow;
    let fill = if allow { u64::MAX } else { 0 };
    sel.allowed.iter_mut().for_each(|w| *w = fill);
    sel.command_rules.clear();
    sel.first_args.clear();
}

/// `+name`, `-name`, `+@category`, `+command|subcommand`, `+command|first-arg`
/// (`name` already lower-case, without its sign).
fn command_rule(sel: &mut Selector, allow: bool, name: &[u8]) -> Result<(), RuleError> {
    if let Some(cat) = name.strip_prefix(b"@") {
        let bit = category::NAMES
            .iter()
            .position(|c| c.as_bytes() == cat)
            .ok_or(RuleError::Unknown)?;
        for entry in (0..TABLE.len()).map(|id| TABLE.entry(id)) {
            if entry.spec.acl_categories() & (1 << bit) != 0 {
                change_command(sel, entry, allow);
            }
        }
    } else if let Some(bar) = name.iter().position(|&b| b == b'|') {
        let command = TABLE.find(&name[..bar]).ok_or(RuleError::Unknown)?;
        let rest = &name[bar + 1..];
        if command.spec.subcommands.is_empty() {
            // A first argument of a plain command (`+select|0`): only allowing is possible.
            if rest.is_empty() {
                return Err(RuleError::Syntax);
            }
            if !allow || rest.contains(&b'|') {
                return Err(RuleError::Unknown);
            }
            add_first_arg(sel, command.id, rest);
        } else {
            if rest.contains(&b'|') {
                return Err(RuleError::FirstArgOfSubcommand);
            }
            let sub = TABLE.find_sub(command, rest).ok_or(RuleError::Unknown)?;
            sel.set_bit(sub.id, allow);
        }
    } else {
        let command = TABLE.find(name).ok_or(RuleError::Unknown)?;
        change_command(sel, command, allow);
    }
    record_rule(sel, allow, name);
    Ok(())
}

/// Allows or denies a command with all its subcommands, forgetting its allowed first args.
fn change_command(sel: &mut Selector, entry: &TableEntry, allow: bool) {
    sel.set_bit(entry.id, allow);
    sel.first_args.retain(|(id, _)| *id != entry.id);
    if entry.parent.is_none() {
        for sub in TABLE.subcommands_of(entry.id) {
            sel.set_bit(sub.id, allow);
        }
    }
}

fn add_first_arg(sel: &mut Selector, id: usize, arg: &[u8]) {
    let arg = Bytes::copy_from_slice(arg);
    match sel.first_args.iter_mut().find(|(cmd, _)| *cmd == id) {
        Some((_, args)) if args.contains(&arg) => {}
        Some((_, args)) => args.push(arg),
        None => sel.first_args.push((id, vec![arg])),
    }
}

/// Keeps the rule text compact as Valkey does: a rule replaces an earlier rule on the same
/// name (whatever its sign), and a whole-command rule also replaces the earlier rules on its
/// subcommands or first args.
fn record_rule(sel: &mut Selector, allow: bool, name: &[u8]) {
    let name = String::from_utf8_lossy(name).into_owned();
    let whole_command = !name.starts_with('@') && !name.contains('|');
    let sub_prefix = format!("{name}|");
    sel.command_rules.retain(|rule| {
        let body = &rule[1..];
        body != name && !(whole_command && body.starts_with(&sub_prefix))
    });
    sel.command_rules
        .push(format!("{}{name}", if allow { '+' } else { '-' }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_with(rules: &[&str]) -> Result<User, CmdError> {
        let mut user = User::new(Bytes::from_static(b"u"), false);
        let args: Vec<Bytes> = rules.iter().map(|r| Bytes::from(r.to_string())).collect();
        apply_rules(&mut user, &args, false)?;
        Ok(user)
    }

    fn line(rules: &[&str]) -> String {
        String::from_utf8(user_with(rules).unwrap().describe()).unwrap()
    }

    #[test]
    fn command_rules_compact_like_valkey() {
        assert_eq!(
            line(&["+@read", "+@write", "-@read", "+get", "-get", "+get"]),
            "user u off resetchannels -@all +@write -@read +get"
        );
        assert_eq!(
            line(&["-@all", "+config|get", "+config|set", "-config"]),
            "user u off resetchannels -@all -config"
        );
        assert_eq!(
            line(&["+get", "+set", "allcommands", "-@dangerous"]),
            "user u off resetchannels +@all -@dangerous"
        );
    }

    #[test]
    fn key_patterns_merge_flags() {
        assert_eq!(
            line(&["%R~a", "%W~b", "%RW~c", "%WR~d", "~e", "%R~e"]),
            "user u off %R~a %W~b ~c ~d ~e resetchannels -@all"
        );
        assert_eq!(
            line(&["%RW~*", "%R~b"]),
            "user u off ~* %R~b resetchannels -@all"
        );
        assert!(user_with(&["allkeys", "~x"]).is_err());
        assert!(user_with(&["%~x"]).is_err());
    }

    #[test]
    fn selectors_and_databases() {
        assert_eq!(
            line(&["db=3,1,2,1", "(~a", "+get)", "(db=1 &c)"]),
            "user u off resetchannels db=1,2,3 -@all (~a resetchannels -@all +get) (resetchannels &c db=1 -@all)"
        );
        assert!(user_with(&["(~a"]).is_err());
        assert!(user_with(&["(on)"]).is_err());
        assert!(user_with(&["db=-1"]).is_err());
    }

    #[test]
    fn passwords() {
        let user = user_with(&["on", ">p1", ">p2", ">p1", "<p2"]).unwrap();
        assert_eq!(user.passwords.len(), 1);
        assert!(user.password_matches(b"p1"));
        assert!(!user.password_matches(b"p2"));
        assert!(user_with(&["<nope"]).is_err());
        assert!(user_with(&["#ABC"]).is_err());
    }
}
