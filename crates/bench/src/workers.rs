//! The per-connection loops: a producer puts its share of messages; a consumer takes them. Each
//! runs on its own thread with one blocking connection and keeps up to `pipeline` requests in
//! flight by writing them as one batch and then reading every reply (as `redis-benchmark -P`
//! does). Latency is measured from the batch's write to each reply.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use anyhow::Result;
use hdrhistogram::Histogram;

use crate::conn::Conn;
use crate::payload::{self, Stamp};
use crate::proto::{Proto, Reply, Requests};
use crate::report::histogram;
use crate::tracker::Receipts;

/// Where the work goes and what it carries.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub requests: Requests,
    /// Payload size in bytes.
    pub size: usize,
    /// Every `sent_ns` stamp counts from here, so any thread can compute end-to-end latency.
    pub epoch: Instant,
}

impl Target {
    pub fn proto(&self) -> Proto {
        self.requests.proto
    }

    fn since_epoch_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

/// What a worker met that it could not count as success.
#[derive(Debug, Default)]
pub struct Errors {
    pub count: u64,
    pub first: Option<String>,
}

impl Errors {
    pub fn note(&mut self, error: impl std::fmt::Display) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(error.to_string());
        }
    }

    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// How a producer is bounded.
#[derive(Debug, Clone, Copy)]
pub struct ProducerSpec {
    pub pipeline: u64,
    /// Stop sending new batches at this instant, unless `until_error`.
    pub deadline: Instant,
    /// Never go on past this, whatever happens.
    pub hard_deadline: Instant,
    /// Keep sending past `deadline` until the connection fails (the server is being killed).
    pub until_error: bool,
    /// Messages per second for this producer; 0 = as fast as replies come back.
    pub rate: f64,
}

/// What one producer did.
#[derive(Debug)]
pub struct Produced {
    pub sent: u64,
    pub acked: u64,
    /// Length of the run of acknowledged messages from sequence 0: all of these must be delivered.
    pub acked_prefix: u64,
    /// Error replies.
    pub errors: Errors,
    /// Why the connection failed, if it did (expected when the server is killed).
    pub disconnected: Option<String>,
    pub latency: Histogram<u64>,
    pub finished: Instant,
}

/// Puts `share` messages as producer `producer`; `acked` is updated after every batch so a
/// supervisor can read progress, and `stop` ends the run early.
pub fn produce(
    target: &Target,
    spec: ProducerSpec,
    producer: u32,
    share: u64,
    acked_live: &AtomicU64,
    stop: &AtomicBool,
) -> Produced {
    let mut result = Produced {
        sent: 0,
        acked: 0,
        acked_prefix: 0,
        errors: Errors::default(),
        disconnected: None,
        latency: histogram(),
        finished: Instant::now(),
    };
    if let Err(error) = produce_into(target, spec, producer, share, acked_live, stop, &mut result) {
        result.disconnected = Some(format!("{error:#}"));
    }
    result.finished = Instant::now();
    result
}

fn produce_into(
    target: &Target,
    spec: ProducerSpec,
    producer: u32,
    share: u64,
    acked_live: &AtomicU64,
    stop: &AtomicBool,
    result: &mut Produced,
) -> Result<()> {
    let mut conn = Conn::connect(target.addr, target.proto())?;
    let mut batch = Vec::with_capacity((spec.pipeline as usize) * (target.size + 64));
    let started = Instant::now();
    let mut prefix_intact = true;
    while result.sent < share && !stop.load(Relaxed) {
        let now = Instant::now();
        if now >= spec.hard_deadline || (!spec.until_error && now >= spec.deadline) {
            break;
        }
        let count = spec.pipeline.min(share - result.sent);
        if spec.rate > 0.0 {
            let due = started + Duration::from_secs_f64(result.sent as f64 / spec.rate);
            if let Some(wait) = due.checked_duration_since(now) {
                std::thread::sleep(wait);
            }
        }
        batch.clear();
        let sent_ns = target.since_epoch_ns();
        for seq in result.sent..result.sent + count {
            target
                .requests
                .put_start(producer, seq, target.size, &mut batch);
            let stamp = Stamp {
                producer,
                seq,
                sent_ns,
            };
            payload::encode(stamp, target.size, &mut batch);
            target.requests.put_end(&mut batch);
        }
        let written = Instant::now();
        conn.send(&batch)?;
        result.sent += count;
        for _ in 0..count {
            match conn.reply()? {
                Reply::Stored | Reply::Integer(_) => {
                    result
                        .latency
                        .saturating_record(written.elapsed().as_nanos() as u64);
                    result.acked += 1;
                    if prefix_intact {
                        result.acked_prefix += 1;
                    }
                }
                other => {
                    prefix_intact = false;
                    result.errors.note(format!("put answered {other:?}"));
                }
            }
        }
        acked_live.store(result.acked, Relaxed);
    }
    Ok(())
}

/// How a consumer takes items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeKind {
    /// `get q` / `RPOP q`.
    Plain,
    /// `get q/t=ms` / `BRPOP q s`.
    Blocking(u32),
    /// `get q/open`, `get q/close/open` ... `get q/close` / `BLMOVE` + `LREM`.
    Reliable(u32),
}

