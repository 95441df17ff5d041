//! MONITOR against the oracle: the same commands run on ferrokv and valkey-server 9.1 while a
//! monitor listens; the monitor's lines are compared one by one with timestamps and client
//! ports masked. Also: what a monitor may still do, MONITOR inside MULTI, RESET, and the
//! `O` flag of CLIENT LIST. Reads time out after 10 s; every script is fixed.

mod common;

use std::time::Duration;

use common::{
    RawClient, ServerProcess, encode, show, start_ferrokv, start_ferrokv_on_workers, start_valkey,
};

/// A monitor line with its timestamp and the client's port masked.
fn mask(line: &str) -> String {
    let Some(rest) = line.strip_prefix('+') else {
        return line.to_string();
    };
    let Some((_, after_time)) = rest.split_once(' ') else {
        return line.to_string();
    };
    let Some((origin, args)) = after_time.split_once("] ") else {
        return format!("+T {after_time}");
    };
    let origin = match origin.rsplit_once(':') {
        Some((host, _)) if host.starts_with("[0 127.0.0.1") || host.contains(" 127.0.0.1") => {
            format!("{host}:PORT")
        }
        _ => origin.to_string(),
    };
    format!("+T {origin}] {args}")
}

fn read_line(client: &mut RawClient) -> String {
    let reply = client.read_reply().expect("a monitor line");
    mask(String::from_utf8_lossy(&reply).trim_end())
}

/// Runs `commands` (each a list of arguments, sent raw so binary bytes pass) on a fresh
/// connection while a monitor watches; returns the monitor's lines, masked.
fn monitored(server: &ServerProcess, commands: &[Vec<&[u8]>]) -> Vec<String> {
    let mut monitor = RawClient::connect(server.port).expect("connect");
    assert_eq!(monitor.command(&["MONITOR"]), b"+OK\r\n");
    let mut client = RawClient::connect(server.port).expect("connect");
    for command in commands {
        client.send_raw(&encode(command));
        client.read_reply().expect("a reply");
    }
    // A marker, so we know where the lines of this script end.
    client.command(&["ECHO", "end-of-script"]);
    let mut lines = Vec::new();
    loop {
        let line = read_line(&mut monitor);
        if line.contains("\"end-of-script\"") {
            return lines;
        }
        lines.push(line);
    }
}

fn script() -> Vec<Vec<&'static [u8]>> {
    let c = |args: &[&'static [u8]]| args.to_vec();
    vec![
        c(&[b"SET", b"k", b"a\"b\\c\nd\x01\xc3\xa9 \x00\x7f\t\r\x07\x08"]),
        c(&[b"get", b"k"]),
        c(&[b"INCR", b"k"]),
        c(&[b"nosuchcommand", b"x"]),
        c(&[b"GET"]),
        c(&[b"AUTH", b"user", b"pass"]),
        c(&[b"AUTH", b"pass"]),
        c(&[b"HELLO", b"2", b"AUTH", b"default", b"pw", b"SETNAME", b"x"]),
        c(&[b"CLIENT", b"SETNAME", b"me"]),
        c(&[b"CLIENT", b"LIST"]),
        c(&[b"CONFIG", b"GET", b"maxmemory"]),
        c(&[b"SLOWLOG", b"GET"]),
        c(&[b"INFO", b"server"]),
        c(&[b"SELECT", b"3"]),
        c(&[b"SET", b"x", b"y"]),
        c(&[b"SELECT", b"0"]),
        c(&[b"MULTI"]),
        c(&[b"SET", b"a", b"1"]),
        c(&[b"GET", b"a"]),
        c(&[b"EXEC"]),
        c(&[b"MULTI"]),
        c(&[b"SET", b"a", b"2"]),
        c(&[b"DISCARD"]),
        c(&[b"BLPOP", b"nolist", b"0.01"]),
        c(&[b"PING"]),
        c(&[b"ECHO", b""]),
        // Scripts: the script's command first, then what it runs as `[db lua]` (SELECT
        // inside the script moves the db shown); a failed EVALSHA is still shown.
        c(&[
            b"EVAL",
            b"redis.call('set','k','v'); redis.call('select','3'); return redis.call('get','k')",
            b"0",
        ]),
        c(&[b"EVALSHA", b"0000000000000000000000000000000000000000", b"0"]),
        c(&[
            b"FUNCTION",
            b"LOAD",
            b"#!lua name=mon\nserver.register_function('f1', function(k, a) return server.call('get', 'x') end)",
        ]),
        c(&[b"FCALL", b"f1", b"0"]),
        c(&[b"FUNCTION", b"DELETE", b"mon"]),
    ]
}

