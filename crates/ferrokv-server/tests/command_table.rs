//! Every command in ferrokv's table must describe itself exactly as the oracle does:
//! `COMMAND INFO name` is compared byte for byte (subcommands in name order, since Valkey
//! lists them in its hash table's random order), and each mismatch names its command.

mod common;

use common::{RawClient, show, split_elements, start_ferrokv, start_valkey};
use ferrokv_commands::table::TABLE;

/// Rebuilds a COMMAND INFO element with its subcommands (element 10) sorted by name.
fn normalized(entry: &[u8]) -> Vec<u8> {
    let Some((header, mut fields)) = split_elements(entry) else {
        return entry.to_vec();
    };
    if fields.len() == 10
        && let Some((sub_header, mut subs)) = split_elements(&fields[9])
    {
        let mut subs_normalized: Vec<Vec<u8>> = subs.drain(..).map(|s| normalized(&s)).collect();
        subs_normalized.sort();
        fields[9] = sub_header
            .into_iter()
            .chain(subs_normalized.concat())
            .collect();
    }
    header.into_iter().chain(fields.concat()).collect()
}

/// The single element of a `COMMAND INFO name` reply.
fn info_of(client: &mut RawClient, name: &str) -> Vec<u8> {
    let reply = client.command(&["COMMAND", "INFO", name]);
    match split_elements(&reply) {
        Some((_, items)) if items.len() == 1 => normalized(&items[0]),
        _ => reply,
    }
}

/// Commands whose description deliberately differs today, with the reason. The test fails if
/// one of them starts to match, so the entry is removed when the gap closes.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

#[test]
fn command_info_matches_the_oracle_for_every_command() {
    let ferrokv = start_ferrokv(&[]);
    let valkey = start_valkey(&[]);
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let mut theirs = RawClient::connect(valkey.port).expect("connect valkey");
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in TABLE.commands() {
        let name = entry.full_name.as_str();
        let (a, b) = (info_of(&mut ours, name), info_of(&mut theirs, name));
        checked += 1;
        if let Some((_, why)) = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == name) {
            if a == b {
                failures.push(format!(
                    "COMMAND INFO {name}: known difference '{why}' no longer differs"
                ));
            }
            continue;
        }
        if a != b {
            failures.push(format!(
                "COMMAND INFO {name}\n   ferrokv: {}\n    valkey: {}",
                show(&a),
                show(&b)
            ));
        }
    }
    assert!(checked > 0);
    assert!(
        failures.is_empty(),
        "{} of {checked} commands differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn command_count_and_list_agree_with_the_table() {
    let ferrokv = start_ferrokv(&[]);
    let mut ours = RawClient::connect(ferrokv.port).expect("connect ferrokv");
    let count = TABLE.commands().count();
    assert_eq!(
        ours.command(&["COMMAND", "COUNT"]),
        format!(":{count}\r\n").into_bytes()
    );
    let (_, listed) = split_elements(&ours.command(&["COMMAND", "LIST"])).expect("array");
    assert_eq!(listed.len(), TABLE.len());
    let (_, all) = split_elements(&ours.command(&["COMMAND"])).expect("array");
    assert_eq!(all.len(), count);
}
