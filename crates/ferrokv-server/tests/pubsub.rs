//! Pub/Sub across clients and worker threads: fan-out to subscribers on several threads,
//! patterns, RESP3 pushes interleaved with replies, a slow subscriber cut off by
//! `client-output-buffer-limit pubsub`, cleanup on disconnect, and redis-py's PubSub when
//! the `redis` Python package is installed. Every wait is bounded (read timeout 10 s,
//! polling loops give up after 5 s, fixed message counts).

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{RawClient, ServerProcess, encode, show, start_ferrokv_on_workers};

fn server(extra: &[&str]) -> ServerProcess {
    start_ferrokv_on_workers(4, extra)
}

fn connect(server: &ServerProcess) -> RawClient {
    RawClient::connect(server.port).expect("connect")
}

fn cmd(client: &mut RawClient, args: &[&str]) -> String {
    show(&client.command(args))
}

fn next(client: &mut RawClient) -> String {
    show(&client.read_reply().expect("a pushed frame"))
}

fn bulk(s: &str) -> String {
    format!("${}\\r\\n{s}\\r\\n", s.len())
}

fn message(kind: char, channel: &str, payload: &str) -> String {
    format!(
        "{kind}3\\r\\n{}{}{}",
        bulk("message"),
        bulk(channel),
        bulk(payload)
    )
}

fn pmessage(kind: char, pattern: &str, channel: &str, payload: &str) -> String {
    format!(
        "{kind}4\\r\\n{}{}{}{}",
        bulk("pmessage"),
        bulk(pattern),
        bulk(channel),
        bulk(payload)
    )
}

fn info_field(control: &mut RawClient, section: &str, field: &str) -> Option<u64> {
    let text = String::from_utf8_lossy(&control.command(&["INFO", section])).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
}

fn wait_for(control: &mut RawClient, section: &str, field: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_field(control, section, field) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "{field} never reached {want} (now {:?})",
            info_field(control, section, field)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn messages_reach_subscribers_on_every_thread_with_patterns() {
    let server = server(&[]);
    let mut publisher = connect(&server);
    let mut subscribers: Vec<RawClient> = (0..6).map(|_| connect(&server)).collect();
    for s in subscribers.iter_mut() {
        cmd(s, &["SUBSCRIBE", "news"]);
        cmd(s, &["PSUBSCRIBE", "n*"]);
    }
    assert_eq!(
        info_field(&mut publisher, "stats", "pubsub_channels"),
        Some(1)
    );
    assert_eq!(
        info_field(&mut publisher, "stats", "pubsub_patterns"),
        Some(1)
    );
    assert_eq!(
        info_field(&mut publisher, "clients", "pubsub_clients"),
        Some(6)
    );
    for i in 0..20 {
        let payload = format!("m{i}");
        assert_eq!(
            cmd(&mut publisher, &["PUBLISH", "news", &payload]),
            ":12\\r\\n"
        );
        assert_eq!(
            cmd(&mut publisher, &["PUBLISH", "nope", &payload]),
            ":6\\r\\n"
        );
    }
    for s in subscribers.iter_mut() {
        for i in 0..20 {
            let payload = format!("m{i}");
            assert_eq!(next(s), message('*', "news", &payload));
            assert_eq!(next(s), pmessage('*', "n*", "news", &payload));
            assert_eq!(next(s), pmessage('*', "n*", "nope", &payload));
        }
    }
    let list = String::from_utf8_lossy(&publisher.command(&["CLIENT", "LIST"])).into_owned();
    assert_eq!(
        list.lines()
            .filter(|l| l.contains("flags=P ") && l.contains(" sub=1 psub=1 ssub=0 "))
            .count(),
        6,
        "{list}"
    );
    // Leaving: by UNSUBSCRIBE, by RESET, and by disconnecting.
    let mut rest = subscribers.split_off(2);
    cmd(&mut subscribers[0], &["UNSUBSCRIBE"]);
    cmd(&mut subscribers[0], &["PUNSUBSCRIBE"]);
    cmd(&mut subscribers[1], &["RESET"]);
    rest.clear();
    wait_for(&mut publisher, "clients", "pubsub_clients", 0);
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "news", "x"]), ":0\\r\\n");
    assert_eq!(
        info_field(&mut publisher, "stats", "pubsub_channels"),
        Some(0)
    );
    assert_eq!(
        info_field(&mut publisher, "stats", "pubsub_patterns"),
        Some(0)
    );
}

#[test]
fn shard_channels_are_their_own_space() {
    let server = server(&[]);
    let mut publisher = connect(&server);
    let mut s = connect(&server);
    cmd(&mut s, &["SSUBSCRIBE", "orders"]);
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "orders", "x"]), ":0\\r\\n");
    assert_eq!(
        cmd(&mut publisher, &["SPUBLISH", "orders", "y"]),
        ":1\\r\\n"
    );
    assert_eq!(
        next(&mut s),
        format!(
            "*3\\r\\n{}{}{}",
            bulk("smessage"),
            bulk("orders"),
            bulk("y")
        )
    );
    assert_eq!(
        info_field(&mut publisher, "stats", "pubsubshard_channels"),
        Some(1)
    );
}

