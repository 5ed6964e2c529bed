//! Read-behind storage: the payloads of a queue's newest items once its in-memory part is
//! full, in a scratch file read back in order as the head drains (spec d.5).
//!
//! The file is a cache, not a record of truth: the journal already holds every item, and the
//! file is rebuilt from the journal at startup. So it has no checksums and is never fsynced.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::item::Item;

/// Encoded items are written to the file once this many bytes are buffered.
const WRITE_BATCH: usize = 256 * 1024;

/// Bytes read from the file at a time when refilling (more for a larger item).
const READ_BATCH: u64 = 256 * 1024;

/// Per item: payload length (u32), add time (i64), expiry (i64), then the payload.
const ITEM_HEADER: usize = 4 + 8 + 8;

/// Items spilled to a file, oldest first.
#[derive(Debug)]
pub struct Spill {
    path: PathBuf,
    file: File,
    /// Encoded items not yet written to the file; they follow everything in the file.
    unwritten: Vec<u8>,
    /// Bytes in the file.
    written: u64,
    /// File offset of the oldest item not yet read back.
    read_at: u64,
    items: u64,
}

impl Spill {
    /// A new, empty spill at `path`. A leftover file is overwritten in place rather than
    /// truncated first: rebuilding a spill of the same size at startup then reuses its cached
    /// pages instead of freeing and allocating them again. Bytes past what this spill wrote
    /// are never read, and the file is cut to its written length once the items are read.
    pub fn create(path: &Path) -> io::Result<Spill> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(Spill {
            path: path.to_owned(),
            file,
            unwritten: Vec::new(),
            written: 0,
            read_at: 0,
            items: 0,
        })
    }

    /// Items held.
    pub fn len(&self) -> u64 {
        self.items
    }

    /// Appends an item after the ones held. The item is held even when this returns an error:
    /// it stays buffered and its write is retried later.
    pub fn push(&mut self, item: &Item) -> io::Result<()> {
        let len = u32::try_from(item.data.len()).map_err(io::Error::other)?;
        self.unwritten.extend_from_slice(&len.to_le_bytes());
        self.unwritten
            .extend_from_slice(&item.add_time_ms.to_le_bytes());
        self.unwritten
            .extend_from_slice(&item.expiry_ms.to_le_bytes());
        self.unwritten.extend_from_slice(&item.data);
        self.items += 1;
        if self.unwritten.len() >= WRITE_BATCH {
            self.write_out()?;
        }
        Ok(())
    }

    /// Takes the oldest items, about `budget` payload bytes of them (at least one if any).
    pub fn pop_front(&mut self, budget: u64) -> io::Result<VecDeque<Item>> {
        let mut taken = VecDeque::new();
        let mut taken_bytes = 0;
        while self.items > 0 && (taken.is_empty() || taken_bytes < budget) {
            if self.read_at == self.written {
                self.write_out()?;
            }
            let batch = self.read_batch(budget.saturating_sub(taken_bytes))?;
            taken_bytes += batch.iter().map(|item| item.data.len() as u64).sum::<u64>();
            taken.extend(batch);
        }
        if self.items == 0 {
            self.reset()?;
        }
        Ok(taken)
    }

    /// Drops every item and gives the file's space back.
    pub fn clear(&mut self) -> io::Result<()> {
        self.items = 0;
        self.unwritten.clear();
        self.reset()
    }

    /// Removes the file (queue deletion).
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }

    /// Reads whole items from `read_at` until `budget` payload bytes are reached; at least one.
    fn read_batch(&mut self, budget: u64) -> io::Result<Vec<Item>> {
        let available = self.written - self.read_at;
        let mut block = vec![0; available.min(budget.max(READ_BATCH)) as usize];
        self.file.read_exact_at(&mut block, self.read_at)?;
        let mut items = Vec::new();
        let mut at = 0;
        let mut payload = 0;
        while payload < budget.max(1) {
            let Some((item, len)) = decode(&block[at..]) else {
                break;
            };
            payload += item.data.len() as u64;
            items.push(item);
            at += len;
        }
        if items.is_empty() {
            let (item, len) = self.read_large_item()?;
            items.push(item);
            at = len;
        }
        self.read_at += at as u64;
        self.items -= items.len() as u64;
        Ok(items)
    }

    /// Reads one item larger than a read batch.
    fn read_large_item(&self) -> io::Result<(Item, usize)> {
        let mut header = [0; ITEM_HEADER];
        self.file.read_exact_at(&mut header, self.read_at)?;
        let len = u32::from_le_bytes(header[..4].try_into().map_err(io::Error::other)?) as usize;
        let mut encoded = vec![0; ITEM_HEADER + len];
        self.file.read_exact_at(&mut encoded, self.read_at)?;
        decode(&encoded).ok_or_else(|| io::Error::other("spill file item cut short"))
    }

    fn write_out(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.unwritten, self.written)?;
        self.written += self.unwritten.len() as u64;
        self.unwritten.clear();
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        self.written = 0;
        self.read_at = 0;
        self.file.set_len(0)
    }
}

