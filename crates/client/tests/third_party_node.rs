//! The npm `memcached` client, unchanged, against real lanner servers: single-server
//! operations, and its ketama ring compared with lanner-client's over three servers. It is
//! installed by `scripts/install-test-clients.sh`; without Node.js or the package this test
//! prints why and passes. See docs/clients.md for the client's quirks.

mod support;

use std::process::Command;
use std::time::Duration;

use lanner_client::Distribution;
use support::{Lanner, client_script, queue_stat, quick_client, run_to_success, third_party_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_memcached_works_and_places_queues_where_ketama_does() {
    let modules = third_party_dir().join("node/node_modules");
    if !modules.join("memcached/package.json").exists() {
        println!(
            "SKIPPED: the npm memcached package is not installed in {} \
             (run scripts/install-test-clients.sh)",
            modules.display()
        );
        return;
    }
    if Command::new("node").arg("--version").output().is_err() {
        println!("SKIPPED: node is not on the PATH");
        return;
    }
    let plain = Lanner::start();
    let echo = Lanner::start_with_config("[server]\necho_full_key = true\n");
    let ring = [Lanner::start(), Lanner::start(), Lanner::start()];
    let mut command = Command::new("node");
    command
        .arg(client_script("memcached_check.js"))
        .arg(&modules)
        .arg(plain.address())
        .arg(echo.address())
        .args(ring.iter().map(Lanner::address));
    let output = tokio::task::spawn_blocking(move || run_to_success(command))
        .await
        .unwrap();
    assert!(output.contains("all checks passed"), "{output}");

    // Each queue the Node client stored must sit where lanner-client's ketama puts it.
    let client = quick_client(&[&ring[0], &ring[1], &ring[2]])
        .distribution(Distribution::Ketama)
        .build()
        .unwrap();
    let mut servers_used = std::collections::BTreeSet::new();
    for i in 0..30 {
        let queue = format!("ring{i}");
        let home = client.server_for(&queue).unwrap();
        servers_used.insert(home.to_owned());
        for server in &ring {
            let expected = u64::from(server.address() == home);
            let items = queue_stat(server, &queue, "items").await.unwrap_or(0);
            assert_eq!(items, expected, "{queue} on {}", server.address());
        }
        let item = client.get(&queue, Duration::ZERO).await.unwrap();
        assert_eq!(item.as_deref(), Some(queue.as_bytes()));
    }
    assert_eq!(
        servers_used.len(),
        3,
        "30 queues should use all three servers"
    );
}
