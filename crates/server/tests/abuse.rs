//! Hostile and careless clients: too many connections, ten thousand idle ones, clients that
//! never read their replies, slow senders and garbage streams, while others keep working.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Client, Server};

/// Connections streaming random bytes at once in the garbage test.
const GARBAGE_STREAMS: u64 = 100;

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
fn slow_senders_and_a_hundred_garbage_streams_do_not_disturb_normal_clients() {
    let server = Server::start();
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    let garbage: Vec<std::thread::JoinHandle<u64>> = (0..GARBAGE_STREAMS)
        .map(|seed| {
            let addr = server.addr;
            std::thread::spawn(move || stream_garbage(addr, seed, Duration::from_secs(2)))
        })
        .collect();
    let mut client = server.connect();
    let mut slowest = Duration::ZERO;
    let mut rounds = 0;
    let mut byte = 0;
    while rounds < 200 || !garbage.iter().all(std::thread::JoinHandle::is_finished) {
        for stream in &mut slow {
            // Errors mean the server closed a garbage-looking request; that is fine here.
            stream.write_all(&[b"get slowly"[byte % 10]]).ok();
        }
        byte += 1;
        let started = Instant::now();
        assert_serves_normally(&mut client, 1);
        slowest = slowest.max(started.elapsed());
        rounds += 1;
    }
    let garbage_connections: u64 = garbage
        .into_iter()
        .map(|thread| thread.join().expect("garbage thread"))
        .sum();
    assert_serves_normally(&mut client, 20);
    // Each thread reconnects whenever the server closes its garbage (1,131 to 2,747 in all
    // here); no more than one each would mean the server stopped closing them.
    assert!(
        garbage_connections > 2 * GARBAGE_STREAMS,
        "only {garbage_connections} garbage connections"
    );
    eprintln!(
        "{rounds} normal round trips, slowest {slowest:?}, beside {garbage_connections} \
         garbage connections"
    );
    // A generous bound for a shared 2-core machine; an unbounded stall would show here.
    assert!(
        slowest < Duration::from_secs(2),
        "a normal round trip took {slowest:?} during the garbage streams ({rounds} rounds, \
         {garbage_connections} garbage connections)"
    );
}

#[test]
fn slowloris_clients_are_closed_by_client_timeout_while_others_work() {
    let server = Server::start_with_config("[server]\nclient_timeout = \"700ms\"\n");
    let request = b"get slowloris\r\n";
    let slowloris: Vec<std::thread::JoinHandle<usize>> = (0..5)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || send_one_byte_per_second(addr, request))
        })
        .collect();
    let mut client = server.connect();
    while !slowloris.iter().all(std::thread::JoinHandle::is_finished) {
        assert_serves_normally(&mut client, 1);
    }
    for thread in slowloris {
        let sent = thread.join().expect("slowloris thread");
        assert!(
            sent < request.len(),
            "the server waited for the whole slow request ({sent} bytes)"
        );
    }
    client.wait_for_stat("curr_connections", "1");
    assert_serves_normally(&mut client, 20);
}

/// Sends `request` one byte per second until the server closes the connection; returns the
/// bytes sent by then.
fn send_one_byte_per_second(addr: std::net::SocketAddr, request: &[u8]) -> usize {
    let mut stream = TcpStream::connect(addr).expect("connect");
    // The read timeout paces the sender; a read that ends early means the server closed.
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("read timeout");
    let deadline = Instant::now() + support::PATIENCE;
    for (sent, byte) in request.iter().enumerate() {
        if stream.write_all(&[*byte]).is_err() {
            return sent;
        }
        let mut reply = [0u8; 64];
        match stream.read(&mut reply) {
            Ok(0) => return sent + 1,
            Ok(read) => panic!(
                "a partial line was answered {:?}",
                String::from_utf8_lossy(&reply[..read])
            ),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return sent + 1,
            Err(_) => assert!(Instant::now() < deadline, "never closed"),
        }
    }
    request.len()
}

