//! The replies of one batch of pipelined requests, held back until the journal records they
//! depend on are committed (Part 0 #9: `STORED` only after the record reached the OS). Both
//! protocols use it: memcache [`Response`]s and text-protocol [`TextReply`]s.

use std::marker::PhantomData;
use std::sync::Arc;

use bytes::BytesMut;
use lanner_journal::JournalError;
use lanner_proto::{Response, TextReply};
use lanner_queue::{Queue, QueueError, Seq};
use tracing::debug;

/// Replies beyond this many bytes are sent before more pipelined requests are executed.
const FLUSH_AT: usize = 256 * 1024;

/// A written batch's buffer is kept for the next one up to this capacity; a larger one is
/// freed, so a connection that once sent a big batch does not hold it while idle.
const KEEP_CAPACITY: usize = 4 * 1024;

/// A protocol's reply, as [`Output`] holds it.
pub trait Reply {
    /// Appends the reply's wire bytes to `buf`.
    fn encode(&self, buf: &mut BytesMut);

    /// The reply sent instead of one whose journal records could not be committed.
    fn journal_failed(failure: &CommitFailure) -> Self;

    /// The reply to a connection closed for `max_buffered_request_bytes`.
    fn out_of_request_memory() -> Self;
}

impl Reply for Response {
    fn encode(&self, buf: &mut BytesMut) {
        Response::encode(self, buf);
    }

    fn journal_failed(failure: &CommitFailure) -> Self {
        Response::ServerError(failure.reason())
    }

    fn out_of_request_memory() -> Self {
        Response::ServerError("out of memory for requests".to_owned())
    }
}

impl Reply for TextReply {
    fn encode(&self, buf: &mut BytesMut) {
        TextReply::encode(self, buf);
    }

    fn journal_failed(failure: &CommitFailure) -> Self {
        let mut reason = failure.reason();
        if let Some(first) = reason.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        TextReply::Error(format!("{reason}."))
    }

    fn out_of_request_memory() -> Self {
        TextReply::Error("Out of memory for requests.".to_owned())
    }
}

/// The text of the error reply to a failed queue operation: journal failures read as they do
/// when a commit fails (no file paths), anything else as the error says.
pub fn queue_error_reason(error: &QueueError) -> String {
    match error {
        QueueError::Journal(_) | QueueError::Poisoned { .. } => CommitFailure::of(error).reason(),
        other => other.to_string(),
    }
}

/// Why a queue's journal could not commit a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitFailure {
    /// The write was undone and stays pending; the journal writes it when the disk takes it
    /// again (a full disk, an I/O error). Holds the operating system's reason.
    WriteFailed(String),
    /// The journal refuses every write until a restart (a failed fsync).
    Poisoned,
}

impl CommitFailure {
    /// Classifies a failed commit.
    pub fn of(error: &QueueError) -> Self {
        match error {
            QueueError::Poisoned { .. } | QueueError::Journal(JournalError::Poisoned { .. }) => {
                CommitFailure::Poisoned
            }
            QueueError::Journal(JournalError::Io { source, .. }) => {
                CommitFailure::WriteFailed(source.to_string())
            }
            other => CommitFailure::WriteFailed(other.to_string()),
        }
    }

    /// The text of the error reply (without the protocol's framing).
    pub fn reason(&self) -> String {
        match self {
            CommitFailure::WriteFailed(reason) => format!("journal write failed: {reason}"),
            CommitFailure::Poisoned => {
                "journal poisoned after a failed fsync; restart the server".to_owned()
            }
        }
    }
}

/// A reply that must not leave before its queue's journal reached `seq`.
struct Dependent {
    start: usize,
    end: usize,
    queue: usize,
}

/// Replies of type `R` waiting to be written, and the journal positions they need.
pub struct Output<R = Response> {
    buf: BytesMut,
    dependents: Vec<Dependent>,
    /// Each queue touched by the batch with the highest position to commit.
    commits: Vec<(Arc<Queue>, Seq)>,
    reply: PhantomData<fn(&R)>,
}

impl<R> Default for Output<R> {
    fn default() -> Self {
        Self {
            buf: BytesMut::new(),
            dependents: Vec::new(),
            commits: Vec::new(),
            reply: PhantomData,
        }
    }
}

impl<R: Reply> Output<R> {
    /// Appends a reply that depends on nothing.
    pub fn push(&mut self, response: &R) {
        response.encode(&mut self.buf);
    }

