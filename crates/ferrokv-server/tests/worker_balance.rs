//! Connections moving between worker threads (`balance.rs`): what a client set up — its
//! database, name, transaction, subscription, half-sent request, pipeline — survives the
//! move, and the workers' counts follow. `active-worker-threads` forces the moves that the
//! load decides otherwise. Every wait is bounded (`eventually`, 10 s reads).

mod common;

use std::sync::atomic::Ordering::Relaxed;

use common::{
    RawClient, ServerProcess, encode, eventually, show, start_ferrokv, start_ferrokv_on_workers,
};

/// One line of DEBUG WORKERS.
#[derive(Debug)]
struct Worker {
    active: bool,
    connections: usize,
    shed: usize,
    current: bool,
}

/// The workers as DEBUG WORKERS reports them to `client`.
fn workers(client: &mut RawClient) -> Vec<Worker> {
    let reply = show(&client.command(&["DEBUG", "WORKERS"]));
    reply
        .split("\\r\\n")
        .filter(|l| l.starts_with("worker="))
        .map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(&format!("{name}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            Worker {
                active: field("active") == "yes",
                connections: field("connections").parse().unwrap_or(usize::MAX),
                shed: field("shed").parse().unwrap_or(usize::MAX),
                current: field("current") == "yes",
            }
        })
        .collect()
}

fn worker_of(client: &mut RawClient) -> usize {
    workers(client)
        .iter()
        .position(|w| w.current)
        .expect("the caller's worker is listed")
}

fn connect(server: &ServerProcess) -> RawClient {
    RawClient::connect(server.port).expect("connect")
}

fn cmd(client: &mut RawClient, args: &[&str]) -> String {
    show(&client.command(args))
}

#[test]
fn without_load_one_worker_serves_every_client() {
    let server = start_ferrokv(&["--worker-threads", "3", "--enable-debug-command", "yes"]);
    let mut clients: Vec<RawClient> = (0..6).map(|_| connect(&server)).collect();
    for client in &mut clients {
        assert_eq!(worker_of(client), 0);
    }
    let table = workers(&mut clients[0]);
    assert_eq!(table.len(), 3);
    assert!(
        table[0].active && !table[1].active && !table[2].active,
        "{table:?}"
    );
    assert_eq!(table[0].connections, 6);
}

