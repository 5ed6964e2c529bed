//! Read-behind storage: the payloads of a queue's newest items once its in-memory part is
//! full, in a scratch file read back in order as the head drains (spec d.5).
//!
//! The file is a cache, not a record of truth: the journal already holds every item, and the
//! file is rebuilt from the journal at startup. So it has no checksums and is never fsynced.
//! While it is rebuilt, a thread of its own writes it (see [`Spill::write_in_background`]).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use bytes::Bytes;
use tracing::warn;

use crate::item::Item;

/// Encoded items are written to the file once this many bytes are buffered.
const WRITE_BATCH: usize = 256 * 1024;

/// Bytes read from the file at a time when refilling (more for a larger item).
const READ_BATCH: u64 = 256 * 1024;

/// Per item: payload length (u32), add time (i64), expiry (i64), then the payload.
const ITEM_HEADER: usize = 4 + 8 + 8;

/// Batches queued for the background writer before [`Spill::push`] waits for it.
const BATCHES_AHEAD: usize = 2;

/// Items spilled to a file, oldest first.
#[derive(Debug)]
pub struct Spill {
    path: PathBuf,
    file: Arc<File>,
    /// Encoded items not yet written to the file; they follow everything in the file.
    unwritten: Vec<u8>,
    /// Bytes in the file, or handed to the background writer to be written there.
    written: u64,
    /// File offset of the oldest item not yet read back.
    read_at: u64,
    items: u64,
    writer: Option<BackgroundWriter>,
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
            file: Arc::new(file),
            unwritten: Vec::new(),
            written: 0,
            read_at: 0,
            items: 0,
            writer: None,
        })
    }

    /// From now on full batches are written by a thread of its own, so that rebuilding the
    /// spill at startup overlaps with reading the journal. Reads wait for the writes first.
    pub fn write_in_background(&mut self) -> io::Result<()> {
        if self.writer.is_none() {
            self.writer = Some(BackgroundWriter::start(Arc::clone(&self.file))?);
        }
        Ok(())
    }

    /// Waits for the background writes and writes in the caller's thread from now on. On an
    /// error the batches not written stay buffered, in order, and are written again later.
    pub fn write_in_foreground(&mut self) -> io::Result<()> {
        let settled = self.settle();
        if let Some(writer) = self.writer.take() {
            writer.stop();
        }
        settled
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
            self.hand_off()?;
        }
        Ok(())
    }

    /// Takes the oldest items, about `budget` payload bytes of them (at least one if any).
    pub fn pop_front(&mut self, budget: u64) -> io::Result<VecDeque<Item>> {
        if let Err(error) = self.settle() {
            // The failed batches are buffered again: the reads below write them in line first,
            // so a write that failed only for a moment does not strand the spilled items.
            warn!(path = %self.path.display(), %error, "spill: a background write failed; writing in line");
        }
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
        // The batches that failed are dropped with the rest.
        let _ = self.settle();
        self.items = 0;
        self.unwritten.clear();
        self.reset()
    }

    /// Removes the file (queue deletion).
    pub fn remove(mut self) -> io::Result<()> {
        let _ = self.write_in_foreground();
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

    /// Writes the buffered items out, in the background if there is a writer.
    fn hand_off(&mut self) -> io::Result<()> {
        let Some(writer) = &mut self.writer else {
            return self.write_out();
        };
        let len = self.unwritten.len() as u64;
        let data = mem::replace(&mut self.unwritten, writer.spare_buffer());
        if let Err(data) = writer.submit(self.written, data) {
            self.unwritten = data;
            self.writer = None;
            return self.write_out();
        }
        self.written += len;
        Ok(())
    }

    /// Waits until the background writer has written every batch. If one failed, it and the
    /// batches after it go back in front of the buffered items, and from then on they are
    /// written (and retried) in the caller's thread, as without a background writer.
    fn settle(&mut self) -> io::Result<()> {
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        let Some(failure) = writer.wait()? else {
            return Ok(());
        };
        if let Some(writer) = self.writer.take() {
            writer.stop();
        }
        self.written = failure.offset;
        let mut unwritten = failure.data;
        unwritten.append(&mut self.unwritten);
        self.unwritten = unwritten;
        Err(failure.error)
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

impl Drop for Spill {
    /// A spill dropped while its background writer runs (a recovery that failed part-way)
    /// waits for the thread, so no late write lands in a file that is opened again.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.stop();
        }
    }
}

/// A thread writing a spill's batches at their offsets, in order.
#[derive(Debug)]
struct BackgroundWriter {
    batches: SyncSender<Batch>,
    outcomes: Receiver<Outcome>,
    /// Batches submitted and not yet answered.
    in_flight: usize,
    /// A written batch's buffer, emptied for the next batch.
    spare: Option<Vec<u8>>,
    /// The batches that came back unwritten, oldest first, and the first error.
    failure: Option<Failure>,
    thread: JoinHandle<()>,
}

#[derive(Debug)]
struct Batch {
    offset: u64,
    data: Vec<u8>,
}

/// What became of a batch.
#[derive(Debug)]
enum Outcome {
    /// Written; here is its buffer back.
    Written(Vec<u8>),
    /// Not written: it failed with `error`, or came after one that failed (`None`).
    Unwritten(Batch, Option<io::Error>),
}

/// Batches that could not be written: `data` belongs at `offset` and on.
#[derive(Debug)]
struct Failure {
    offset: u64,
    data: Vec<u8>,
    error: io::Error,
}

impl BackgroundWriter {
    fn start(file: Arc<File>) -> io::Result<Self> {
        let (batches, batches_in) = sync_channel(BATCHES_AHEAD);
        let (outcomes_out, outcomes) = channel();
        let thread = std::thread::Builder::new()
            .name("lanner-spill".to_owned())
            .spawn(move || write_batches(&file, &batches_in, &outcomes_out))?;
        Ok(Self {
            batches,
            outcomes,
            in_flight: 0,
            spare: None,
            failure: None,
            thread,
        })
    }

