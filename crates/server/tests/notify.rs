//! systemd readiness: with NOTIFY_SOCKET set, the server sends READY=1 once its port accepts
//! connections and STOPPING=1 when it begins to shut down; the shutdown log says what it drained.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;

use support::PATIENCE;

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let len = socket.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

#[test]
fn ready_after_listening_and_stopping_at_shutdown() {
    let temp = tempfile::tempdir().unwrap();
    let socket_path = temp.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut server = support::launch().env("NOTIFY_SOCKET", &socket_path).start();

    assert_eq!(receive(&socket).trim(), "READY=1");
    let mut client =
        TcpStream::connect(server.addr).expect("the port accepts once READY=1 is sent");
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client
        .write_all(b"set q 0 0 1\r\nx\r\nget q/open\r\n")
        .unwrap();
    let expected = b"STORED\r\nVALUE q 0 1\r\nx\r\nEND\r\n";
    let mut reply = vec![0; expected.len()];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(reply, expected);

    server.signal("TERM");
    assert_eq!(receive(&socket).trim(), "STOPPING=1");
    let summary = server.wait_for_log("lanner stopped");
    assert!(summary.contains("1 connections closed"), "{summary}");
    assert!(summary.contains("1 open reads returned"), "{summary}");
    assert!(summary.contains("1 journals flushed"), "{summary}");
    assert!(server.wait_exit().success());
}
