//! Scripts and functions under MISCONF (a failed background save or an AOF that cannot be
//! written), shared by the tests that compare ferrokv's replies with Valkey's.

use super::RawClient;

/// A library whose functions write, read, or declare `no-writes` (for the MISCONF cases).
const MISCONF_LIBRARY: &str = "#!lua name=misconf
server.register_function('fwrite', function(keys) return server.call('set', keys[1], 'f') end)
server.register_function('fpwrite', function(keys) return server.pcall('set', keys[1], 'f') end)
server.register_function('fread', function(keys) return server.call('get', keys[1]) end)
server.register_function{function_name='fro', callback=function(keys) return server.call('get', keys[1]) end, flags={'no-writes'}}
";

/// Scripts and functions under MISCONF, each reply as Valkey words it: a script that
/// declares writes (shebang without `no-writes`, any function without it) is refused up
/// front, also inside MULTI; a script without a shebang runs and its first write fails
/// (`redis.call`: the error plus its "script:" location; `redis.pcall`: an error table).
/// Reads, PING inside a script and `no-writes` scripts are served.
pub fn script_cases() -> Vec<Vec<&'static str>> {
    [
        &["EVAL", "return redis.call('set','k','w')", "0"][..],
        &["EVAL", "return redis.call('incr',KEYS[1])", "1", "n"],
        &["EVAL", "return redis.pcall('set','k','w')", "0"],
        &[
            "EVAL",
            "local r = redis.pcall('set','k','w'); return r['err']",
            "0",
        ],
        &[
            "EVAL",
            "redis.call('get','k'); return redis.call('del','k')",
            "0",
        ],
        &["EVAL", "return redis.call('get','k')", "0"],
        &["EVAL", "return redis.call('ping')", "0"],
        &["EVAL", "return redis.call('publish','ch','m')", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &[
            "EVAL",
            "#!lua flags=allow-stale\nreturn redis.call('get','k')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get','k')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('set','k','w')",
            "0",
        ],
        &["EVAL", "#!lua flags=bogus\nreturn 1", "0"],
        &["EVAL_RO", "return redis.call('get','k')", "0"],
        &["EVAL_RO", "return redis.call('set','k','w')", "0"],
        &["EVAL_RO", "#!lua\nreturn 1", "0"],
        &["EVALSHA", "d223ed8c7345b684e8ed044ed472601f536fa58b", "0"],
        &["EVALSHA", "0000000000000000000000000000000000000000", "0"],
        &["FCALL", "fwrite", "1", "k"],
        &["FCALL", "fpwrite", "1", "k"],
        &["FCALL", "fread", "1", "k"],
        &["FCALL", "fro", "1", "k"],
        &["FCALL_RO", "fro", "1", "k"],
        &["FCALL_RO", "fwrite", "1", "k"],
        &["FCALL", "nosuch", "0"],
        &["MULTI"],
        &["EVAL", "return redis.call('set','k','w')", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EXEC"],
        &["GET", "k"],
        &["GET", "n"],
    ]
    .iter()
    .map(|c| c.to_vec())
    .collect()
}

/// What `script_cases` need loaded before the data stops being persistable: the
/// library, and the script EVALSHA runs (SCRIPT LOAD is no write: it would work later too).
pub fn load_scripts(c: &mut RawClient) {
    let loaded = c.command(&["FUNCTION", "LOAD", "REPLACE", MISCONF_LIBRARY]);
    assert_eq!(loaded, b"$7\r\nmisconf\r\n", "{}", super::show(&loaded));
    let sha = c.command(&["SCRIPT", "LOAD", "return redis.call('set','k','v')"]);
    assert!(
        sha.ends_with(b"d223ed8c7345b684e8ed044ed472601f536fa58b\r\n"),
        "{}",
        super::show(&sha)
    );
}