    /// Appends a reply that may only be sent once `queue`'s journal has committed `seq`.
    pub fn push_after_commit(&mut self, response: &R, queue: &Arc<Queue>, seq: Seq) {
        if seq == 0 {
            return self.push(response);
        }
        let start = self.buf.len();
        response.encode(&mut self.buf);
        let queue = self.note_commit(queue, seq);
        self.dependents.push(Dependent {
            start,
            end: self.buf.len(),
            queue,
        });
    }

    /// Appends the reply of a read that took an item out of memory (its records end at
    /// `seq`). It leaves after the commit, like any other, but is sent even if the commit
    /// failed: the item is no longer queued in memory, so withholding it would make it
    /// unavailable (poisoned journal) or lose it (a failed write, whose remove is written on
    /// the retry). A crash before the remove is on disk can deliver the item again.
    pub fn push_read_after_commit(&mut self, response: &R, queue: &Arc<Queue>, seq: Seq) {
        self.push(response);
        self.commit_later(queue, seq);
    }

    /// Appends a reply that may only be sent once every listed commit succeeded.
    pub fn push_after_commits(&mut self, response: &R, commits: &[(Arc<Queue>, Seq)]) {
        let start = self.buf.len();
        response.encode(&mut self.buf);
        let end = self.buf.len();
        for (queue, seq) in commits.iter().filter(|(_, seq)| *seq != 0) {
            let queue = self.note_commit(queue, *seq);
            self.dependents.push(Dependent { start, end, queue });
        }
    }

    /// Records journal work to commit with the batch whose reply does not wait for it (aborts).
    pub fn commit_later(&mut self, queue: &Arc<Queue>, seq: Seq) {
        if seq != 0 {
            self.note_commit(queue, seq);
        }
    }

    /// True once the replies held back are large enough to send before executing more
    /// requests, so pipelined reads of large items never buffer without bound.
    pub fn is_full(&self) -> bool {
        self.buf.len() >= FLUSH_AT
    }