#[test]
fn partly_received_requests_share_max_buffered_request_bytes() {
    let server = Server::start_with_config(
        "[server]\nmax_request_size = \"1MiB\"\nmax_buffered_request_bytes = \"1MiB\"\n",
    );
    let item = vec![b'a'; 900_000];
    let header = format!("set big 0 0 {}\r\n", item.len()).into_bytes();
    let mut observer = server.connect();
    let mut first = server.connect();
    first.send(&header);
    first.send(&item[..600_000]);
    wait_until_read(&mut observer, (header.len() + 600_000) as u64);
    // A second large request in progress takes the server over the cap: it is refused.
    let mut second = TcpStream::connect(server.addr).expect("connect");
    second
        .set_read_timeout(Some(support::PATIENCE))
        .expect("read timeout");
    let writer = {
        let mut request = header.clone();
        request.extend_from_slice(&item[..600_000]);
        let mut stream = second.try_clone().expect("clone");
        // The server stops reading at the refusal; the rest of the write may fail.
        std::thread::spawn(move || drop(stream.write_all(&request)))
    };
    let mut reply = Vec::new();
    // Ends at the close (EOF, or a reset after the line: the server left bytes unread).
    drop(second.read_to_end(&mut reply));
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "SERVER_ERROR out of memory for requests\r\n"
    );
    writer.join().expect("writer");
    // The first goes on, and once it is stored its bytes are free for the next one.
    first.send(&item[600_000..]);
    first.expect(b"\r\n", b"STORED\r\n");
    let mut third = server.connect();
    third.set("big", &item);
    assert_eq!(first.get("big").as_deref(), Some(item.as_slice()));
    assert_eq!(third.get("big").as_deref(), Some(item.as_slice()));
    assert_serves_normally(&mut observer, 3);
}

#[test]
fn a_text_put_over_max_buffered_request_bytes_is_refused_with_an_error_line() {
    let server = Server::start_with_text_and_config(
        "[server]\nmax_request_size = \"1MiB\"\nmax_buffered_request_bytes = \"1MiB\"\n",
    );
    let addr = server.text_addr.expect("text listener");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(support::PATIENCE))
        .expect("read timeout");
    let mut request = b"put q:\n".to_vec();
    for _ in 0..20 {
        request.extend_from_slice(&[b'a'; 60_000]);
        request.push(b'\n');
    }
    let writer = {
        let mut stream = stream.try_clone().expect("clone");
        std::thread::spawn(move || drop(stream.write_all(&request)))
    };
    let mut reply = Vec::new();
    drop(stream.read_to_end(&mut reply));
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "-Out of memory for requests.\n"
    );
    writer.join().expect("writer");
    let mut client = server.text_connect();
    assert_eq!(client.put("q", &[b"small"]), 1);
    assert_eq!(client.read("get q").as_deref(), Some(b"small".as_slice()));
}

/// Waits until the server has read at least `bytes` beyond the `stats` requests of this poll.
fn wait_until_read(observer: &mut Client, bytes: u64) {
    let deadline = Instant::now() + support::PATIENCE;
    let mut polls = 0u64;
    loop {
        polls += 1;
        let read = observer.stat_u64("bytes_read");
        if read >= bytes + polls * b"stats\r\n".len() as u64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the server read only {read} bytes"
        );
        std::thread::sleep(support::POLL_INTERVAL);
    }
}

/// Streams pseudo-random bytes for `period`: whenever the server closes the connection (or
/// 4 MiB went through one), it connects again. Returns how many connections it used.
fn stream_garbage(addr: std::net::SocketAddr, seed: u64, period: Duration) -> u64 {
    let until = Instant::now() + period;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunk = [0u8; 4096];
    let mut connections = 0;
    while Instant::now() < until {
        let mut stream = TcpStream::connect(addr).expect("connect");
        connections += 1;
        for _ in 0..1024 {
            for byte in &mut chunk {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            if stream.write_all(&chunk).is_err() || Instant::now() >= until {
                break;
            }
        }
    }
    connections
}
