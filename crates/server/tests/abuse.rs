//! Hostile and careless clients: too many connections, ten thousand idle ones, clients that
//! never read their replies, slow senders and garbage streams, while others keep working.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Client, Server};

/// A normal client's round trips keep working and come back in order.
fn assert_serves_normally(client: &mut Client, rounds: usize) {
    for round in 0..rounds {
        let item = format!("normal-{round}").into_bytes();
        client.set("normal", &item);
        assert_eq!(client.get("normal"), Some(item));
    }
}

#[test]
fn connections_beyond_max_connections_are_refused_with_a_reason() {
    let server = Server::start_with_config("[server]\nmax_connections = 2\n");
    let mut first = server.connect();
    let second = server.connect();
    let mut third = server.connect();
    assert_eq!(third.read_line(), "SERVER_ERROR too many connections\r\n");
    assert!(third.is_closed());
    second.close();
    first.wait_for_stat("curr_connections", "1");
    let mut fourth = server.connect();
    assert_serves_normally(&mut fourth, 3);
}

#[test]
fn ten_thousand_idle_connections_do_not_stop_the_server() {
    let server = Server::start();
    let idle: Vec<TcpStream> = (0..10_000)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    let mut client = server.connect();
    client.wait_for_stat("curr_connections", "10001");
    assert_serves_normally(&mut client, 100);
    drop(idle);
    client.wait_for_stat("curr_connections", "1");
}

#[test]
fn a_client_that_never_reads_is_dropped_and_others_are_unaffected() {
    let server = Server::start_with_config("[server]\nclient_timeout = \"500ms\"\n");
    let mut writer = server.connect();
    writer.set("big", &vec![b'x'; 1 << 20]);
    // `writer` closes once idle for client_timeout; `greedy` only by its stalled replies.
    let mut greedy = TcpStream::connect(server.addr).expect("connect");
    let peeks = b"get big/peek\r\n".repeat(500);
    greedy.write_all(&peeks).expect("send");
    drop(writer);
    let mut other = server.connect();
    assert_serves_normally(&mut other, 50);
    other.wait_for_stat("curr_connections", "1");
    let rss_kib = server.resident_kib();
    assert!(
        rss_kib < 128 * 1024,
        "replies are not buffered without bound: {rss_kib} KiB"
    );
}

#[test]
fn slow_senders_and_garbage_streams_do_not_disturb_normal_clients() {
    let server = Server::start();
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    let garbage: Vec<std::thread::JoinHandle<()>> = (0..20u64)
        .map(|seed| {
            let addr = server.addr;
            std::thread::spawn(move || stream_garbage(addr, seed))
        })
        .collect();
    let mut client = server.connect();
    let started = Instant::now();
    let mut byte = 0;
    while started.elapsed() < Duration::from_secs(1) {
        for stream in &mut slow {
            // Errors mean the server closed a garbage-looking request; that is fine here.
            stream.write_all(&[b"get slowly"[byte % 10]]).ok();
        }
        byte += 1;
        assert_serves_normally(&mut client, 20);
    }
    for thread in garbage {
        thread.join().expect("garbage thread");
    }
    assert_serves_normally(&mut client, 20);
}

/// Writes pseudo-random bytes until the server closes the connection or 4 MiB were sent.
fn stream_garbage(addr: std::net::SocketAddr, seed: u64) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunk = [0u8; 4096];
    for _ in 0..1024 {
        for byte in &mut chunk {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        if stream.write_all(&chunk).is_err() {
            return;
        }
    }
}