#[test]
fn lines_match_the_oracle() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let ours = monitored(&ferrokv, &script());
    let theirs = monitored(&valkey, &script());
    assert_eq!(ours, theirs, "ferrokv:\n{ours:#?}\nvalkey:\n{theirs:#?}");
}

/// Several monitors see the same lines, from clients on other worker threads.
#[test]
fn every_monitor_sees_every_thread() {
    let server = start_ferrokv_on_workers(3, &[]);
    let mut monitors: Vec<RawClient> = (0..3)
        .map(|_| {
            let mut m = RawClient::connect(server.port).expect("connect");
            assert_eq!(m.command(&["MONITOR"]), b"+OK\r\n");
            m
        })
        .collect();
    for i in 0..6 {
        let mut c = RawClient::connect(server.port).expect("connect");
        c.command(&["SET", &format!("key{i}"), "v"]);
    }
    for monitor in &mut monitors {
        for i in 0..6 {
            let line = read_line(monitor);
            assert!(
                line.ends_with(&format!("\"SET\" \"key{i}\" \"v\"")),
                "{line}"
            );
        }
    }
}

/// What a monitor may still send, MONITOR refused inside MULTI, RESET leaving MONITOR mode,
/// and the CLIENT LIST flag, compared with the oracle.
#[test]
fn monitor_client_behaviour_matches_the_oracle() {
    let run = |server: &ServerProcess| -> Vec<String> {
        let mut out = Vec::new();
        let mut m = RawClient::connect(server.port).expect("connect");
        out.push(show(&m.command(&["MONITOR"])));
        out.push(show(&m.command(&["PING"])));
        // Its own PING is monitored too.
        out.push(read_line(&mut m));
        out.push(show(&m.command(&["GET", "a"])));
        // A repeated MONITOR gets no reply: PING's answer comes next.
        m.send_raw(&encode(&["MONITOR"]));
        out.push(show(&m.command(&["ECHO", "after"])));
        out.push(read_line(&mut m));
        let list = String::from_utf8_lossy(&m.command(&["CLIENT", "LIST"])).into_owned();
        out.push(
            list.lines()
                .find(|l| l.contains("cmd=client|list"))
                .and_then(|l| l.split(' ').find(|f| f.starts_with("flags=")))
                .unwrap_or("?")
                .to_string(),
        );
        out.push(show(&m.command(&["RESET"])));
        out.push(show(&m.command(&["GET", "a"])));
        let mut t = RawClient::connect(server.port).expect("connect");
        out.push(show(&t.command(&["MULTI"])));
        out.push(show(&t.command(&["MONITOR"])));
        out.push(show(&t.command(&["EXEC"])));
        out
    };
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    assert_eq!(run(&ferrokv), run(&valkey));
}

/// A monitor on the unix socket sees unix clients as `unix:<path>`.
#[test]
fn unix_socket_clients_are_named_by_path() {
    let dir = common::TempDir::new("monitor-unix");
    let path = dir.0.join("s.sock");
    let path_text = path.to_string_lossy().into_owned();
    let server = start_ferrokv(&["--unixsocket", &path_text]);
    let mut monitor = RawClient::connect(server.port).expect("connect");
    assert_eq!(monitor.command(&["MONITOR"]), b"+OK\r\n");
    let mut unix = std::os::unix::net::UnixStream::connect(&path).expect("unix connect");
    unix.set_read_timeout(Some(Duration::from_secs(10))).ok();
    use std::io::{Read, Write};
    unix.write_all(b"PING\r\n").expect("write");
    let mut buf = [0u8; 7];
    unix.read_exact(&mut buf).expect("PONG");
    let line = read_line(&mut monitor);
    assert_eq!(line, format!("+T [0 unix:{path_text}] \"PING\""));
}