    /// Queues `data` to be written at `offset`; gives it back if the thread is gone.
    fn submit(&mut self, offset: u64, data: Vec<u8>) -> Result<(), Vec<u8>> {
        self.batches
            .send(Batch { offset, data })
            .map_err(|unsent| unsent.0.data)?;
        self.in_flight += 1;
        Ok(())
    }

    /// An empty buffer for the next batch, reusing a written one when there is one.
    fn spare_buffer(&mut self) -> Vec<u8> {
        while let Ok(outcome) = self.outcomes.try_recv() {
            self.record(outcome);
        }
        self.spare
            .take()
            .unwrap_or_else(|| Vec::with_capacity(2 * WRITE_BATCH))
    }

    /// Waits for every submitted batch; returns the ones that were not written, if any.
    fn wait(&mut self) -> io::Result<Option<Failure>> {
        while self.in_flight > 0 {
            let outcome = self
                .outcomes
                .recv()
                .map_err(|_| io::Error::other("the spill writer thread stopped"))?;
            self.record(outcome);
        }
        Ok(self.failure.take())
    }

    fn record(&mut self, outcome: Outcome) {
        self.in_flight -= 1;
        match outcome {
            Outcome::Written(buffer) => self.spare = Some(buffer),
            Outcome::Unwritten(mut batch, error) => match &mut self.failure {
                Some(failure) => failure.data.append(&mut batch.data),
                None => {
                    self.failure = Some(Failure {
                        offset: batch.offset,
                        data: batch.data,
                        error: error.unwrap_or_else(|| io::Error::other("spill write failed")),
                    })
                }
            },
        }
    }

    /// Ends the thread once it has written what it was given.
    fn stop(self) {
        drop(self.batches);
        let _ = self.thread.join();
    }
}

/// The background writer's loop: writes each batch, until one fails; the ones after that go
/// back unwritten so that the file never has a hole before written data.
fn write_batches(file: &File, batches: &Receiver<Batch>, outcomes: &Sender<Outcome>) {
    let mut failed = false;
    for mut batch in batches {
        let outcome = if failed {
            Outcome::Unwritten(batch, None)
        } else if let Err(error) = file.write_all_at(&batch.data, batch.offset) {
            failed = true;
            Outcome::Unwritten(batch, Some(error))
        } else {
            batch.data.clear();
            Outcome::Written(batch.data)
        };
        if outcomes.send(outcome).is_err() {
            return;
        }
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

    /// Pushes `count` items of `len` bytes, popping about every `pop_every`-th push.
    fn push_and_pop(
        spill: &mut Spill,
        count: usize,
        pop_every: usize,
        len: usize,
    ) -> (Vec<Item>, Vec<Item>) {
        let (mut pushed, mut popped) = (Vec::new(), Vec::new());
        for i in 0..count {
            let item = item(i, len);
            spill.push(&item).expect("push");
            pushed.push(item);
            if i % pop_every == pop_every - 1 {
                popped.extend(spill.pop_front(3_000).expect("pop"));
            }
        }
        (pushed, popped)
    }

    #[test]
    fn a_spill_written_in_the_background_reads_back_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spill = Spill::create(&dir.path().join("q.spill")).expect("create");
        spill.write_in_background().expect("writer");
        let (pushed, mut popped) = push_and_pop(&mut spill, 20_000, 1_000, 1024);
        assert!(spill.written > 4 * WRITE_BATCH as u64, "several batches");
        spill.write_in_foreground().expect("settled");
        assert!(spill.writer.is_none());
        while spill.len() > 0 {
            popped.extend(spill.pop_front(100_000).expect("pop"));
        }
        assert_eq!(popped, pushed);
    }

    /// A spill of 2,000 items whose background writer was given a read-only file, so every
    /// batch it wrote failed; returns it, the writable file to restore and the items pushed.
    fn spill_whose_background_writes_failed(
        dir: &tempfile::TempDir,
    ) -> (Spill, Arc<File>, Vec<Item>) {
        let path = dir.path().join("q.spill");
        let mut spill = Spill::create(&path).expect("create");
        let writable = Arc::clone(&spill.file);
        spill.file = Arc::new(File::open(&path).expect("read-only"));
        spill.write_in_background().expect("writer");
        let (pushed, _) = push_and_pop(&mut spill, 2_000, usize::MAX, 1024);
        (spill, writable, pushed)
    }

    #[test]
    fn a_failed_background_write_surfaces_and_keeps_every_item() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut spill, writable, pushed) = spill_whose_background_writes_failed(&dir);
        let error = spill
            .pop_front(3_000)
            .expect_err("the failed write is reported");
        assert_eq!(error.raw_os_error(), Some(9), "EBADF: {error}");
        assert!(spill.writer.is_none(), "later writes are retried in line");
        assert_eq!(spill.len(), 2_000);
        spill.file = writable;
        let mut popped = Vec::new();
        while spill.len() > 0 {
            popped.extend(spill.pop_front(100_000).expect("pop"));
        }
        assert_eq!(popped, pushed);
    }

    #[test]
    fn a_background_write_that_failed_for_a_moment_is_written_by_the_next_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut spill, writable, pushed) = spill_whose_background_writes_failed(&dir);
        spill.file = writable;
        let mut popped = Vec::new();
        while spill.len() > 0 {
            popped.extend(spill.pop_front(3_000).expect("the retry in line succeeds"));
        }
        assert!(spill.writer.is_none(), "later writes are made in line");
        assert_eq!(popped, pushed);
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
