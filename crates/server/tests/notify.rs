//! systemd readiness: with NOTIFY_SOCKET set, the server sends READY=1 once its port accepts
//! connections and STOPPING=1 when it begins to shut down; the shutdown log says what it drained.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let len = socket.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// The first log line containing `needle`.
fn wait_for_line(log: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = log
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

#[test]
fn ready_after_listening_and_stopping_at_shutdown() {
    let temp = tempfile::tempdir().unwrap();
    let socket_path = temp.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lanner"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--text-listen",
            "",
            "--admin-listen",
            "",
        ])
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .env("NOTIFY_SOCKET", &socket_path)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });

    assert_eq!(receive(&socket).trim(), "READY=1");
    let line = wait_for_line(&log, "lanner listening on ");
    let addr: SocketAddr = line
        .split("lanner listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .expect("an address");
    let mut client = TcpStream::connect(addr).expect("the port accepts once READY=1 is sent");
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client
        .write_all(b"set q 0 0 1\r\nx\r\nget q/open\r\n")
        .unwrap();
    let expected = b"STORED\r\nVALUE q 0 1\r\nx\r\nEND\r\n";
    let mut reply = vec![0; expected.len()];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(reply, expected);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(receive(&socket).trim(), "STOPPING=1");
    let summary = wait_for_line(&log, "lanner stopped");
    assert!(summary.contains("1 connections closed"), "{summary}");
    assert!(summary.contains("1 open reads returned"), "{summary}");
    assert!(summary.contains("1 journals flushed"), "{summary}");
    assert!(child.wait().unwrap().success());
}
