//! The directive table and the typed configuration it fills.

use crate::values::{format_bool, parse_bool, parse_int, parse_memory};

/// A typed snapshot of every directive's value.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: Vec<String>,
    pub port: i64,
    pub protected_mode: bool,
    pub tcp_backlog: i64,
    pub timeout: i64,
    pub tcp_keepalive: i64,
    pub databases: i64,
    pub maxclients: i64,
    pub requirepass: String,
    pub proto_max_bulk_len: i64,
    pub client_query_buffer_limit: i64,
    pub hz: i64,
    pub loglevel: String,
    pub logfile: String,
    pub enable_debug_command: String,
    pub unixsocket: String,
    pub unixsocketperm: i64,
    pub active_expire_effort: i64,
    pub maxmemory: i64,
    pub maxmemory_policy: String,
    pub maxmemory_samples: i64,
    pub maxmemory_eviction_tenacity: i64,
    pub lfu_log_factor: i64,
    pub lfu_decay_time: i64,
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: i64,
    pub latency_monitor_threshold: i64,
    pub latency_tracking: bool,
    pub latency_tracking_info_percentiles: String,
    pub save: String,
    pub appendonly: bool,
    pub dbfilename: String,
    pub busy_reply_threshold: i64,
}

/// Flags of a directive.
pub const IMMUTABLE: u32 = 1 << 0;
/// Never printed in logs; CONFIG GET shows it (as Valkey does) but CONFIG REWRITE keeps it.
pub const SENSITIVE: u32 = 1 << 1;

/// One configuration directive.
pub struct Directive {
    pub name: &'static str,
    pub default: &'static str,
    pub flags: u32,
    pub set: fn(&mut Config, &str) -> Result<(), String>,
    pub get: fn(&Config) -> String,
}

macro_rules! bool_directive {
    ($name:literal, $field:ident, $default:literal, $flags:expr) => {
        Directive {
            name: $name,
            default: $default,
            flags: $flags,
            set: |c, v| {
                c.$field = parse_bool(v)?;
                Ok(())
            },
            get: |c| format_bool(c.$field),
        }
    };
}

macro_rules! int_directive {
    ($name:literal, $field:ident, $min:expr, $max:expr, $default:literal, $flags:expr) => {
        Directive {
            name: $name,
            default: $default,
            flags: $flags,
            set: |c, v| {
                c.$field = parse_int(v, $min, $max)?;
                Ok(())
            },
            get: |c| c.$field.to_string(),
        }
    };
}

macro_rules! memory_directive {
    ($name:literal, $field:ident, $min:expr, $max:expr, $default:literal, $flags:expr) => {
        Directive {
            name: $name,
            default: $default,
            flags: $flags,
            set: |c, v| {
                let n = parse_memory(v)?;
                if !($min..=$max).contains(&n) {
                    return Err(format!(
                        "argument must be between {} and {} inclusive",
                        $min, $max
                    ));
                }
                c.$field = n;
                Ok(())
            },
            get: |c| c.$field.to_string(),
        }
    };
}

macro_rules! enum_directive {
    ($name:literal, $field:ident, $choices:expr, $default:literal, $flags:expr) => {
        Directive {
            name: $name,
            default: $default,
            flags: $flags,
            set: |c, v| {
                let lower = v.to_ascii_lowercase();
                if !$choices.contains(&lower.as_str()) {
                    return Err(format!(
                        "argument(s) must be one of the following: {}",
                        $choices.join(", ")
                    ));
                }
                c.$field = lower;
                Ok(())
            },
            get: |c| c.$field.clone(),
        }
    };
}

macro_rules! string_directive {
    ($name:literal, $field:ident, $default:literal, $flags:expr) => {
        Directive {
            name: $name,
            default: $default,
            flags: $flags,
            set: |c, v| {
                c.$field = v.to_string();
                Ok(())
            },
            get: |c| c.$field.clone(),
        }
    };
}

