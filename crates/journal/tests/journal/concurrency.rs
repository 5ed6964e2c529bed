//! Many threads appending, writing and syncing one journal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::Bytes;
use lanner_journal::{Record, Seq};

use crate::common::*;

const THREADS: u32 = 8;
const PER_THREAD: u32 = 300;

fn record(thread: u32, i: u32) -> Record {
    Record::Add {
        add_time_ms: i64::from(thread),
        expiry_ms: i64::from(i),
        data: Bytes::from(format!("{thread}/{i}")),
    }
}

#[test]
fn concurrent_appenders_lose_nothing_and_keep_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), opts(4096));
    let journal = Arc::new(journal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let journal = Arc::clone(&journal);
            thread::spawn(move || {
                let mut appended: Vec<(Seq, Record)> = Vec::new();
                for i in 0..PER_THREAD {
                    let record = record(t, i);
                    let seq = journal.append(&record);
                    appended.push((seq, record));
                    if i % 4 == 0 {
                        journal.sync_through(seq).unwrap();
                    } else {
                        journal.write_through(seq).unwrap();
                    }
                }
                appended
            })
        })
        .collect();
    let mut appended: Vec<(Seq, Record)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let stats = journal.stats();
    let sync_calls = u64::from(THREADS * PER_THREAD / 4);
    assert!(stats.fsyncs <= sync_calls + stats.rotations, "{stats:?}");
    assert!(stats.rotations > 0);
    assert_eq!(stats.total_bytes, disk_bytes(dir.path()));
    drop(journal);

    appended.sort_by_key(|(seq, _)| *seq);
    let expected: Vec<Record> = appended.into_iter().map(|(_, r)| r).collect();
    let (_, replay) = open(dir.path(), opts(4096));
    assert_eq!(replay.records.len(), (THREADS * PER_THREAD) as usize);
    assert_eq!(replay.records, expected);
}

/// Appends and rewrites happen under a queue-like lock; writes and syncs outside it, as the
/// queue crate does. Replaying must give the final state.
#[test]
fn rewrites_racing_with_writers_keep_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), opts(2048));
    let journal = Arc::new(journal);
    let queue = Arc::new(Mutex::new(VecDeque::<Record>::new()));
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            let (journal, queue) = (Arc::clone(&journal), Arc::clone(&queue));
            thread::spawn(move || {
                for i in 0..400u32 {
                    let seq = {
                        let mut items = queue.lock().unwrap();
                        if i % 3 == 2 && !items.is_empty() {
                            items.pop_front();
                            journal.append(&Record::Remove)
                        } else if i % 50 == 49 {
                            journal.rewrite(items.iter().cloned().collect())
                        } else {
                            let item = record(t, i);
                            items.push_back(item.clone());
                            journal.append(&item)
                        }
                    };
                    if i % 7 == 0 {
                        journal.sync_through(seq)
                    } else {
                        journal.write_through(seq)
                    }
                    .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert!(journal.stats().rewrites > 0);
    drop(journal);
    let (_, replay) = open(dir.path(), opts(2048));
    let mut state = VecDeque::new();
    for record in replay.records {
        match record {
            Record::Remove => {
                state.pop_front().unwrap();
            }
            add => state.push_back(add),
        }
    }
    assert_eq!(state, *queue.lock().unwrap());
}
