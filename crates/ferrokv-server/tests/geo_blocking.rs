//! GEOADD, GEOSEARCHSTORE and GEORADIUS ... STORE serve clients parked in BZPOPMIN, as the
//! sorted set commands they build on do. Every wait is bounded (5 s timeouts, 10 s reads).

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, encode, show, start_ferrokv};

fn blocked_clients(control: &mut RawClient) -> Option<u64> {
    let text = String::from_utf8_lossy(&control.command(&["INFO", "clients"])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_blocked(control: &mut RawClient, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(control) != Some(n) {
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn popped(waiter: &mut RawClient) -> String {
    show(&waiter.read_reply().expect("reply"))
}

#[test]
fn geo_writes_serve_parked_bzpopmin() {
    let server = start_ferrokv(&[]);
    let mut control = RawClient::connect(server.port).expect("connect");
    let mut waiter = RawClient::connect(server.port).expect("connect");

    waiter.send_raw(&encode(&["BZPOPMIN", "places", "5"]));
    wait_blocked(&mut control, 1);
    control.command(&["GEOADD", "places", "13.361389", "38.115556", "Palermo"]);
    assert_eq!(
        popped(&mut waiter),
        "*3\\r\\n$6\\r\\nplaces\\r\\n$7\\r\\nPalermo\\r\\n$16\\r\\n3479099956230698\\r\\n"
    );

    control.command(&[
        "GEOADD",
        "src",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ]);
    waiter.send_raw(&encode(&["BZPOPMIN", "near", "5"]));
    wait_blocked(&mut control, 1);
    let stored = control.command(&[
        "GEOSEARCHSTORE",
        "near",
        "src",
        "FROMLONLAT",
        "15",
        "37",
        "BYRADIUS",
        "200",
        "km",
        "STOREDIST",
    ]);
    assert_eq!(show(&stored), ":2\\r\\n");
    assert_eq!(
        popped(&mut waiter),
        "*3\\r\\n$4\\r\\nnear\\r\\n$7\\r\\nCatania\\r\\n$16\\r\\n56.4412578701582\\r\\n"
    );

    waiter.send_raw(&encode(&["BZPOPMIN", "radius", "5"]));
    wait_blocked(&mut control, 1);
    let stored = control.command(&[
        "GEORADIUS",
        "src",
        "15",
        "37",
        "200",
        "km",
        "STORE",
        "radius",
    ]);
    assert_eq!(show(&stored), ":2\\r\\n");
    assert_eq!(
        popped(&mut waiter),
        "*3\\r\\n$6\\r\\nradius\\r\\n$7\\r\\nPalermo\\r\\n$16\\r\\n3479099956230698\\r\\n"
    );
    // The waiter took one member; the other stays.
    assert_eq!(show(&control.command(&["ZCARD", "radius"])), ":1\\r\\n");
}
