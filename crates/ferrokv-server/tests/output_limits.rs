//! `client-output-buffer-limit normal`: ordinary clients whose pending replies break the
//! limits are closed and counted, on ferrokv as on the oracle; the default stays unlimited.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, start_ferrokv, start_valkey};

const BIG: usize = 16 * 1024 * 1024;

fn stat(client: &mut RawClient, section: &str, field: &str) -> Option<u64> {
    let reply = client.command(&["INFO", section]);
    let text = String::from_utf8_lossy(&reply).to_string();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls until `field` reads `want` (at most 10 seconds).
fn wait_stat(client: &mut RawClient, section: &str, field: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if stat(client, section, field) == Some(want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{field} never reached {want}: {:?}",
        stat(client, section, field)
    );
}

fn scenario(server: &ServerProcess) {
    let mut admin = RawClient::connect(server.port).unwrap();
    let value = "x".repeat(BIG);
    assert_eq!(admin.command(&["SET", "big", &value]), b"+OK\r\n");
    // Unlimited by default: a reader gets the whole reply.
    let mut reader = RawClient::connect(server.port).unwrap();
    assert_eq!(reader.command(&["GET", "big"]).len(), BIG + 13);

    // Hard limit: a reply over it closes the client before it is sent.
    assert_eq!(
        admin.command(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0"
        ]),
        b"+OK\r\n"
    );
    let mut victim = RawClient::connect(server.port).unwrap();
    assert_eq!(victim.command(&["GET", "nosuch"]), b"$-1\r\n");
    victim.send_raw(&common::encode(&["GET", "big"]));
    wait_stat(
        &mut admin,
        "stats",
        "client_output_buffer_limit_disconnections",
        1,
    );
    assert!(victim.read_reply().is_err(), "the client was not closed");

    // Soft limit: a client that stops reading stays over it past its seconds.
    assert_eq!(
        admin.command(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 1mb 1"
        ]),
        b"+OK\r\n"
    );
    let mut slow = RawClient::connect(server.port).unwrap();
    slow.send_raw(&common::encode(&["GET", "big"]));
    wait_stat(
        &mut admin,
        "stats",
        "client_output_buffer_limit_disconnections",
        2,
    );
    wait_stat(&mut admin, "clients", "connected_clients", 2);
    // Small replies pass under both limits, and the server is fine.
    assert_eq!(admin.command(&["PING"]), b"+PONG\r\n");
    assert_eq!(reader.command(&["GET", "nosuch"]), b"$-1\r\n");
}

#[test]
fn normal_class_limits_close_ordinary_clients() {
    scenario(&start_ferrokv(&[]));
}

#[test]
fn normal_class_limits_on_the_oracle() {
    scenario(&start_valkey(&[]));
}

/// `count` ECHOs of a 1 KiB argument: as much input as output, so a server that stops reading
/// while its replies are unread also stops the client's writes.
fn echo_pipeline(count: usize) -> Vec<u8> {
    let one = common::encode(&["ECHO", &"e".repeat(1024)]);
    one.repeat(count)
}

/// Writes `pipeline` on a raw socket without reading anything (bounded: a write that makes no
/// progress for 20 seconds fails). Returns whether every byte was written.
fn write_without_reading(stream: &mut std::net::TcpStream, pipeline: &[u8]) -> bool {
    use std::io::Write;
    stream
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(pipeline).is_ok()
}

/// PING from another client while `busy` runs: every reply comes back within a second.
fn served_throughout<T>(port: u16, busy: impl FnOnce() -> T + Send) -> T
where
    T: Send,
{
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let pinger = scope.spawn(|| {
            let mut other = RawClient::connect(port).unwrap();
            let mut worst = Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let start = Instant::now();
                assert_eq!(other.command(&["PING"]), b"+PONG\r\n");
                worst = worst.max(start.elapsed());
                std::thread::sleep(Duration::from_millis(5));
            }
            worst
        });
        // Stops the pinger even when `busy` panics, so a failure cannot hang the test.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stop = Stop(&done);
        let result = busy();
        drop(stop);
        let worst = pinger.join().unwrap();
        assert!(worst < Duration::from_secs(1), "a PING took {worst:?}");
        result
    })
}

fn pipelining_scenario(server: &ServerProcess) {
    const COUNT: usize = 16 * 1024; // 16 MiB of requests, 16 MiB of replies
    let pipeline = echo_pipeline(COUNT);
    let mut admin = RawClient::connect(server.port).unwrap();

    // Unlimited (the default): the server keeps reading and buffering, so a client that
    // writes its whole pipeline before reading gets every reply.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let written = served_throughout(server.port, || {
        write_without_reading(&mut stream, &pipeline)
    });
    assert!(written, "{}: the pipeline stalled", server.name);
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let expected = format!("$1024\r\n{}\r\n", "e".repeat(1024)).repeat(COUNT);
    let mut replies = vec![0u8; expected.len()];
    std::io::Read::read_exact(&mut reader, &mut replies).unwrap();
    assert!(replies == expected.as_bytes(), "{}", server.name);
    drop(reader);

    // With a normal-class hard limit, the same client is cut off once its unread replies
    // pass it, and counted; everybody else is served throughout.
    let before = stat(
        &mut admin,
        "stats",
        "client_output_buffer_limit_disconnections",
    )
    .unwrap();
    assert_eq!(
        admin.command(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0"
        ]),
        b"+OK\r\n"
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    served_throughout(server.port, || {
        write_without_reading(&mut stream, &pipeline);
        wait_stat(
            &mut admin,
            "stats",
            "client_output_buffer_limit_disconnections",
            before + 1,
        );
    });
    wait_stat(&mut admin, "clients", "connected_clients", 1);

    // Soft limit only: over it for longer than its second, the client is closed as well
    // (the whole pipeline again, so that more than the kernel's socket buffers is pending).
    assert_eq!(
        admin.command(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 1mb 1"
        ]),
        b"+OK\r\n"
    );
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    served_throughout(server.port, || {
        write_without_reading(&mut stream, &pipeline);
        wait_stat(
            &mut admin,
            "stats",
            "client_output_buffer_limit_disconnections",
            before + 2,
        );
    });
    wait_stat(&mut admin, "clients", "connected_clients", 1);
    assert_eq!(admin.command(&["PING"]), b"+PONG\r\n");
}

