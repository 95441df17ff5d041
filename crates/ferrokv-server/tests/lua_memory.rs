//! INFO memory's scripting fields: the same names in the same order as Valkey 9.1, and the
//! same behaviour on both servers (no byte values: they differ between implementations):
//! the Lua memory grows as scripts are compiled and comes back after SCRIPT FLUSH, the
//! script cache and the libraries are counted, and the totals add up.

mod common;

use common::{RawClient, ServerProcess, start_ferrokv, start_valkey};

/// The `used_memory_*lua*`, `*vm*`, `*scripts*`, `*functions*` and `*libraries*` fields, in
/// INFO's order.
fn scripting_fields(c: &mut RawClient) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(&c.command(&["INFO", "memory"])).into_owned();
    text.lines()
        .filter_map(|line| line.trim_end().split_once(':'))
        .filter(|(name, _)| {
            ["lua", "_vm_", "scripts", "functions", "libraries"]
                .iter()
                .any(|part| name.contains(part))
        })
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn number(fields: &[(String, String)], name: &str) -> u64 {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name} in {fields:?}"))
}

/// 300 distinct scripts, each compiled (EVAL) into the Lua state.
fn eval_many(c: &mut RawClient) {
    for i in 0..300 {
        let body = format!("local t = {{}} for i = 1, 10 do t[i] = '{i}' .. i end return #t");
        assert_eq!(c.command(&["EVAL", &body, "0"]), b":10\r\n");
    }
}

/// A library of 100 functions.
fn big_library() -> String {
    let mut code = String::from("#!lua name=big\n");
    for i in 0..100 {
        code.push_str(&format!(
            "server.register_function('f{i}', function() return {i} end)\n"
        ));
    }
    code
}

/// The checks both servers must pass; returns the field names in order.
fn check_behaviour(server: &ServerProcess) -> Vec<String> {
    let mut c = RawClient::connect(server.port).expect("connect");
    assert_eq!(c.command(&["EVAL", "return 1", "0"]), b":1\r\n");
    let start = scripting_fields(&mut c);
    let names = start.iter().map(|(n, _)| n.clone()).collect();
    let lua = number(&start, "used_memory_lua");
    assert!(lua > 0, "{start:?}");
    assert_eq!(number(&start, "used_memory_vm_eval"), lua);
    assert_eq!(number(&start, "number_of_cached_scripts"), 1);

    eval_many(&mut c);
    let loaded = scripting_fields(&mut c);
    let grown = number(&loaded, "used_memory_lua");
    assert!(grown > lua + 50_000, "{lua} -> {grown}");
    assert_eq!(number(&loaded, "used_memory_vm_eval"), grown);
    assert_eq!(number(&loaded, "number_of_cached_scripts"), 301);
    let eval_cache = number(&loaded, "used_memory_scripts_eval");
    assert!(eval_cache > 300 * 60, "{loaded:?}");
    assert_eq!(
        number(&loaded, "used_memory_vm_total"),
        grown + number(&loaded, "used_memory_vm_functions")
    );
    assert_eq!(
        number(&loaded, "used_memory_scripts"),
        eval_cache + number(&loaded, "used_memory_functions")
    );

    assert_eq!(c.command(&["SCRIPT", "FLUSH"]), b"+OK\r\n");
    let flushed = scripting_fields(&mut c);
    let after = number(&flushed, "used_memory_lua");
    assert!(after + 50_000 < grown, "{grown} -> {after}");
    assert_eq!(number(&flushed, "number_of_cached_scripts"), 0);
    assert_eq!(number(&flushed, "used_memory_scripts_eval"), 0);

    let functions_before = number(&flushed, "used_memory_functions");
    let loaded = c.command(&["FUNCTION", "LOAD", &big_library()]);
    assert_eq!(loaded, b"$3\r\nbig\r\n");
    let with_library = scripting_fields(&mut c);
    assert_eq!(number(&with_library, "number_of_functions"), 100);
    assert_eq!(number(&with_library, "number_of_libraries"), 1);
    let functions = number(&with_library, "used_memory_functions");
    assert!(functions > functions_before + 5_000, "{with_library:?}");
    assert_eq!(
        number(&with_library, "used_memory_scripts"),
        functions + number(&with_library, "used_memory_scripts_eval")
    );
    assert_eq!(c.command(&["FUNCTION", "FLUSH"]), b"+OK\r\n");
    let no_library = scripting_fields(&mut c);
    assert_eq!(number(&no_library, "number_of_functions"), 0);
    assert_eq!(
        number(&no_library, "used_memory_functions"),
        functions_before
    );
    names
}

/// One worker thread: the flushing thread's Lua state is the only one, so the memory it
/// gives back shows at once.
#[test]
fn lua_memory_fields_behave_as_in_valkey() {
    let valkey = check_behaviour(&start_valkey(&[]));
    let ferrokv = check_behaviour(&start_ferrokv(&["--worker-threads", "1"]));
    assert_eq!(ferrokv, valkey);
}