#[test]
fn resp3_pushes_interleave_with_replies() {
    let server = server(&[]);
    let mut publisher = connect(&server);
    let mut s = connect(&server);
    cmd(&mut s, &["HELLO", "3"]);
    assert_eq!(
        cmd(&mut s, &["SUBSCRIBE", "ch"]),
        format!(">3\\r\\n{}{}:1\\r\\n", bulk("subscribe"), bulk("ch"))
    );
    // A message published before a command arrives ahead of the command's reply.
    cmd(&mut publisher, &["PUBLISH", "ch", "first"]);
    assert_eq!(next(&mut s), message('>', "ch", "first"));
    cmd(&mut publisher, &["SET", "k", "v"]);
    assert_eq!(cmd(&mut s, &["GET", "k"]), bulk("v"));
    // Published by the subscriber itself: the PUBLISH reply, then the push.
    assert_eq!(cmd(&mut s, &["PUBLISH", "ch", "own"]), ":1\\r\\n");
    assert_eq!(next(&mut s), message('>', "ch", "own"));
    // A pipeline with a message from another client in the middle: every reply and the
    // push arrive, replies in order.
    s.send_raw(&[encode(&["INCR", "n"]), encode(&["INCR", "n"])].concat());
    cmd(&mut publisher, &["PUBLISH", "ch", "middle"]);
    s.send_raw(&encode(&["INCR", "n"]));
    let frames: Vec<String> = (0..4).map(|_| next(&mut s)).collect();
    let replies: Vec<&String> = frames.iter().filter(|f| f.starts_with(':')).collect();
    assert_eq!(replies, [":1\\r\\n", ":2\\r\\n", ":3\\r\\n"], "{frames:?}");
    assert!(frames.contains(&message('>', "ch", "middle")), "{frames:?}");
}

/// A subscriber that never reads is disconnected once its pending output passes the hard
/// limit; the publisher is never held up, and memory does not grow with the backlog.
#[test]
fn a_slow_subscriber_is_cut_off_by_the_output_buffer_limit() {
    let server = server(&["--client-output-buffer-limit", "pubsub 1mb 512kb 60"]);
    let mut publisher = connect(&server);
    let mut slow = connect(&server);
    cmd(&mut slow, &["SUBSCRIBE", "firehose"]);
    let payload = "x".repeat(100 * 1024);
    let started = Instant::now();
    let mut delivered_to_slow = 0;
    // Socket buffers absorb some megabytes first; 400 messages of 100 KB (40 MB) are far
    // more than the buffers plus the 1 MB limit.
    for _ in 0..400 {
        let r = cmd(&mut publisher, &["PUBLISH", "firehose", &payload]);
        if r == ":1\\r\\n" {
            delivered_to_slow += 1;
        }
        if info_field(
            &mut publisher,
            "stats",
            "client_output_buffer_limit_disconnections",
        ) == Some(1)
        {
            break;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        info_field(
            &mut publisher,
            "stats",
            "client_output_buffer_limit_disconnections"
        ),
        Some(1),
        "the slow subscriber was not cut off after {delivered_to_slow} messages"
    );
    wait_for(&mut publisher, "clients", "pubsub_clients", 0);
    assert_eq!(
        cmd(&mut publisher, &["PUBLISH", "firehose", "x"]),
        ":0\\r\\n"
    );
    // The subscriber's connection ends: reading reaches EOF after what was sent.
    let mut sink = Vec::new();
    let mut stream = slow_stream(slow);
    let _ = stream.read_to_end(&mut sink);
}

/// The raw socket of a client, to read it to the end.
fn slow_stream(client: RawClient) -> impl Read {
    struct Reader(RawClient);
    impl Read for Reader {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read_reply() {
                Ok(frame) => {
                    let n = frame.len().min(buf.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                    Ok(n)
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                Err(e) => Err(e),
            }
        }
    }
    Reader(client)
}

#[test]
fn redis_py_pubsub_works() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import redis"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("redis-py is not installed: skipping");
        return;
    }
    let server = server(&[]);
    let script = r#"
import sys, redis
port = int(sys.argv[1])
for protocol in (2, 3):
    r = redis.Redis(port=port, protocol=protocol, decode_responses=True)
    p = r.pubsub()
    p.subscribe("alpha")
    p.psubscribe("be*")
    kinds = [p.get_message(timeout=5)["type"] for _ in range(2)]
    assert kinds == ["subscribe", "psubscribe"], kinds
    assert r.publish("alpha", "one") == 1
    assert r.publish("beta", "two") == 1
    m1 = p.get_message(timeout=5)
    m2 = p.get_message(timeout=5)
    assert (m1["type"], m1["channel"], m1["data"]) == ("message", "alpha", "one"), m1
    assert (m2["type"], m2["pattern"], m2["channel"], m2["data"]) == ("pmessage", "be*", "beta", "two"), m2
    assert r.pubsub_numsub("alpha") == [("alpha", 1)]
    assert r.pubsub_numpat() == 1
    p.unsubscribe()
    p.punsubscribe()
    p.close()
    pipe = r.pipeline(transaction=True)
    pipe.set("k", "1").incr("k").get("k")
    assert pipe.execute() == [True, 2, "2"]
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &server.port.to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "redis-py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A subscriber is woken once per batch of messages, by the message that finds its outbox
/// empty. Publishers on every worker racing the subscriber's connection as it takes its
/// messages must never leave one behind without a wake-up: every subscriber gets every
/// message, in each publisher's order.
#[test]
fn racing_publishers_never_strand_a_message() {
    const PUBLISHERS: usize = 4;
    const MESSAGES: usize = 3000;
    let server = server(&[]);
    let mut subscribers: Vec<RawClient> = (0..3).map(|_| connect(&server)).collect();
    for s in subscribers.iter_mut() {
        cmd(s, &["SUBSCRIBE", "race"]);
    }
    let port = server.port;
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            std::thread::spawn(move || {
                let mut c = RawClient::connect(port).expect("connect");
                // Small pipelines, so publishing and taking interleave many times.
                for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(7) {
                    let mut batch = Vec::new();
                    for i in chunk {
                        batch.extend(encode(&["PUBLISH", "race", &format!("{p}:{i}")]));
                    }
                    c.send_raw(&batch);
                    for _ in chunk {
                        c.read_reply().expect("PUBLISH reply");
                    }
                }
            })
        })
        .collect();
    for s in subscribers.iter_mut() {
        let mut next_of = [0usize; PUBLISHERS];
        for _ in 0..PUBLISHERS * MESSAGES {
            let frame =
                String::from_utf8(s.read_reply().expect("a message (RawClient waits 10 s)"))
                    .expect("utf8");
            let payload = frame.trim_end().rsplit("\r\n").next().expect("payload");
            let (p, i) = payload.split_once(':').expect("p:i");
            let p: usize = p.parse().expect("publisher");
            assert_eq!(i.parse::<usize>().expect("index"), next_of[p], "{frame:?}");
            next_of[p] += 1;
        }
    }
    for p in publishers {
        p.join().expect("publisher");
    }
}