/// When a consumer stops.
#[derive(Clone, Copy)]
pub enum Until<'a> {
    /// Take exactly the messages claimed from this shared count (or stop early at an empty reply).
    Claims(&'a AtomicU64),
    /// Take until the queue answers empty.
    Empty,
    /// Mixed run: go on until the producers are done and everything they had acknowledged is
    /// consumed (or an empty reply comes after they are done).
    Drained {
        producers_done: &'a AtomicBool,
        produced: &'a AtomicU64,
        consumed: &'a AtomicU64,
    },
}

/// What one consumer did.
#[derive(Debug)]
pub struct Consumed {
    /// Items received (duplicates included).
    pub received: u64,
    /// What they were, for the delivery check.
    pub receipts: Receipts,
    pub empties: u64,
    pub errors: Errors,
    /// Request-to-reply latency of the replies that carried an item.
    pub latency: Histogram<u64>,
    /// Send-to-receive latency of each item (payload stamp to reply).
    pub end_to_end: Histogram<u64>,
    pub finished: Instant,
}

/// A consumer's identity and bounds.
#[derive(Clone, Copy)]
pub struct ConsumerSpec<'a> {
    pub consumer: u32,
    pub pipeline: u64,
    pub kind: TakeKind,
    pub until: Until<'a>,
    pub hard_deadline: Instant,
}

/// Takes items from a queue (Kestrel or Redis) until `spec.until` says stop.
pub fn consume(target: &Target, spec: ConsumerSpec<'_>) -> Consumed {
    let mut result = Consumed {
        received: 0,
        receipts: Receipts::default(),
        empties: 0,
        errors: Errors::default(),
        latency: histogram(),
        end_to_end: histogram(),
        finished: Instant::now(),
    };
    if let Err(error) = consume_into(target, spec, &mut result) {
        result.errors.note(format!("{error:#}"));
    }
    result.finished = Instant::now();
    result
}

fn claim(claims: &AtomicU64, most: u64) -> u64 {
    claims
        .fetch_update(Relaxed, Relaxed, |left| Some(left - left.min(most)))
        .map_or(0, |left| left.min(most))
}

fn consume_into(target: &Target, spec: ConsumerSpec<'_>, result: &mut Consumed) -> Result<()> {
    let mut conn = Conn::connect(target.addr, target.proto())?;
    let requests = &target.requests;
    let mut batch = Vec::new();
    // Redis reliable reads: values taken but not yet LREMed from the processing list.
    let mut to_confirm: Vec<Vec<u8>> = Vec::new();
    let mut opened = false;
    loop {
        if Instant::now() >= spec.hard_deadline {
            result
                .errors
                .note("hard deadline passed before the queue was drained");
            break;
        }
        let count = match spec.until {
            Until::Claims(claims) => claim(claims, spec.pipeline),
            Until::Empty => spec.pipeline,
            Until::Drained {
                producers_done,
                produced,
                consumed,
            } => {
                if producers_done.load(SeqCst) && consumed.load(SeqCst) >= produced.load(SeqCst) {
                    0
                } else {
                    spec.pipeline
                }
            }
        };
        if count == 0 {
            break;
        }
        batch.clear();
        for value in &to_confirm {
            requests.confirm(spec.consumer, value, &mut batch);
        }
        for _ in 0..count {
            match spec.kind {
                TakeKind::Plain => requests.take(0, 0, &mut batch),
                TakeKind::Blocking(ms) => requests.take_blocking(ms, &mut batch),
                TakeKind::Reliable(ms) => {
                    requests.take_open(spec.consumer, opened, ms, &mut batch);
                    opened = true;
                }
            }
        }
        let written = Instant::now();
        conn.send(&batch)?;
        for _ in to_confirm.drain(..) {
            expect_confirmed(&mut conn, &mut result.errors)?;
        }
        let mut saw_empty = false;
        for _ in 0..count {
            match conn.reply()? {
                Reply::Value(range) => {
                    let received = Instant::now();
                    result
                        .latency
                        .saturating_record((received - written).as_nanos() as u64);
                    let data = conn.data(range);
                    match payload::decode(data, Some(target.size)) {
                        Ok(stamp) => {
                            result.receipts.record(stamp);
                            let now_ns = (received - target.epoch).as_nanos() as u64;
                            result
                                .end_to_end
                                .saturating_record(now_ns.saturating_sub(stamp.sent_ns));
                        }
                        Err(why) => result.receipts.record_corrupt(why),
                    }
                    if target.proto() == Proto::Redis && matches!(spec.kind, TakeKind::Reliable(_))
                    {
                        to_confirm.push(data.to_vec());
                    }
                    result.received += 1;
                    if let Until::Drained { consumed, .. } = spec.until {
                        consumed.fetch_add(1, SeqCst);
                    }
                }
                Reply::Empty => {
                    result.empties += 1;
                    saw_empty = true;
                }
                other => result.errors.note(format!("take answered {other:?}")),
            }
        }
        let stop_on_empty = match spec.until {
            Until::Claims(_) | Until::Empty => true,
            Until::Drained { producers_done, .. } => producers_done.load(SeqCst),
        };
        if saw_empty && stop_on_empty {
            break;
        }
    }
    // Confirm what is still open, so closing the connection returns nothing to the queue.
    batch.clear();
    match (target.proto(), spec.kind) {
        (Proto::Redis, TakeKind::Reliable(_)) => {
            for value in &to_confirm {
                requests.confirm(spec.consumer, value, &mut batch);
            }
            conn.send(&batch)?;
            for _ in to_confirm.drain(..) {
                expect_confirmed(&mut conn, &mut result.errors)?;
            }
        }
        (_, TakeKind::Reliable(_)) if opened => {
            requests.confirm(spec.consumer, b"", &mut batch);
            conn.send(&batch)?;
            match conn.reply()? {
                Reply::Empty => {}
                other => result.errors.note(format!("close answered {other:?}")),
            }
        }
        _ => {}
    }
    Ok(())
}