/// One whole item at the start of `bytes`, with its encoded length.
fn decode(bytes: &[u8]) -> Option<(Item, usize)> {
    let header = bytes.get(..ITEM_HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let add_time_ms = i64::from_le_bytes(header[4..12].try_into().ok()?);
    let expiry_ms = i64::from_le_bytes(header[12..20].try_into().ok()?);
    let data = bytes.get(ITEM_HEADER..ITEM_HEADER + len)?;
    let item = Item {
        data: Bytes::copy_from_slice(data),
        add_time_ms,
        expiry_ms,
    };
    Some((item, ITEM_HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(index: usize, len: usize) -> Item {
        let mut data = format!("{index:08}").into_bytes();
        data.resize(len.max(8), b'.');
        Item {
            data: Bytes::from(data),
            add_time_ms: index as i64,
            expiry_ms: 0,
        }
    }

    #[test]
    fn items_come_back_in_order_across_batches_and_sizes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spill = Spill::create(&dir.path().join("q.spill")).expect("create");
        let items: Vec<Item> = (0..5000)
            .map(|i| item(i, if i % 97 == 0 { 600_000 } else { 64 }))
            .collect();
        for item in &items {
            spill.push(item).expect("push");
        }
        assert_eq!(spill.len(), 5000);
        let mut back = Vec::new();
        while spill.len() > 0 {
            back.extend(spill.pop_front(10_000).expect("pop"));
        }
        assert_eq!(back, items);
        assert_eq!(
            std::fs::metadata(dir.path().join("q.spill"))
                .expect("meta")
                .len(),
            0,
            "space given back"
        );
    }

    #[test]
    fn a_leftover_file_is_overwritten_and_its_stale_tail_never_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("q.spill");
        std::fs::write(&path, vec![0xAB; 3 * READ_BATCH as usize]).expect("leftover");
        let mut spill = Spill::create(&path).expect("create");
        let items: Vec<Item> = (0..300).map(|i| item(i, 500)).collect();
        for item in &items {
            spill.push(item).expect("push");
        }
        let mut back = Vec::new();
        while spill.len() > 0 {
            back.extend(spill.pop_front(4_000).expect("pop"));
        }
        assert_eq!(back, items);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 0);
    }

    #[test]
    fn pushes_and_pops_interleave() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spill = Spill::create(&dir.path().join("q.spill")).expect("create");
        let mut expected = VecDeque::new();
        for round in 0..200 {
            for i in 0..7 {
                let item = item(round * 7 + i, 100);
                spill.push(&item).expect("push");
                expected.push_back(item);
            }
            for got in spill.pop_front(300).expect("pop") {
                assert_eq!(Some(got), expected.pop_front());
            }
        }
        assert_eq!(spill.len() as usize, expected.len());
    }
}
