//! What the cluster commands change on a server without cluster mode, beyond their replies
//! (`tests/cases/cluster.txt`): READONLY's `r` flag in CLIENT LIST, compared with the oracle.

mod common;

use common::{RawClient, ServerProcess, start_ferrokv, start_valkey};

fn flags(client: &mut RawClient) -> String {
    let info = String::from_utf8_lossy(&client.command(&["CLIENT", "INFO"])).into_owned();
    info.split(' ')
        .find(|f| f.starts_with("flags="))
        .unwrap_or("?")
        .to_string()
}

#[test]
fn readonly_shows_in_client_list_until_readwrite_or_reset() {
    let run = |server: &ServerProcess| -> Vec<String> {
        let mut c = RawClient::connect(server.port).expect("connect");
        let mut out = vec![flags(&mut c)];
        c.command(&["READONLY"]);
        out.push(flags(&mut c));
        c.command(&["CLIENT", "NO-EVICT", "on"]);
        c.command(&["CLIENT", "NO-TOUCH", "on"]);
        c.command(&["CLIENT", "TRACKING", "on", "BCAST"]);
        out.push(flags(&mut c));
        c.command(&["READWRITE"]);
        out.push(flags(&mut c));
        c.command(&["READONLY"]);
        c.command(&["MULTI"]);
        c.command(&["PING"]);
        out.push(flags(&mut c));
        c.command(&["EXEC"]);
        c.command(&["RESET"]);
        out.push(flags(&mut c));
        // Another connection lists it with its flags.
        c.command(&["READONLY"]);
        c.command(&["CLIENT", "SETNAME", "reader"]);
        let mut other = RawClient::connect(server.port).expect("connect");
        let list = String::from_utf8_lossy(&other.command(&["CLIENT", "LIST"])).into_owned();
        out.push(
            list.lines()
                .find(|l| l.contains(" name=reader "))
                .and_then(|l| l.split(' ').find(|f| f.starts_with("flags=")))
                .unwrap_or("?")
                .to_string(),
        );
        out
    };
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let ours = run(&ferrokv);
    assert_eq!(ours, run(&valkey));
    assert!(ours.iter().any(|f| f.contains('r')), "{ours:?}");
}
