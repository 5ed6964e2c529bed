//! The queued items of one queue in FIFO order: the oldest in memory, up to the queue's memory
//! budget, the rest spilled to a file and read back as the head drains (read-behind, spec d.5).

use std::collections::VecDeque;
use std::path::PathBuf;

use bytes::Bytes;
use tracing::error;

use crate::item::Item;
use crate::spill::Spill;

/// Items are read back from the spill file in steps of at most this many bytes, so a refill
/// never stalls the queue for long.
const REFILL_STEP: u64 = 1 << 20;

/// Queued items: memory first, then the spill file.
#[derive(Debug)]
pub struct Backlog {
    memory: VecDeque<Item>,
    memory_bytes: u64,
    /// Payload bytes kept in memory before new items go to the spill file.
    memory_budget: u64,
    /// Where spilled items go; the file is created on the first spill.
    spill_path: PathBuf,
    spill: Option<Spill>,
    /// Set while the journal is replayed into this backlog (see [`Backlog::recovering`]).
    recovering: bool,
}

impl Default for Backlog {
    /// A backlog that never spills.
    fn default() -> Self {
        Self::new(u64::MAX, PathBuf::new())
    }
}

impl Backlog {
    /// An empty backlog keeping up to `memory_budget` payload bytes in memory.
    pub fn new(memory_budget: u64, spill_path: PathBuf) -> Self {
        Self {
            memory: VecDeque::new(),
            memory_bytes: 0,
            memory_budget,
            spill_path,
            spill: None,
            recovering: false,
        }
    }

    /// An empty backlog that the journal is about to be replayed into. The replayed items'
    /// data share the journal's read buffers, so the ones kept in memory are copied (the
    /// spilled ones are copied into the spill file anyway); call
    /// [`Backlog::finish_recovery`] once the replay is done.
    pub fn recovering(memory_budget: u64, spill_path: PathBuf) -> Self {
        Self {
            recovering: true,
            ..Self::new(memory_budget, spill_path)
        }
    }

    /// Ends the replay begun by [`Backlog::recovering`]: waits for the spill file's background
    /// writes, and writes it in the caller's thread from now on (the queue's lock is held
    /// then, and a short write is cheaper than a hand-over).
    pub fn finish_recovery(&mut self) {
        self.recovering = false;
        if let Some(spill) = &mut self.spill
            && let Err(cause) = spill.write_in_foreground()
        {
            error!(file = %self.spill_path.display(), %cause, "cannot write spilled items to disk yet");
        }
    }

    /// Items queued, in memory or spilled.
    pub fn len(&self) -> u64 {
        self.memory.len() as u64 + self.spilled()
    }

    /// Items and payload bytes held in memory.
    pub fn in_memory(&self) -> (u64, u64) {
        (self.memory.len() as u64, self.memory_bytes)
    }

    /// True while some items live only in the spill file.
    pub fn is_spilling(&self) -> bool {
        self.spilled() > 0
    }

    /// The oldest item. Whenever anything is queued, the oldest item is in memory.
    pub fn front(&self) -> Option<&Item> {
        self.memory.front()
    }

    /// The items in memory, oldest first (all of them unless [`Backlog::is_spilling`]).
    pub fn iter_memory(&self) -> impl Iterator<Item = &Item> {
        self.memory.iter()
    }

    /// Appends an item: to memory while it has room and nothing is spilled, else to the file.
    pub fn push_back(&mut self, mut item: Item) {
        if self.is_spilling()
            || (!self.memory.is_empty() && self.memory_bytes >= self.memory_budget)
        {
            match self.spill_file() {
                Ok(spill) => {
                    // A failed write leaves the item buffered in the spill, in order; the write
                    // is retried before the spill is read.
                    if let Err(cause) = spill.push(&item) {
                        error!(file = %self.spill_path.display(), %cause, "cannot write spilled items to disk yet");
                    }
                    return;
                }
                // Nothing is spilled yet (the file could not be created), so keeping the item in
                // memory keeps the order; the journal holds it either way.
                Err(cause) => {
                    error!(file = %self.spill_path.display(), %cause, "cannot create the spill file; keeping the item in memory")
                }
            }
        }
        if self.recovering {
            item.data = Bytes::copy_from_slice(&item.data);
        }
        self.memory_bytes += item.data.len() as u64;
        self.memory.push_back(item);
    }