#[test]
fn a_connection_keeps_its_state_when_it_moves_to_another_worker() {
    let server = start_ferrokv_on_workers(2, &["--enable-debug-command", "yes"]);
    let mut control = connect(&server);
    // New connections go to the worker with fewer: they alternate.
    let mut others: Vec<RawClient> = (0..9).map(|_| connect(&server)).collect();
    let on_second: Vec<usize> = (0..others.len())
        .filter(|&i| worker_of(&mut others[i]) == 1)
        .collect();
    assert!(on_second.len() >= 4, "placement alternates: {on_second:?}");
    // Each of these has something to carry, and is on worker 1.
    let mut pick = on_second.into_iter();
    let [selected, in_multi, subscriber, half_sent] = [(); 4].map(|_| pick.next().expect("client"));

    let selected_id = cmd(&mut others[selected], &["CLIENT", "ID"]);
    assert_eq!(cmd(&mut others[selected], &["SELECT", "5"]), "+OK\\r\\n");
    assert_eq!(
        cmd(&mut others[selected], &["CLIENT", "SETNAME", "mover"]),
        "+OK\\r\\n"
    );
    assert_eq!(cmd(&mut others[selected], &["SET", "k", "v"]), "+OK\\r\\n");
    assert_eq!(cmd(&mut others[in_multi], &["MULTI"]), "+OK\\r\\n");
    assert_eq!(
        cmd(&mut others[in_multi], &["SET", "x", "1"]),
        "+QUEUED\\r\\n"
    );
    assert_eq!(
        cmd(&mut others[subscriber], &["SUBSCRIBE", "news"]),
        "*3\\r\\n$9\\r\\nsubscribe\\r\\n$4\\r\\nnews\\r\\n:1\\r\\n"
    );

    assert_eq!(
        cmd(
            &mut control,
            &["CONFIG", "SET", "active-worker-threads", "1"]
        ),
        "+OK\\r\\n"
    );
    eventually(
        10,
        "worker 1 to be asked to hand its connections on",
        || {
            let table = workers(&mut control);
            !table[1].active && table[1].shed > 0
        },
    );

    // Half a request: the read that brings it ends a batch, and the connection moves with
    // the half in its buffer.
    let request = encode(&["ECHO", "carried"]);
    let (first, rest) = request.split_at(request.len() / 2);
    others[half_sent].send_raw(first);
    std::thread::sleep(std::time::Duration::from_millis(200));
    others[half_sent].send_raw(rest);
    assert_eq!(
        show(&others[half_sent].read_reply().expect("reply")),
        "$7\\r\\ncarried\\r\\n"
    );

    // A command queued inside MULTI ends a batch too; EXEC runs on the new worker.
    assert_eq!(
        cmd(&mut others[in_multi], &["SET", "y", "2"]),
        "+QUEUED\\r\\n"
    );
    assert_eq!(
        cmd(&mut others[in_multi], &["EXEC"]),
        "*2\\r\\n+OK\\r\\n+OK\\r\\n"
    );
    assert_eq!(cmd(&mut others[in_multi], &["GET", "y"]), "$1\\r\\n2\\r\\n");

    // A subscriber's PING moves it; it still gets what is published.
    assert_eq!(
        cmd(&mut others[subscriber], &["PING"]),
        "*2\\r\\n$4\\r\\npong\\r\\n$0\\r\\n\\r\\n"
    );
    assert_eq!(cmd(&mut control, &["PUBLISH", "news", "hello"]), ":1\\r\\n");
    assert_eq!(
        show(&others[subscriber].read_reply().expect("message")),
        "*3\\r\\n$7\\r\\nmessage\\r\\n$4\\r\\nnews\\r\\n$5\\r\\nhello\\r\\n"
    );

    // A pipeline that arrives over several reads is answered whole and in order, wherever
    // its batches run.
    let client = &mut others[selected];
    let pipeline: Vec<u8> = (0..3000)
        .flat_map(|_| encode(&["INCR", "counter"]))
        .collect();
    client.send_raw(&pipeline);
    for n in 1..=3000 {
        assert_eq!(
            show(&client.read_reply().expect("reply")),
            format!(":{n}\\r\\n")
        );
    }
    // Its database, name and id came along.
    assert_eq!(cmd(client, &["GET", "k"]), "$1\\r\\nv\\r\\n");
    assert_eq!(cmd(client, &["CLIENT", "GETNAME"]), "$5\\r\\nmover\\r\\n");
    assert_eq!(cmd(client, &["CLIENT", "ID"]), selected_id);

    // Every client that ran a command since is on worker 0; the rest follow theirs.
    for (i, client) in others.iter_mut().enumerate() {
        if i != subscriber {
            assert_eq!(cmd(client, &["PING"]), "+PONG\\r\\n");
        }
    }
    eventually(10, "every connection on worker 0", || {
        let table = workers(&mut control);
        table[1].connections == 0 && table[0].connections == 10
    });
    for (i, client) in others.iter_mut().enumerate() {
        if i != subscriber {
            assert_eq!(worker_of(client), 0, "client {i}");
        }
    }

    // Two workers again: worker 0 hands on what it holds over an even share.
    assert_eq!(
        cmd(
            &mut control,
            &["CONFIG", "SET", "active-worker-threads", "2"]
        ),
        "+OK\\r\\n"
    );
    eventually(10, "connections back on worker 1", || {
        for (i, client) in others.iter_mut().enumerate() {
            if i != subscriber {
                let _ = cmd(client, &["PING"]);
            }
        }
        let table = workers(&mut control);
        table[1].connections >= 2 && table[0].connections + table[1].connections == 10
    });
    assert_eq!(cmd(&mut others[selected], &["GET", "k"]), "$1\\r\\nv\\r\\n");
}

