//! Directives whose values have a grammar of their own. Each parser takes the new text and the
//! current (canonical) text and returns the new canonical text, which is what CONFIG GET
//! prints; Valkey's error texts are kept exactly.

use crate::values::{parse_memory_u64, strict_i64};

/// `save "<seconds> <changes> ..."`: pairs of positive seconds and non-negative change
/// counts, or the empty string (no snapshots). The words are split on single spaces, so doubled
/// spaces are refused as Valkey refuses them.
pub fn save(new: &str, _old: &str) -> Result<String, String> {
    const BAD: &str = "Invalid save parameters";
    if new.is_empty() {
        return Ok(String::new());
    }
    let words: Vec<&str> = new.split(' ').collect();
    if !words.len().is_multiple_of(2) {
        return Err(BAD.into());
    }
    let mut out = Vec::with_capacity(words.len());
    for pair in words.chunks(2) {
        let seconds = c_strtoll(pair[0]).ok_or(BAD)?;
        let changes = c_strtoll(pair[1]).ok_or(BAD)?;
        if seconds < 1 || changes < 0 {
            return Err(BAD.into());
        }
        out.push(format!("{seconds} {changes}"));
    }
    Ok(out.join(" "))
}

/// C's `strtoll` over a whole word: optional sign, decimal digits, saturating on overflow.
fn c_strtoll(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        let d = (b - b'0') as i64;
        value = if negative {
            value.saturating_mul(10).saturating_sub(d)
        } else {
            value.saturating_mul(10).saturating_add(d)
        };
    }
    Some(value)
}

/// The client classes of `client-output-buffer-limit`, in the order CONFIG GET prints them.
const BUFFER_CLASSES: [&str; 3] = ["normal", "slave", "pubsub"];

/// `client-output-buffer-limit <class> <hard> <soft> <soft-seconds> ...`: each group replaces
/// that class's limits; classes not named keep theirs.
pub fn client_output_buffer_limit(new: &str, old: &str) -> Result<String, String> {
    // An empty value is no group at all, and changes nothing.
    let words: Vec<&str> = if new.is_empty() {
        Vec::new()
    } else {
        new.split(' ').collect()
    };
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut limits: Vec<[u64; 3]> = BUFFER_CLASSES
        .iter()
        .enumerate()
        .map(|(i, _)| parse_buffer_limits(old, i).unwrap_or([0, 0, 0]))
        .collect();
    for group in words.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_str() {
            "normal" => 0,
            "replica" | "slave" => 1,
            "pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into());
            }
        };
        const BAD: &str =
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
        let hard = parse_memory_u64(group[1]).ok_or(BAD)?;
        let soft = parse_memory_u64(group[2]).ok_or(BAD)?;
        // Valkey reads the seconds with strtoll and keeps them in an int.
        let seconds = c_strtoll(group[3]).ok_or(BAD)? as i32;
        if (hard as i64) < 0 || (soft as i64) < 0 || seconds < 0 {
            return Err(BAD.into());
        }
        limits[class] = [hard, soft, seconds as u64];
    }
    Ok(format_buffer_limits(&limits))
}

