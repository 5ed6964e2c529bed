//! `echo_full_key` (Part 0 #12): `VALUE` repeats the requested key for strict memcache clients.

mod support;

use support::Server;

#[test]
fn value_names_the_bare_queue_by_default() {
    let server = Server::start();
    let mut client = server.connect();
    client.set("q", b"x");
    client.expect(b"get q/t=10/open\r\n", b"VALUE q 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn echo_full_key_repeats_the_key_with_its_options() {
    let server = Server::start_with_config("[server]\necho_full_key = true\n");
    let mut client = server.connect();
    client.set("q", b"x");
    client.set("q", b"y");
    client.expect(
        b"get q/t=10/open\r\n",
        b"VALUE q/t=10/open 0 1\r\nx\r\nEND\r\n",
    );
    client.expect(
        b"gets q/close/open\r\n",
        b"VALUE q/close/open 0 1\r\ny\r\nEND\r\n",
    );
}

#[test]
fn a_key_with_control_bytes_or_invalid_utf8_is_answered_with_the_bare_name() {
    let server = Server::start_with_config("[server]\necho_full_key = true\n");
    let mut client = server.connect();
    client.set("q", b"x");
    client.set("q", b"y");
    client.expect(b"get q/a\rb\r\n", b"VALUE q 0 1\r\nx\r\nEND\r\n");
    client.expect(b"get q/\xff\r\n", b"VALUE q 0 1\r\ny\r\nEND\r\n");
}