/// Every directive, in the order CONFIG REWRITE appends new ones.
pub static DIRECTIVES: &[Directive] = &[
    Directive {
        name: "bind",
        default: "* -::*",
        flags: 0,
        set: |c, v| {
            c.bind = v.split_whitespace().map(str::to_string).collect();
            Ok(())
        },
        get: |c| c.bind.join(" "),
    },
    int_directive!("port", port, 0, 65535, "6379", 0),
    bool_directive!("protected-mode", protected_mode, "yes", 0),
    int_directive!(
        "tcp-backlog",
        tcp_backlog,
        0,
        i32::MAX as i64,
        "511",
        IMMUTABLE
    ),
    int_directive!("timeout", timeout, 0, i32::MAX as i64, "0", 0),
    int_directive!("tcp-keepalive", tcp_keepalive, 0, i32::MAX as i64, "300", 0),
    int_directive!("databases", databases, 1, i32::MAX as i64, "16", IMMUTABLE),
    int_directive!("maxclients", maxclients, 1, u32::MAX as i64, "10000", 0),
    string_directive!("requirepass", requirepass, "", SENSITIVE),
    memory_directive!(
        "proto-max-bulk-len",
        proto_max_bulk_len,
        1024 * 1024,
        i64::MAX,
        "536870912",
        0
    ),
    memory_directive!(
        "client-query-buffer-limit",
        client_query_buffer_limit,
        1024 * 1024,
        i64::MAX,
        "1073741824",
        0
    ),
    int_directive!("hz", hz, 0, i32::MAX as i64, "10", 0),
    string_directive!("loglevel", loglevel, "notice", 0),
    string_directive!("logfile", logfile, "", IMMUTABLE),
    string_directive!(
        "enable-debug-command",
        enable_debug_command,
        "no",
        IMMUTABLE
    ),
    string_directive!("unixsocket", unixsocket, "", IMMUTABLE),
    Directive {
        name: "unixsocketperm",
        default: "0",
        flags: IMMUTABLE,
        set: |c, v| {
            c.unixsocketperm = i64::from_str_radix(v, 8)
                .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
            Ok(())
        },
        get: |c| format!("{:o}", c.unixsocketperm),
    },
    int_directive!("active-expire-effort", active_expire_effort, 1, 10, "1", 0),
    memory_directive!("maxmemory", maxmemory, 0, i64::MAX, "0", 0),
    enum_directive!(
        "maxmemory-policy",
        maxmemory_policy,
        [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction"
        ],
        "noeviction",
        0
    ),
    int_directive!("maxmemory-samples", maxmemory_samples, 1, 64, "5", 0),
    int_directive!(
        "maxmemory-eviction-tenacity",
        maxmemory_eviction_tenacity,
        0,
        100,
        "10",
        0
    ),
    int_directive!(
        "lfu-log-factor",
        lfu_log_factor,
        0,
        i32::MAX as i64,
        "10",
        0
    ),
    int_directive!("lfu-decay-time", lfu_decay_time, 0, i32::MAX as i64, "1", 0),
    int_directive!(
        "slowlog-log-slower-than",
        slowlog_log_slower_than,
        -1,
        i64::MAX,
        "10000",
        0
    ),
    int_directive!("slowlog-max-len", slowlog_max_len, 0, i64::MAX, "128", 0),
    int_directive!(
        "latency-monitor-threshold",
        latency_monitor_threshold,
        0,
        i64::MAX,
        "0",
        0
    ),
    bool_directive!("latency-tracking", latency_tracking, "yes", 0),
    string_directive!(
        "latency-tracking-info-percentiles",
        latency_tracking_info_percentiles,
        "50 99 99.9",
        0
    ),
    string_directive!("save", save, "3600 1 300 100 60 10000", 0),
    bool_directive!("appendonly", appendonly, "no", 0),
    string_directive!("dbfilename", dbfilename, "dump.rdb", 0),
    int_directive!(
        "busy-reply-threshold",
        busy_reply_threshold,
        0,
        i64::MAX,
        "5000",
        0
    ),
];

impl Directive {
    pub fn find(name: &str) -> Option<&'static Directive> {
        DIRECTIVES
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
}

impl Default for Config {
    /// Every directive at its default, applied through the table so defaults live in one place.
    fn default() -> Config {
        let mut c = Config {
            bind: Vec::new(),
            port: 0,
            protected_mode: false,
            tcp_backlog: 0,
            timeout: 0,
            tcp_keepalive: 0,
            databases: 0,
            maxclients: 0,
            requirepass: String::new(),
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            hz: 0,
            loglevel: String::new(),
            logfile: String::new(),
            enable_debug_command: String::new(),
            unixsocket: String::new(),
            unixsocketperm: 0,
            active_expire_effort: 0,
            maxmemory: 0,
            maxmemory_policy: String::new(),
            maxmemory_samples: 0,
            maxmemory_eviction_tenacity: 0,
            lfu_log_factor: 0,
            lfu_decay_time: 0,
            slowlog_log_slower_than: 0,
            slowlog_max_len: 0,
            latency_monitor_threshold: 0,
            latency_tracking: false,
            latency_tracking_info_percentiles: String::new(),
            save: String::new(),
            appendonly: false,
            dbfilename: String::new(),
            busy_reply_threshold: 0,
        };
        for d in DIRECTIVES {
            if let Err(e) = (d.set)(&mut c, d.default) {
                panic!("default of directive {} is invalid: {e}", d.name);
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_get() {
        let c = Config::default();
        for d in DIRECTIVES {
            assert_eq!((d.get)(&c), d.default, "{}", d.name);
        }
    }
}