fn format_buffer_limits(limits: &[[u64; 3]]) -> String {
    BUFFER_CLASSES
        .iter()
        .zip(limits)
        .map(|(class, [h, s, secs])| format!("{class} {h} {s} {secs}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The limits of class number `class` in a canonical `client-output-buffer-limit` text.
pub fn parse_buffer_limits(canonical: &str, class: usize) -> Option<[u64; 3]> {
    let words: Vec<&str> = canonical.split(' ').collect();
    let group = words.chunks(4).nth(class)?;
    Some([
        group.get(1)?.parse().ok()?,
        group.get(2)?.parse().ok()?,
        group.get(3)?.parse().ok()?,
    ])
}

/// The lines CONFIG REWRITE writes for `client-output-buffer-limit`: one per class, each
/// forced when it differs from the default (the file's existing lines take them in order).
pub fn client_output_buffer_limit_lines(value: &str, default: &str) -> Vec<(String, bool)> {
    const REWRITE_NAMES: [&str; 3] = ["normal", "replica", "pubsub"];
    let mut lines = Vec::new();
    for (i, class) in REWRITE_NAMES.iter().enumerate() {
        let now = parse_buffer_limits(value, i);
        let force = now != parse_buffer_limits(default, i);
        if let Some([h, s, secs]) = now {
            let line = format!(
                "client-output-buffer-limit {class} {} {} {secs}",
                crate::values::format_memory_human(h.into()),
                crate::values::format_memory_human(s.into())
            );
            lines.push((line, force));
        }
    }
    lines
}

/// The value of `notify-keyspace-events`: its stored form (see [`notify_keyspace_events`]),
/// printed as Valkey prints it (without an `n` that comes with `A`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyEvents(pub String);

impl NotifyEvents {
    /// The letters that are in effect (what the notifier parses).
    pub fn letters(&self) -> &str {
        &self.0
    }
}

impl From<&str> for NotifyEvents {
    fn from(letters: &str) -> Self {
        NotifyEvents(letters.to_string())
    }
}

impl std::fmt::Display for NotifyEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.strip_prefix("An") {
            Some(rest) => write!(f, "A{rest}"),
            None => f.write_str(&self.0),
        }
    }
}

impl crate::kind::FieldValue for NotifyEvents {
    fn parse(kind: &crate::kind::Kind, text: &str, current: &Self) -> Result<Self, String> {
        match kind {
            crate::kind::Kind::Custom(parse) => parse(text, &current.0).map(NotifyEvents),
            _ => Err("internal error: directive kind does not fit its field".into()),
        }
    }
    fn print(_kind: &crate::kind::Kind, value: &Self) -> String {
        value.to_string()
    }
}

/// Keyspace notification classes that `A` stands for, in the order Valkey prints them.
const NOTIFY_CLASSES: &str = "g$lshzxetd";

/// `notify-keyspace-events`: a set of class letters in Valkey's canonical order: `A` when
/// every class of `A` is on, else the classes one by one, then `n`, `K`, `E`, `m`. This is
/// the stored form: it keeps an `n` given with `A` (new-key events still fire), which
/// [`NotifyEvents`] does not print, as Valkey does not.
pub fn notify_keyspace_events(new: &str, _old: &str) -> Result<String, String> {
    let mut classes = [false; NOTIFY_CLASSES.len()];
    let (mut keyspace, mut keyevent, mut keymiss, mut new_keys) = (false, false, false, false);
    for c in new.chars() {
        match c {
            'A' => classes = [true; NOTIFY_CLASSES.len()],
            'K' => keyspace = true,
            'E' => keyevent = true,
            'm' => keymiss = true,
            'n' => new_keys = true,
            _ => match NOTIFY_CLASSES.find(c) {
                Some(i) => classes[i] = true,
                None => {
                    return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into());
                }
            },
        }
    }
    let mut out = String::new();
    if classes.iter().all(|&on| on) {
        out.push('A');
    } else {
        for (c, on) in NOTIFY_CLASSES.chars().zip(classes) {
            if on {
                out.push(c);
            }
        }
    }
    if new_keys {
        out.push('n');
    }
    for (flag, c) in [(keyspace, 'K'), (keyevent, 'E'), (keymiss, 'm')] {
        if flag {
            out.push(c);
        }
    }
    Ok(out)
}

/// `oom-score-adj-values`: three integers in `[-2000, 2000]`.
pub fn oom_score_adj_values(new: &str, _old: &str) -> Result<String, String> {
    let words: Vec<&str> = new.split(' ').collect();
    if words.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let mut out = Vec::new();
    for w in words {
        match strict_i64(w) {
            Some(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
            _ => {
                return Err(
                    "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into(),
                );
            }
        }
    }
    Ok(out.join(" "))
}

/// `latency-tracking-info-percentiles`: numbers in `[0, 100]`, printed with up to six
/// decimals and no trailing zeros.
pub fn latency_percentiles(new: &str, _old: &str) -> Result<String, String> {
    if new.is_empty() {
        return Ok(String::new());
    }
    let mut out = Vec::new();
    for w in new.split(' ') {
        let p: f64 = w
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite())
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        let text = format!("{p:.6}");
        out.push(text.trim_end_matches('0').trim_end_matches('.').to_string());
    }
    Ok(out.join(" "))
}