    /// Puts an item back at the head (an aborted read), in memory whatever the budget.
    pub fn push_front(&mut self, item: Item) {
        self.memory_bytes += item.data.len() as u64;
        self.memory.push_front(item);
    }

    /// Removes the oldest item, and reads spilled items back as memory frees up.
    pub fn pop_front(&mut self) -> Option<Item> {
        let item = self.memory.pop_front()?;
        self.memory_bytes -= item.data.len() as u64;
        self.refill();
        Some(item)
    }

    /// Drops every item; returns how many there were.
    pub fn clear(&mut self) -> u64 {
        let count = self.len();
        self.memory.clear();
        self.memory_bytes = 0;
        if let Some(spill) = &mut self.spill
            && let Err(cause) = spill.clear()
        {
            error!(file = %self.spill_path.display(), %cause, "cannot clear the spill file");
        }
        count
    }

    /// Removes the spill file (the queue is deleted).
    pub fn discard(&mut self) {
        self.clear();
        if let Some(spill) = self.spill.take()
            && let Err(cause) = spill.remove()
        {
            error!(file = %self.spill_path.display(), %cause, "cannot remove the spill file");
        }
    }

    fn spilled(&self) -> u64 {
        self.spill.as_ref().map_or(0, Spill::len)
    }

    fn spill_file(&mut self) -> std::io::Result<&mut Spill> {
        if self.spill.is_none() {
            let mut spill = Spill::create(&self.spill_path)?;
            // Replay rebuilds the whole spill file: its writes overlap with reading the journal.
            if self.recovering
                && let Err(cause) = spill.write_in_background()
            {
                error!(file = %self.spill_path.display(), %cause, "cannot start the spill writer thread; writing in line");
            }
            self.spill = Some(spill);
        }
        Ok(self.spill.as_mut().expect("spill file was just created"))
    }

    /// Moves spilled items back into memory while there is room for a refill step, and always
    /// when memory is empty, so the head is in memory whenever anything is queued.
    fn refill(&mut self) {
        let Some(spill) = self.spill.as_mut().filter(|spill| spill.len() > 0) else {
            return;
        };
        let room = self.memory_budget.saturating_sub(self.memory_bytes);
        let step = REFILL_STEP.min(self.memory_budget / 4).max(1);
        if room < step && !self.memory.is_empty() {
            return;
        }
        match spill.pop_front(room.min(step).max(1)) {
            Ok(items) => {
                self.memory_bytes += items.iter().map(|item| item.data.len() as u64).sum::<u64>();
                self.memory.extend(items);
            }
            Err(cause) => {
                error!(file = %self.spill_path.display(), %cause, "cannot read spilled items back")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item_sharing(buffer: &Bytes, at: usize) -> Item {
        Item {
            data: buffer.slice(at..at + 10),
            add_time_ms: at as i64,
            expiry_ms: 0,
        }
    }

    #[test]
    fn items_replayed_into_memory_stop_sharing_the_read_buffer() {
        let buffer = Bytes::from(vec![7; 1000]);
        let mut backlog = Backlog::recovering(1 << 20, PathBuf::new());
        backlog.push_back(item_sharing(&buffer, 0));
        backlog.finish_recovery();
        backlog.push_back(item_sharing(&buffer, 10));
        let kept: Vec<*const u8> = backlog.iter_memory().map(|i| i.data.as_ptr()).collect();
        assert_ne!(kept[0], buffer.as_ptr(), "copied during recovery");
        assert_eq!(
            kept[1],
            buffer[10..].as_ptr(),
            "a live put is kept as it is"
        );
        assert_eq!(
            backlog.pop_front().map(|i| i.data),
            Some(buffer.slice(0..10))
        );
    }
}
