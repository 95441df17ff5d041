//! Users from the configuration: `user` directives, or an ACL file (`aclfile`) that
//! ACL LOAD re-reads and ACL SAVE rewrites (temporary file, fsync, rename).

use std::path::Path;

use bytes::Bytes;
use ferrokv_config::Config;

use super::rules;
use super::user::User;
use crate::server::Server;

pub const BOTH_CONFIGURED: &str = "Configuring Valkey with users defined in valkey.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your valkey.conf, but not both.";

/// Whether new users get every channel (`acl-pubsub-default allchannels`).
pub fn all_channels_default(config: &Config) -> bool {
    config.acl_pubsub_default == "allchannels"
}

/// Sets up the users at start-up: `requirepass`, then the `user` directives or the ACL
/// file. An error aborts the start, as in Valkey: it returns the lines to log.
pub fn load_at_startup(server: &Server) -> Result<(), Vec<String>> {
    let config = server.config.load();
    if !config.requirepass.is_empty() {
        server
            .acl
            .set_default_password(config.requirepass.as_bytes());
    }
    if !config.extras.users.is_empty() && !config.aclfile.is_empty() {
        return Err(vec![BOTH_CONFIGURED.into()]);
    }
    if !config.aclfile.is_empty() {
        let users = read_file(&config.aclfile, all_channels_default(&config)).map_err(|e| {
            vec![format!(
                "Aborting ferrokv startup because of ACL errors: {e}"
            )]
        })?;
        server.acl.replace_all(users);
        return Ok(());
    }
    if config.extras.users.is_empty() {
        return Ok(());
    }
    let all_channels = all_channels_default(&config);
    let mut users: Vec<User> = Vec::new();
    for words in &config.extras.users {
        let Some((name, rule_args)) = words.split_first() else {
            continue;
        };
        // The loader already refused duplicates and malformed rules, naming their line;
        // what is left are names unknown to the command table, refused only now as in Valkey.
        let args: Vec<Bytes> = rule_args
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        let rules = rules::merge_selectors(&args).map_err(|e| vec![e.0.into_owned()])?;
        let mut user = User::new(Bytes::copy_from_slice(name.as_bytes()), all_channels);
        for rule in &rules {
            rules::apply_rule(&mut user, rule, all_channels).map_err(|e| {
                vec![
                    format!(
                        "Error loading ACL rule '{}' for the user named '{name}': {}",
                        String::from_utf8_lossy(rule),
                        e.text()
                    ),
                    "Critical error while loading ACLs. Exiting.".into(),
                ]
            })?;
        }
        user.finish();
        users.push(user);
    }
    if !users.iter().any(|u| &u.name[..] == b"default") {
        // The default user keeps what requirepass gave it.
        users.push((*server.acl.default_user()).clone());
    }
    server.acl.replace_all(users);
    Ok(())
}

/// The check the config loader runs on each `user` line's rules, as Valkey does while it
/// reads the file: the rules are tried on a throw-away user. Names missing from the command
/// table are let through here (Valkey refuses them later, when the users are created). On
/// an error, the position Valkey reports: the refused rule's index among the merged rules,
/// or, for a selector never closed, the index of the argument that opens it.
pub fn check_user_rules(rule_args: &[String]) -> Result<(), (usize, String)> {
    let args: Vec<Bytes> = rule_args
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    let rules = rules::merge_selectors_at(&args).map_err(|open| (open, "Wrong format".into()))?;
    let mut user = User::new(Bytes::from_static(b"check"), false);
    for (index, rule) in rules.iter().enumerate() {
        match rules::apply_rule(&mut user, rule, false) {
            Ok(()) | Err(rules::RuleError::Unknown) => {}
            Err(e) => return Err((index, e.text().to_string())),
        }
    }
    Ok(())
}

/// Reads and checks a whole ACL file. Errors are Valkey's, one after the other.
pub fn read_file(path: &str, all_channels: bool) -> Result<Vec<User>, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Error loading ACLs, opening file '{path}': {}",
            ferrokv_config::special::os_error_text(&e)
        )
    })?;
    parse(path, &text, all_channels)
}

/// Parses ACL file text: `user <name> <rules...>` lines, blank lines and `#` comments.
pub fn parse(path: &str, text: &[u8], all_channels: bool) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    let mut errors = String::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let lineno = index + 1;
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        // Words are separated by single spaces, without quoting (Valkey's ACL file syntax:
        // what ACL LIST prints).
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').map(|w| w.trim_ascii()).collect();
        if words.len() < 2 || !words[0].eq_ignore_ascii_case(b"user") {
            errors.push_str(&format!(
                "{path}:{lineno} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let name = Bytes::copy_from_slice(words[1]);
        if users.iter().any(|u| u.name == name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {lineno}. ",
                String::from_utf8_lossy(&name)
            ));
            continue;
        }
        let args: Vec<Bytes> = words[2..]
            .iter()
            .map(|w| Bytes::copy_from_slice(w))
            .collect();
        let rules = match rules::merge_selectors(&args) {
            Ok(rules) => rules,
            Err(_) => {
                errors.push_str(&format!(
                    "{path}:{lineno}: Unmatched parenthesis in selector definition."
                ));
                continue;
            }
        };
        let mut user = User::new(name, all_channels);
        for rule in &rules {
            match rules::apply_rule(&mut user, rule, all_channels) {
                Ok(()) => {}
                // Valkey names the rule only for unknown commands and categories.
                Err(e @ rules::RuleError::Unknown) => errors.push_str(&format!(
                    "{path}:{lineno}: Error in applying operation '{}': {}. ",
                    String::from_utf8_lossy(rule),
                    e.text()
                )),
                Err(e) => errors.push_str(&format!("{path}:{lineno}: {}. ", e.text())),
            }
        }
        user.finish();
        users.push(user);
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(errors);
    }
    Ok(users)
}

/// Writes every user to `path`: a temporary file in the same directory, flushed to disk,
/// then renamed over the old one, so a crash leaves either the old file or the new one.
pub fn save(path: &str, users: &[std::sync::Arc<User>]) -> std::io::Result<()> {
    let target = Path::new(path);
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut text = Vec::new();
    for user in users {
        text.extend_from_slice(&user.describe());
        text.push(b'\n');
    }
    ferrokv_persist::durable::replace_file(target, &temp, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_are_all_reported_and_nothing_loads() {
        let text = b"user a on nopass\nuser a off\nbogus line\nuser c badrule\n";
        let err = parse("/x.acl", text, false).unwrap_err();
        assert_eq!(
            err,
            "WARNING: Duplicate user 'a' found on line 2. /x.acl:3 should start with user keyword followed by the username. /x.acl:4: Syntax error. WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        );
    }

    #[test]
    fn file_round_trip() {
        let text = b"# comment\n\nuser default on nopass ~* &* +@all\nuser u on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 %R~a* resetchannels &c db=1 -@all +get (~b resetchannels -@all +set)\n";
        let users = parse("/x.acl", text, false).unwrap();
        let lines: Vec<String> = users
            .iter()
            .map(|u| String::from_utf8(u.describe()).unwrap())
            .collect();
        assert_eq!(lines[0], "user default on nopass ~* &* +@all");
        assert_eq!(
            lines[1],
            "user u on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 %R~a* resetchannels &c db=1 -@all +get (~b resetchannels -@all +set)"
        );
        assert!(users[1].password_matches(b"password"));
    }
}