    /// True when nothing waits to be committed or written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.commits.is_empty()
    }

    /// The queues to commit, each with the highest position the batch needs.
    pub fn commits(&self) -> &[(Arc<Queue>, Seq)] {
        &self.commits
    }

    /// Finishes the batch after its commits ran: `failed[i]` tells whether and why commit `i`
    /// failed. Replies that depended on a failed commit become [`Reply::journal_failed`]
    /// (memcache: `SERVER_ERROR <reason>`), so nothing is acknowledged that did not reach the
    /// journal. Returns the bytes to write; call [`Output::clear`] after.
    pub fn finish(&mut self, failed: &[Option<CommitFailure>]) -> &[u8] {
        self.commits.clear();
        let dependents = std::mem::take(&mut self.dependents);
        if failed.iter().any(Option::is_some) {
            self.replace_failed(&dependents, failed);
        }
        &self.buf
    }

    /// Forgets the written replies, keeping the buffer's capacity for the next batch unless it
    /// is over [`KEEP_CAPACITY`].
    pub fn clear(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = BytesMut::new();
        } else {
            self.buf.clear();
        }
    }

    fn replace_failed(&mut self, dependents: &[Dependent], failed: &[Option<CommitFailure>]) {
        let original = self.buf.split().freeze();
        let mut copied = 0;
        // A reply that depends on several commits is listed once per commit; replace it once.
        for dependent in dependents {
            let Some(failure) = &failed[dependent.queue] else {
                continue;
            };
            if dependent.start < copied {
                continue;
            }
            self.buf
                .extend_from_slice(&original[copied..dependent.start]);
            R::journal_failed(failure).encode(&mut self.buf);
            copied = dependent.end;
        }
        self.buf.extend_from_slice(&original[copied..]);
        debug!("journal commit failed; the affected replies were answered with an error");
    }

    fn note_commit(&mut self, queue: &Arc<Queue>, seq: Seq) -> usize {
        if let Some(index) = self
            .commits
            .iter()
            .position(|(known, _)| Arc::ptr_eq(known, queue))
        {
            let entry = &mut self.commits[index].1;
            *entry = (*entry).max(seq);
            return index;
        }
        self.commits.push((Arc::clone(queue), seq));
        self.commits.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_errors_answer_without_file_paths() {
        let full = QueueError::Journal(JournalError::Io {
            path: "/data/q.3.journal".into(),
            source: std::io::Error::other("No space left on device"),
        });
        assert_eq!(
            queue_error_reason(&full),
            "journal write failed: No space left on device"
        );
        let poisoned = QueueError::Poisoned { queue: "q".into() };
        assert_eq!(
            queue_error_reason(&poisoned),
            "journal poisoned after a failed fsync; restart the server"
        );
        assert_eq!(queue_error_reason(&QueueError::BadName), "bad queue name");
    }

    #[test]
    fn a_large_written_batch_does_not_keep_its_buffer() {
        let mut output: Output = Output::default();
        output.push(&Response::Stored);
        output.finish(&[]);
        output.clear();
        let small = output.buf.capacity();
        assert!(small > 0 && small <= KEEP_CAPACITY);
        for _ in 0..2 * KEEP_CAPACITY {
            output.push(&Response::Stored);
        }
        assert_eq!(
            output.finish(&[]).len(),
            2 * KEEP_CAPACITY * b"STORED\r\n".len()
        );
        output.clear();
        assert!(output.is_empty());
        assert_eq!(output.buf.capacity(), 0);
    }

    #[test]
    fn replies_of_failed_commits_become_server_errors() {
        let mut output: Output = Output::default();
        let dir = tempfile::tempdir().expect("tempdir");
        let (queues, _) = test_queues(dir.path());
        let (a, b) = (
            queues.get_or_create("a").expect("a"),
            queues.get_or_create("b").expect("b"),
        );
        output.push(&Response::End);
        output.push_after_commit(&Response::Stored, &a, 1);
        output.push_after_commit(&Response::Stored, &b, 1);
        output.push_after_commits(
            &Response::FlushedAll,
            &[(Arc::clone(&a), 2), (Arc::clone(&b), 2)],
        );
        assert_eq!(output.commits().len(), 2);
        let full = CommitFailure::WriteFailed("No space left on device".to_owned());
        let written = output.finish(&[None, Some(full)]);
        assert_eq!(
            written,
            b"END\r\nSTORED\r\nSERVER_ERROR journal write failed: No space left on device\r\nSERVER_ERROR journal write failed: No space left on device\r\n"
        );
    }

    fn test_queues(
        dir: &std::path::Path,
    ) -> (
        lanner_queue::QueueCollection,
        Vec<lanner_queue::RecoveredQueue>,
    ) {
        let clock = Arc::new(lanner_queue::SystemClock);
        lanner_queue::QueueCollection::open(
            dir,
            Box::new(|_| lanner_queue::QueueOptions::default()),
            clock,
        )
        .expect("open collection")
    }

    #[test]
    fn text_replies_of_failed_commits_become_error_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (queues, _) = test_queues(dir.path());
        let queue = queues.get_or_create("q").expect("q");
        let mut output: Output<TextReply> = Output::default();
        output.push_after_commit(&TextReply::Count(1), &queue, 1);
        output.push(&TextReply::NoItem);
        let failure = CommitFailure::WriteFailed("disk full".to_owned());
        assert_eq!(
            output.finish(&[Some(failure)]),
            b"-Journal write failed: disk full.\n*\n"
        );
    }

    /// A read's item is sent after its commit even when that failed; a set's reply is not.
    #[test]
    fn read_replies_survive_failed_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (queues, _) = test_queues(dir.path());
        let queue = queues.get_or_create("q").expect("q");
        let value = Response::Value {
            key: "q".into(),
            data: bytes::Bytes::from_static(b"x"),
        };
        let mut output: Output = Output::default();
        output.push_read_after_commit(&value, &queue, 1);
        output.push_after_commit(&Response::Stored, &queue, 2);
        let full = CommitFailure::WriteFailed("full".to_owned());
        assert_eq!(
            output.finish(&[Some(full)]),
            b"VALUE q 0 1\r\nx\r\nEND\r\nSERVER_ERROR journal write failed: full\r\n"
        );
        output.clear();
        output.push_read_after_commit(&value, &queue, 3);
        output.push_after_commit(&Response::Stored, &queue, 4);
        assert_eq!(output.commits().len(), 1);
        assert_eq!(
            output.finish(&[Some(CommitFailure::Poisoned)]),
            b"VALUE q 0 1\r\nx\r\nEND\r\nSERVER_ERROR journal poisoned after a failed fsync; restart the server\r\n"
        );
    }

    #[test]
    fn independent_replies_pass_through() {
        let mut output: Output = Output::default();
        output.push(&Response::End);
        output.push(&Response::Deleted);
        assert_eq!(output.finish(&[]), b"END\r\nDELETED\r\n");
        output.clear();
        assert!(output.is_empty());
    }
}