#[test]
fn clients_stay_correct_while_the_workers_serving_them_change_under_load() {
    let server = start_ferrokv_on_workers(3, &["--enable-debug-command", "yes"]);
    let port = server.port;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flips = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flipper = {
        let (done, flips) = (done.clone(), flips.clone());
        std::thread::spawn(move || {
            let mut control = RawClient::connect(port).expect("connect");
            for active in [1, 3, 2, 1, 2, 3].iter().cycle() {
                if done.load(Relaxed) {
                    break;
                }
                let n = active.to_string();
                assert_eq!(
                    cmd(
                        &mut control,
                        &["CONFIG", "SET", "active-worker-threads", &n]
                    ),
                    "+OK\\r\\n"
                );
                flips.fetch_add(1, Relaxed);
                // The balancer applies it on its next tick (100 ms).
                std::thread::sleep(std::time::Duration::from_millis(120));
            }
        })
    };
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let flips = flips.clone();
            std::thread::spawn(move || {
                let mut client = RawClient::connect(port).expect("connect");
                let key = format!("counter:{c}");
                let mut expected: i64 = 0;
                let mut moved = std::collections::BTreeSet::new();
                // Until the serving workers changed a dozen times (bounded: 10 s reads).
                let mut round = 0;
                while round < 150 || flips.load(Relaxed) < 12 {
                    round += 1;
                    // A pipeline of INCRs, answered in order.
                    let pipeline: Vec<u8> = (0..20).flat_map(|_| encode(&["INCR", &key])).collect();
                    client.send_raw(&pipeline);
                    for _ in 0..20 {
                        expected += 1;
                        assert_eq!(
                            show(&client.read_reply().expect("reply")),
                            format!(":{expected}\\r\\n"),
                            "client {c} round {round}"
                        );
                    }
                    // A transaction split over two writes.
                    assert_eq!(cmd(&mut client, &["MULTI"]), "+OK\\r\\n");
                    assert_eq!(cmd(&mut client, &["INCR", &key]), "+QUEUED\\r\\n");
                    expected += 1;
                    assert_eq!(
                        cmd(&mut client, &["EXEC"]),
                        format!("*1\\r\\n:{expected}\\r\\n")
                    );
                    moved.insert(worker_of(&mut client));
                }
                (moved.len(), expected)
            })
        })
        .collect();
    let outcomes: Vec<(usize, i64)> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    done.store(true, Relaxed);
    flipper.join().expect("flipper thread");
    assert!(
        outcomes.iter().any(|&(workers, _)| workers > 1),
        "some client was served by several workers: {outcomes:?}"
    );
    // The counts follow the connections: every other one has closed, this one remains.
    let mut last = RawClient::connect(port).expect("connect");
    let mut table = Vec::new();
    let settled = common::wait_for(10, || {
        table = workers(&mut last);
        table.iter().map(|w| w.connections).sum::<usize>() == 1
    });
    assert!(settled, "connection counts: {table:?}");
    for (c, (_, expected)) in outcomes.iter().enumerate() {
        assert_eq!(
            cmd(&mut last, &["GET", &format!("counter:{c}")]),
            format!("${}\\r\\n{expected}\\r\\n", expected.to_string().len())
        );
    }
}

#[test]
fn unix_socket_clients_move_too() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let path = std::env::temp_dir().join(format!("ferrokv-balance-{}.sock", std::process::id()));
    let path_text = path.to_string_lossy().into_owned();
    let server = start_ferrokv_on_workers(
        2,
        &["--enable-debug-command", "yes", "--unixsocket", &path_text],
    );
    let mut control = connect(&server);
    // One request, its whole expected reply.
    let roundtrip = |socket: &mut UnixStream, args: &[&str], expected: &str| {
        socket.write_all(&encode(args)).expect("write");
        let mut reply = vec![0u8; expected.len()];
        socket.read_exact(&mut reply).expect("reply");
        assert_eq!(String::from_utf8_lossy(&reply), expected, "{args:?}");
    };
    let mut clients: Vec<UnixStream> = (0..4)
        .map(|_| {
            let socket = UnixStream::connect(&path).expect("connect");
            socket
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .expect("timeout");
            socket
        })
        .collect();
    for (i, socket) in clients.iter_mut().enumerate() {
        roundtrip(
            socket,
            &["SET", &format!("u:{i}"), &i.to_string()],
            "+OK\r\n",
        );
    }
    assert!(
        workers(&mut control)[1].connections >= 1,
        "some on worker 1"
    );
    assert_eq!(
        cmd(
            &mut control,
            &["CONFIG", "SET", "active-worker-threads", "1"]
        ),
        "+OK\\r\\n"
    );
    eventually(
        10,
        "worker 1 to be asked to hand its connections on",
        || {
            let table = workers(&mut control);
            !table[1].active && table[1].shed > 0
        },
    );
    for (i, socket) in clients.iter_mut().enumerate() {
        roundtrip(socket, &["PING"], "+PONG\r\n");
        roundtrip(
            socket,
            &["GET", &format!("u:{i}")],
            &format!("$1\r\n{i}\r\n"),
        );
    }
    eventually(10, "every connection on worker 0", || {
        let table = workers(&mut control);
        table[1].connections == 0 && table[0].connections == 5
    });
    drop(server);
    let _ = std::fs::remove_file(&path);
}

