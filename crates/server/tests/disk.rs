//! The real binary on a real disk that fills up, and on a damaged journal.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Client, Server, set_request};

/// A size-limited tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `dir`, or says why not.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not running as root".to_owned());
        }
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(Tmpfs {
            path: dir.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        drop(Command::new("umount").arg(&self.path).status());
    }
}

/// `set` of `data`; returns the reply line.
fn set(client: &mut Client, queue: &str, data: &[u8]) -> String {
    client.send(&set_request(queue, data));
    client.read_line().trim_end().to_owned()
}

fn item(index: usize) -> Vec<u8> {
    let mut data = format!("item {index:06} ").into_bytes();
    data.resize(32 * 1024, b'a' + (index % 26) as u8);
    data
}

#[test]
fn a_full_disk_refuses_sets_and_resumes_without_a_restart_when_space_returns() {
    let temp = tempfile::tempdir().expect("temp dir");
    let tmpfs = match Tmpfs::mount(temp.path(), "2m") {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            // CI runs as root, where the mount must work: a skip there would hide the test.
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot mount a tmpfs under CI: {reason}"
            );
            println!("skipped: cannot mount a tmpfs ({reason})");
            return;
        }
    };
    // Room the test gives back later, in the same file system.
    let filler = tmpfs.path.join("filler");
    std::fs::write(&filler, vec![0u8; 512 * 1024]).expect("write the filler");
    let server = Server::start_in(&tmpfs.path.join("data"), None);
    let mut client = server.connect();
    assert_eq!(set(&mut client, "other", b"kept"), "STORED");

    let mut acknowledged = 0;
    let refusal = loop {
        let reply = set(&mut client, "jobs", &item(acknowledged));
        if reply != "STORED" {
            break reply;
        }
        acknowledged += 1;
        assert!(
            acknowledged < 100,
            "a 2 MiB disk took {acknowledged} items of 32 KiB"
        );
    };
    assert!(
        refusal.starts_with("SERVER_ERROR journal write failed: No space left on device"),
        "{refusal}"
    );
    assert!(
        acknowledged > 10,
        "only {acknowledged} sets before the disk was full"
    );
    let again = set(&mut client, "jobs", &item(999));
    assert!(again.starts_with("SERVER_ERROR"), "{again}");
    assert_eq!(
        client.stat("queue_jobs_journal_poisoned").as_deref(),
        Some("0")
    );

    // Every acknowledged item is there and reads are served, on this queue and others.
    for index in 0..acknowledged {
        assert_eq!(client.get("jobs"), Some(item(index)), "item {index}");
    }
    assert_eq!(client.get("other"), Some(b"kept".to_vec()));

    std::fs::remove_file(&filler).expect("free space");
    assert_eq!(set(&mut client, "jobs", b"after"), "STORED");
    // The set that hit the full disk was answered with an error but stayed queued, and was
    // written with the retry (its outcome was unknown to the client, as after any error).
    assert_eq!(client.get("jobs"), Some(item(acknowledged)));
    assert_eq!(client.get("jobs"), Some(b"after".to_vec()));
    assert_eq!(client.get("jobs"), None);
    drop(client);
    drop(server);
}

/// The journal of queue `q` in `dir`.
fn journal_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.to_string_lossy().ends_with(".journal"))
        .expect("journal file")
}

#[test]
fn damage_in_the_middle_refuses_startup_naming_file_and_offset_until_salvage() {
    let mut server = Server::start();
    let mut client = server.connect();
    for index in 0..5 {
        client.set("q", format!("item-{index}").as_bytes());
    }
    server.kill();
    let dir = server.data_dir().to_owned();
    let journal = journal_file(&dir);
    let mut bytes = std::fs::read(&journal).expect("read journal");
    // Segment header (18 bytes), then Add records of 8 + 17 + 6 bytes: damage the third.
    let (header, record) = (18, 8 + 17 + 6);
    let third = header + 2 * record;
    bytes[third + 20] ^= 0x40;
    std::fs::write(&journal, &bytes).expect("damage the journal");

    let log = match Server::try_start_in(&dir) {
        Ok(_) => panic!("lanner started on a journal damaged in the middle"),
        Err(log) => log,
    };
    assert!(log.contains(&journal.display().to_string()), "{log}");
    assert!(log.contains(&format!("offset {third}")), "{log}");
    assert!(log.contains("--salvage"), "{log}");
    assert_eq!(
        std::fs::read(&journal).expect("read"),
        bytes,
        "refusing changes nothing"
    );

    let server = Server::try_start_with(&dir, None, &["--salvage"])
        .unwrap_or_else(|log| panic!("--salvage did not start:\n{log}"));
    let mut client = server.connect();
    assert_eq!(client.get("q"), Some(b"item-0".to_vec()));
    assert_eq!(client.get("q"), Some(b"item-1".to_vec()));
    assert_eq!(client.get("q"), None, "salvage cut the file at the damage");
}
