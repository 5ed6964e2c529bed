//! Aliases: a `set` fans out to every destination queue; reads from an alias miss.

mod support;

use support::Server;

const CONFIG: &str = r#"
[aliases.everyone]
destination_queues = ["left", "right"]
"#;

#[test]
fn a_set_to_an_alias_reaches_every_destination() {
    let server = Server::start_with_config(CONFIG);
    let mut client = server.connect();
    client.set("everyone", b"hello");
    assert_eq!(client.get("left"), Some(b"hello".to_vec()));
    assert_eq!(client.get("right"), Some(b"hello".to_vec()));
    assert_eq!(
        client.stat("queue_everyone_put_items").as_deref(),
        Some("1")
    );
    assert_eq!(
        client.stat("queue_everyone_put_bytes").as_deref(),
        Some("5")
    );
    assert_eq!(
        client.stat("queue_everyone_children").as_deref(),
        Some("left,right")
    );
}

#[test]
fn reads_delete_and_flush_of_an_alias_touch_nothing() {
    let server = Server::start_with_config(CONFIG);
    let mut client = server.connect();
    client.set("everyone", b"x");
    assert_eq!(client.get("everyone"), None);
    assert_eq!(client.get("everyone/open"), None);
    client.expect(b"delete everyone\r\n", b"DELETED\r\n");
    client.expect(b"flush everyone\r\n", b"END\r\n");
    assert!(
        client.stat("queue_everyone_items").is_none(),
        "no queue was created for the alias"
    );
    assert_eq!(client.get("left"), Some(b"x".to_vec()));
}

#[test]
fn dump_stats_lists_aliases() {
    let server = Server::start_with_config(CONFIG);
    let mut client = server.connect();
    client.expect(
        b"dump_stats everyone\r\n",
        b"queue 'everyone' {\r\n  put_items=0\r\n  put_bytes=0\r\n  children=left,right\r\n}\r\nEND\r\n",
    );
}