/// A TLS connection moves as its whole TLS stream (`relocatable.rs`): the session's keys and
/// sequence numbers go with it, so the records after the move decrypt on the new worker, and
/// a pipeline keeps its order across the moves.
#[test]
fn tls_clients_move_too() {
    use ferrokv_tls::test_pki::{Spec, TestCa};
    use redis::{Client, Connection, TlsCertificates};

    const WAIT: std::time::Duration = std::time::Duration::from_secs(10);
    let dir = common::TempDir::new("balance-tls");
    let ca = TestCa::new(&dir.0, "ca").expect("CA");
    let certificate = ca
        .issue(
            "server",
            &Spec {
                common_name: "server",
                dns: &["localhost", "127.0.0.1"],
                ..Spec::default()
            },
        )
        .expect("server certificate");
    let tls_port = common::free_port().to_string();
    let server = start_ferrokv_on_workers(
        2,
        &[
            "--enable-debug-command",
            "yes",
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            certificate.cert(),
            "--tls-key-file",
            certificate.key(),
            "--tls-ca-cert-file",
            ca.ca(),
            "--tls-auth-clients",
            "no",
        ],
    );
    let mut control = connect(&server);
    let client = Client::build_with_tls(
        format!("rediss://127.0.0.1:{tls_port}/"),
        TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(&ca.cert_file).expect("CA PEM")),
        },
    )
    .expect("a TLS client");
    let mut clients: Vec<Connection> = (0..4)
        .map(|_| {
            let connection = client
                .get_connection_with_timeout(WAIT)
                .expect("a TLS connection");
            connection.set_read_timeout(Some(WAIT)).expect("timeout");
            connection
        })
        .collect();
    for (i, connection) in clients.iter_mut().enumerate() {
        let _: () = redis::cmd("SET")
            .arg(format!("t:{i}"))
            .arg(i)
            .query(connection)
            .expect("SET over TLS");
    }
    // Five connections placed on the less loaded of two workers: worker 1 has two or
    // three, so at least one TLS connection.
    assert!(
        workers(&mut control)[1].connections >= 2,
        "TLS connections on worker 1"
    );
    // Each flip of the serving workers has connections handed on: all of worker 1's when
    // it is let go, worker 0's over an even share when worker 1 serves again. Each client's
    // counter is raised by a pipeline after each flip.
    let pipeline_length = 200;
    for (flip, active) in ["1", "2", "1", "2", "1"].iter().enumerate() {
        assert_eq!(
            cmd(
                &mut control,
                &["CONFIG", "SET", "active-worker-threads", active]
            ),
            "+OK\\r\\n"
        );
        eventually(10, "the balancer to ask for connections", || {
            let table = workers(&mut control);
            if *active == "1" {
                table[1].shed > 0 || table[1].connections == 0
            } else {
                table[0].shed > 0 || table[1].connections > 0
            }
        });
        for (i, connection) in clients.iter_mut().enumerate() {
            let mut pipe = redis::pipe();
            for _ in 0..pipeline_length {
                pipe.cmd("INCR").arg(format!("c:{i}"));
            }
            let counts: Vec<i64> = pipe.query(connection).expect("INCRs over TLS");
            let first = (flip * pipeline_length) as i64 + 1;
            let expected: Vec<i64> = (first..first + pipeline_length as i64).collect();
            assert_eq!(counts, expected, "client {i} after flip {flip}");
            let value: i64 = redis::cmd("GET")
                .arg(format!("t:{i}"))
                .query(connection)
                .expect("GET over TLS");
            assert_eq!(value, i as i64);
        }
    }
    // Worker 1 serves no one now: every TLS connection went on to worker 0, alive.
    for connection in clients.iter_mut() {
        let pong: String = redis::cmd("PING").query(connection).expect("PING");
        assert_eq!(pong, "PONG");
    }
    eventually(10, "every connection on worker 0", || {
        let table = workers(&mut control);
        table[1].connections == 0 && table[0].connections == 5
    });
}