/// The wake-ups of a batch's subscribers wait until the batch stops running, and a batch
/// that blocks (BLPOP) stops there: the message goes out while the publisher stays blocked.
#[test]
fn a_publisher_that_blocks_after_publishing_does_not_hold_the_message() {
    let server = server(&[]);
    let mut subscribers: Vec<RawClient> = (0..4).map(|_| connect(&server)).collect();
    for s in subscribers.iter_mut() {
        cmd(s, &["SUBSCRIBE", "held"]);
    }
    let mut publisher = connect(&server);
    let mut batch = encode(&["PUBLISH", "held", "now"]);
    batch.extend(encode(&["BLPOP", "never-pushed", "0"]));
    publisher.send_raw(&batch);
    for s in subscribers.iter_mut() {
        // RawClient gives up after 10 s: the publisher is still blocked then.
        assert_eq!(next(s), message('*', "held", "now"));
    }
    assert_eq!(next(&mut publisher), ":4\\r\\n");
    let mut pusher = connect(&server);
    cmd(&mut pusher, &["RPUSH", "never-pushed", "x"]);
    assert_eq!(
        next(&mut publisher),
        format!("*2\\r\\n{}{}", bulk("never-pushed"), bulk("x"))
    );
}

/// Subscription confirmations and messages are pushes: CLIENT REPLY OFF does not silence
/// them, in RESP2 or RESP3, as on valkey-server.
#[test]
fn reply_off_still_delivers_pubsub_confirmations_like_valkey() {
    let ferrokv = server(&[]);
    let valkey = common::start_valkey(&[]);
    let run = |server: &ServerProcess, protocol: &str| -> Vec<String> {
        let mut log = Vec::new();
        let mut sub = connect(server);
        let mut publisher = connect(server);
        cmd(&mut sub, &["HELLO", protocol]);
        sub.send_raw(&encode(&["CLIENT", "REPLY", "OFF"]));
        sub.send_raw(&encode(&["SUBSCRIBE", "channel"]));
        sub.send_raw(&encode(&["PSUBSCRIBE", "ch*"]));
        log.push(next(&mut sub));
        log.push(next(&mut sub));
        log.push(cmd(&mut publisher, &["PUBLISH", "channel", "hello"]));
        log.push(next(&mut sub));
        log.push(next(&mut sub));
        sub.send_raw(&encode(&["UNSUBSCRIBE", "channel"]));
        sub.send_raw(&encode(&["PUNSUBSCRIBE", "ch*"]));
        log.push(next(&mut sub));
        log.push(next(&mut sub));
        // Silenced again: PING's reply never comes, ECHO's does after REPLY ON.
        sub.send_raw(&encode(&["PING"]));
        sub.send_raw(&encode(&["CLIENT", "REPLY", "ON"]));
        log.push(next(&mut sub));
        log.push(cmd(&mut sub, &["ECHO", "back"]));
        log
    };
    for protocol in ["2", "3"] {
        assert_eq!(
            run(&ferrokv, protocol),
            run(&valkey, protocol),
            "RESP{protocol}"
        );
    }
}