#[test]
fn pipelining_client_that_does_not_read_is_buffered_or_cut_off() {
    let logs = common::TempDir::new("obl-log");
    let log = logs.0.join("ferrokv.log");
    let server = start_ferrokv(&["--logfile", log.to_str().unwrap()]);
    pipelining_scenario(&server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("scheduled to be closed ASAP for overcoming of output buffer limits."),
        "{text}"
    );
}

#[test]
fn pipelining_client_that_does_not_read_on_the_oracle() {
    pipelining_scenario(&start_valkey(&[]));
}

/// Sends `args` on a new connection; whether the server closed it instead of answering
/// (the connection may close while the request is still being written).
fn closed_by(port: u16, args: &[&str]) -> bool {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = stream.write_all(&common::encode(args));
    let mut everything = Vec::new();
    match stream.read_to_end(&mut everything) {
        // Closed: whatever came before the end must not be a complete reply to the request.
        Ok(_) => everything.is_empty() || everything.starts_with(b"-"),
        Err(e) => {
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut
        }
    }
}

/// Limits are applied as the bytes come and go, not only to what stays pending: a reply
/// over the hard limit closes the client even when the socket could take it at once (with
/// `min-string-size-avoid-copy-reply 0`: by default Valkey does not count large strings),
/// and a request over `client-query-buffer-limit` closes it before it is complete. Both are
/// counted in INFO stats; the same on ferrokv and on the oracle.
fn single_reply_and_request_scenario(server: &ServerProcess) {
    let mut admin = RawClient::connect(server.port).expect("connect");
    admin.command(&["CONFIG", "RESETSTAT"]);
    admin.command(&["SET", "big", &"a".repeat(100_000)]);
    // By default a large string is not counted (Valkey sends it by reference).
    admin.command(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 10 0 0",
    ]);
    let mut reader = RawClient::connect(server.port).expect("connect");
    assert!(reader.command(&["GET", "big"]).starts_with(b"$100000\r\n"));
    admin.command(&["CONFIG", "SET", "min-string-size-avoid-copy-reply", "0"]);
    admin.command(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 10 0 0",
    ]);
    assert!(
        closed_by(server.port, &["GET", "big"]),
        "a 100 kB reply over a 10 byte hard limit closes the client"
    );
    // Small replies stay within the per-client buffer that the limit does not count.
    let mut small = RawClient::connect(server.port).expect("connect");
    assert_eq!(small.command(&["PING"]), b"+PONG\r\n");
    admin.command(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 0 0 0",
    ]);
    wait_stat(
        &mut admin,
        "stats",
        "client_output_buffer_limit_disconnections",
        1,
    );

    admin.command(&["CONFIG", "SET", "client-query-buffer-limit", "1048576"]);
    let value = "a".repeat(2_000_000);
    assert!(
        closed_by(server.port, &["SET", "key", &value]),
        "a 2 MB request over a 1 MB query buffer limit closes the client"
    );
    admin.command(&["CONFIG", "SET", "client-query-buffer-limit", "1gb"]);
    wait_stat(
        &mut admin,
        "stats",
        "client_query_buffer_limit_disconnections",
        1,
    );
}

#[test]
fn single_replies_and_requests_over_the_limits() {
    single_reply_and_request_scenario(&start_ferrokv(&[]));
}

#[test]
fn single_replies_and_requests_over_the_limits_on_the_oracle() {
    single_reply_and_request_scenario(&start_valkey(&[]));
}

/// A client that never authenticated and pipelines requests without reading the errors is
/// closed once about 1 KiB of them pile up past the per-client buffer, instead of making
/// the server buffer megabytes for a stranger; a client that did authenticate is not.
fn stranger_scenario(server: &ServerProcess) {
    use std::io::{Read, Write};
    let pings = "PING\r\n".repeat(1_000_000).into_bytes();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // Written without reading: the server must cut it off before all of it is taken.
    let cut_off = stream.write_all(&pings).is_err() || {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut sink = Vec::new();
        // Everything it answered before closing, then the end of the stream.
        stream.read_to_end(&mut sink).is_ok() && sink.len() < 35 * 1_000_000
    };
    assert!(cut_off, "the unauthenticated client was not cut off");
    let mut admin = RawClient::connect(server.port).expect("connect");
    admin.command(&["AUTH", "secret"]);
    assert_eq!(admin.command(&["PING"]), b"+PONG\r\n");
}

#[test]
fn a_stranger_that_does_not_read_is_cut_off() {
    stranger_scenario(&start_ferrokv(&["--requirepass", "secret"]));
}

#[test]
fn a_stranger_that_does_not_read_is_cut_off_on_the_oracle() {
    stranger_scenario(&start_valkey(&["--requirepass", "secret"]));
}