fn expect_confirmed(conn: &mut Conn, errors: &mut Errors) -> Result<()> {
    match conn.reply()? {
        Reply::Integer(1) => {}
        other => errors.note(format!("LREM answered {other:?}")),
    }
    Ok(())
}

/// Memcached "consume": gets the keys of a contiguous range of the producers' messages, where
/// `shares[p]` is how many producer `p` stored; `first..first + count` indexes them in order.
pub fn consume_keys(
    target: &Target,
    pipeline: u64,
    shares: &[u64],
    first: u64,
    count: u64,
) -> Consumed {
    let mut result = Consumed {
        received: 0,
        receipts: Receipts::default(),
        empties: 0,
        errors: Errors::default(),
        latency: histogram(),
        end_to_end: histogram(),
        finished: Instant::now(),
    };
    let keys = KeyCursor::new(shares, first).take(count as usize);
    if let Err(error) = consume_keys_into(target, pipeline, keys, &mut result) {
        result.errors.note(format!("{error:#}"));
    }
    result.finished = Instant::now();
    result
}

fn consume_keys_into(
    target: &Target,
    pipeline: u64,
    mut keys: impl Iterator<Item = (u32, u64)>,
    result: &mut Consumed,
) -> Result<()> {
    let mut conn = Conn::connect(target.addr, target.proto())?;
    let mut batch = Vec::new();
    loop {
        batch.clear();
        let mut count = 0;
        for (producer, seq) in keys.by_ref().take(pipeline as usize) {
            target.requests.take(producer, seq, &mut batch);
            count += 1;
        }
        if count == 0 {
            return Ok(());
        }
        let written = Instant::now();
        conn.send(&batch)?;
        for _ in 0..count {
            match conn.reply()? {
                Reply::Value(range) => {
                    result
                        .latency
                        .saturating_record(written.elapsed().as_nanos() as u64);
                    match payload::decode(conn.data(range), Some(target.size)) {
                        Ok(stamp) => result.receipts.record(stamp),
                        Err(why) => result.receipts.record_corrupt(why),
                    }
                    result.received += 1;
                }
                Reply::Empty => result.empties += 1,
                other => result.errors.note(format!("get answered {other:?}")),
            }
        }
    }
}

/// Walks (producer, seq) pairs in producer order, starting at the `first`-th.
pub struct KeyCursor<'a> {
    shares: &'a [u64],
    producer: usize,
    seq: u64,
}

impl<'a> KeyCursor<'a> {
    pub fn new(shares: &'a [u64], mut first: u64) -> Self {
        let mut producer = 0;
        while producer < shares.len() && first >= shares[producer] {
            first -= shares[producer];
            producer += 1;
        }
        Self {
            shares,
            producer,
            seq: first,
        }
    }
}

impl Iterator for KeyCursor<'_> {
    type Item = (u32, u64);

    fn next(&mut self) -> Option<(u32, u64)> {
        while self.producer < self.shares.len() && self.seq >= self.shares[self.producer] {
            self.producer += 1;
            self.seq = 0;
        }
        let share = *self.shares.get(self.producer)?;
        debug_assert!(self.seq < share);
        let key = (self.producer as u32, self.seq);
        self.seq += 1;
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_cursor_walks_every_producer_in_order() {
        let shares = [2, 0, 3];
        let all: Vec<_> = KeyCursor::new(&shares, 0).collect();
        assert_eq!(all, [(0, 0), (0, 1), (2, 0), (2, 1), (2, 2)]);
        let tail: Vec<_> = KeyCursor::new(&shares, 3).collect();
        assert_eq!(tail, [(2, 1), (2, 2)]);
        assert_eq!(KeyCursor::new(&shares, 5).next(), None);
    }

    #[test]
    fn claims_never_exceed_what_is_left() {
        let claims = AtomicU64::new(5);
        assert_eq!(claim(&claims, 4), 4);
        assert_eq!(claim(&claims, 4), 1);
        assert_eq!(claim(&claims, 4), 0);
    }
}