/// `replicaof <host> <port>` or `replicaof no one`.
pub fn replicaof(new: &str, _old: &str) -> Result<String, String> {
    if new.is_empty() {
        return Ok(String::new());
    }
    let words: Vec<&str> = new.split(' ').collect();
    let [host, port] = words[..] else {
        return Err("wrong number of arguments".into());
    };
    if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
        return Ok(String::new());
    }
    match c_strtoll(port) {
        Some(p) if (0..=65535).contains(&p) => Ok(format!("{host} {p}")),
        _ => Err("Invalid primary port".into()),
    }
}

/// `shutdown-on-sigint` / `shutdown-on-sigterm`: flags, SAVE and NOSAVE exclusive.
pub fn shutdown_flags(new: &str, _old: &str) -> Result<String, String> {
    const CHOICES: &[&str] = &[
        "default", "save", "nosave", "now", "force", "safe", "failover",
    ];
    let text = crate::values::parse_enum_flags(new, CHOICES)?;
    let words: Vec<&str> = text.split(' ').collect();
    if words.contains(&"save") && words.contains(&"nosave") {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    Ok(text)
}

/// `oom-score-adj`: `relative` is another spelling of `yes`.
pub fn oom_score_adj(new: &str, _old: &str) -> Result<String, String> {
    let chosen = crate::values::parse_enum(new, &["no", "yes", "relative", "absolute"])?;
    Ok(if chosen == "relative" { "yes" } else { chosen }.to_string())
}

/// `dir`: must name an existing directory; stored as its absolute path.
pub fn dir(new: &str, _old: &str) -> Result<String, String> {
    if new.is_empty() {
        // The default: stay in the directory the server was started in.
        return Ok(String::new());
    }
    let path = std::fs::canonicalize(new).map_err(|e| os_error_text(&e))?;
    if !path.is_dir() {
        return Err("Not a directory".into());
    }
    Ok(path.display().to_string())
}

/// The C library's wording for an I/O error, as Valkey prints `strerror(errno)`.
pub fn os_error_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    // Rust appends " (os error N)" to the strerror text.
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `dbfilename`: a file name, not a path.
pub fn dbfilename(new: &str, _old: &str) -> Result<String, String> {
    if new.contains('/') {
        return Err("dbfilename can't be a path, just a filename".into());
    }
    Ok(new.to_string())
}

pub fn ipv4(new: &str, _old: &str) -> Result<String, String> {
    if new.is_empty() || new.parse::<std::net::Ipv4Addr>().is_ok() {
        Ok(new.to_string())
    } else {
        Err("Invalid IPv4 address".into())
    }
}

pub fn ipv6(new: &str, _old: &str) -> Result<String, String> {
    if new.is_empty() || new.parse::<std::net::Ipv6Addr>().is_ok() {
        Ok(new.to_string())
    } else {
        Err("Invalid IPv6 address".into())
    }
}

/// `tls-sni-cert`: entries of three words (server name, certificate file, key file).
pub fn sni_certs(new: &str, _old: &str) -> Result<String, String> {
    let words: Vec<&str> = new.split_whitespace().collect();
    if !words.len().is_multiple_of(3) {
        return Err("tls-sni-cert takes <server-name> <cert-file> <key-file>".into());
    }
    Ok(words.join(" "))
}

/// `locale-collate`: only the locales every C library has are known here.
pub fn locale(new: &str, _old: &str) -> Result<String, String> {
    match new {
        "" | "C" | "POSIX" | "C.UTF-8" | "C.utf8" => Ok(new.to_string()),
        _ => Err("Invalid locale name".into()),
    }
}

/// `proc-title-template`: `{variable}` names from Valkey's list, and `{title}` required.
pub fn proc_title_template(new: &str, _old: &str) -> Result<String, String> {
    const BAD: &str = "template format is invalid or contains unknown variables";
    const VARIABLES: &[&str] = &[
        "title",
        "listen-addr",
        "server-mode",
        "port",
        "tls-port",
        "unixsocket",
        "config-file",
    ];
    // Valkey renders the template with an empty title and refuses one that renders to
    // nothing; the other variables always have a value.
    let mut rendered = String::new();
    let mut rest = new;
    while let Some(open) = rest.find('{') {
        rendered.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or(BAD)?;
        let name = &after[..close];
        if !VARIABLES.contains(&name) {
            return Err(BAD.into());
        }
        if name != "title" {
            rendered.push('x');
        }
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(BAD.into());
    }
    rendered.push_str(rest);
    if rendered.trim().is_empty() {
        return Err(BAD.into());
    }
    Ok(new.to_string())
}

/// `rdma-bind`: this build has no RDMA transport, as the oracle build has none.
pub fn rdma_bind(new: &str, _old: &str) -> Result<String, String> {
    if new.is_empty() {
        Ok(String::new())
    } else {
        Err("No RDMA building support.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_cert_entries_come_in_threes() {
        assert_eq!(sni_certs("", "").unwrap(), "");
        assert_eq!(
            sni_certs("a.example  a.crt a.key b b.crt b.key", "").unwrap(),
            "a.example a.crt a.key b b.crt b.key"
        );
        assert!(sni_certs("a.example a.crt", "").is_err());
    }

    #[test]
    fn repeated_sni_cert_lines_add_up() {
        let config =
            crate::load::parse("tls-sni-cert a a.crt a.key\ntls-sni-cert b b.crt b.key\n").unwrap();
        assert_eq!(config.tls_sni_cert, "a a.crt a.key b b.crt b.key");
        assert!(crate::load::parse("tls-sni-cert a a.crt\n").is_err());
    }

    #[test]
    fn save_rules() {
        assert_eq!(save("3600 1 300 100", "").unwrap(), "3600 1 300 100");
        assert_eq!(save("1 +5", "").unwrap(), "1 5");
        assert_eq!(
            save("9999999999999999999 1", "").unwrap(),
            "9223372036854775807 1"
        );
        for bad in ["3600 1 300", "0 1", "1 -1", "abc 1", "  3600 1", "0x10 1"] {
            assert!(save(bad, "").is_err(), "{bad}");
        }
    }

    #[test]
    fn buffer_limits_update_named_classes() {
        let default = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";
        assert_eq!(
            client_output_buffer_limit("pubsub 1 2 3 normal 4kb 5 6", default).unwrap(),
            "normal 4096 5 6 slave 268435456 67108864 60 pubsub 1 2 3"
        );
        assert_eq!(
            client_output_buffer_limit("replica 1 2 3", default).unwrap(),
            "normal 0 0 0 slave 1 2 3 pubsub 33554432 8388608 60"
        );
        assert!(client_output_buffer_limit("master 1 2 3", default).is_err());
        assert!(client_output_buffer_limit("normal 1 2 -3", default).is_err());
    }

    #[test]
    fn notify_order() {
        let n = |s| NotifyEvents(notify_keyspace_events(s, "").unwrap()).to_string();
        assert_eq!(n("KEA"), "AKE");
        assert_eq!(n("Ex"), "xE");
        assert_eq!(n("KEn"), "nKE");
        assert_eq!(n("mE"), "Em");
        assert_eq!(n("dtexzhsl$"), "$lshzxetd");
        assert_eq!(n("ndtexzhsl$g"), "A");
        assert_eq!(n("g$lshzxetd"), "A");
        assert_eq!(n("KEAnm"), "AKEm");
        assert_eq!(n("KEnm"), "nKEm");
        assert!(notify_keyspace_events("Kq", "").is_err());
        // Stored with the `n` that is not printed.
        assert_eq!(notify_keyspace_events("KEAn", "").unwrap(), "AnKE");
    }

    #[test]
    fn percentiles() {
        assert_eq!(latency_percentiles("50.0 99 1e2", "").unwrap(), "50 99 100");
        assert_eq!(
            latency_percentiles("0.1234567 1.00000001", "").unwrap(),
            "0.123457 1"
        );
        assert!(latency_percentiles("101", "").is_err());
    }

    #[test]
    fn templates() {
        assert!(proc_title_template("{title} {listen-addr} {server-mode}", "").is_ok());
        for bad in ["{foo}", "{title}", "", "x {title"] {
            assert!(proc_title_template(bad, "").is_err(), "{bad}");
        }
    }
}
