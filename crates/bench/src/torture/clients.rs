//! The torture's client threads: producers, reliable readers and plain readers, each on one
//! blocking connection until the server dies under it. Each returns what it saw as
//! [`CycleEvents`]; what was sent but not answered is recorded as in doubt.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::time::Duration;

use anyhow::Result;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::ledger::{CycleEvents, Id, SetOutcome, Taken};
use crate::conn::Conn;
use crate::payload::{self, HEADER_LEN, Stamp};
use crate::proto::{Garbled, Proto, Reply};

/// How long a blocking read waits for an item, in milliseconds.
const WAIT_MS: u32 = 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// No reply takes longer unless the server hangs; a dead server fails reads at once.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// A producer finding this many items queued pauses for this long.
const BACKLOG_PAUSE: Duration = Duration::from_millis(1);

/// What every client of one cycle shares.
pub struct Cycle<'a> {
    pub addr: SocketAddr,
    pub queue: &'a str,
    pub cycle: u32,
    /// Most requests one client writes as a batch.
    pub pipeline: usize,
    /// Largest payload in bytes (payloads are random sizes from the 24-byte stamp up).
    pub max_size: usize,
    /// Producers pause while at least this many items are queued.
    pub backlog_cap: i64,
    /// Items queued: producers add acknowledged sets, readers subtract confirmed deliveries.
    pub backlog: &'a AtomicI64,
    /// Set once the server was killed: a producer waiting for room stops, and a reader holding
    /// an item knows the server died before it sent the close.
    pub stop: &'a AtomicBool,
}

impl Cycle<'_> {
    fn connect(&self) -> Result<Conn> {
        Conn::connect_within(self.addr, Proto::Kestrel, CONNECT_TIMEOUT, REPLY_TIMEOUT)
    }
}

/// Puts random-sized items stamped `producer`/`seq` (from `first_seq`) in pipelined batches.
pub fn produce(cycle: &Cycle, producer: u32, first_seq: u64, seed: u64) -> CycleEvents {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut outcomes: Vec<SetOutcome> = Vec::new();
    let mut problems = Vec::new();
    if let Ok(mut conn) = cycle.connect() {
        let mut request = Vec::new();
        while !cycle.stop.load(Relaxed) {
            if cycle.backlog.load(Relaxed) >= cycle.backlog_cap {
                std::thread::sleep(BACKLOG_PAUSE);
                continue;
            }
            let batch = rng.random_range(1..=cycle.pipeline);
            let start = outcomes.len();
            request.clear();
            for _ in 0..batch {
                let stamp = Stamp {
                    producer,
                    seq: first_seq + outcomes.len() as u64,
                    // No latency here: the field names the cycle, for debugging.
                    sent_ns: u64::from(cycle.cycle),
                };
                let size = rng.random_range(HEADER_LEN..=cycle.max_size);
                request.extend_from_slice(format!("set {} 0 0 {size}\r\n", cycle.queue).as_bytes());
                payload::encode(stamp, size, &mut request);
                request.extend_from_slice(b"\r\n");
                outcomes.push(SetOutcome::InDoubt);
            }
            if conn.send(&request).is_err()
                || !read_set_replies(&mut conn, cycle, &mut outcomes[start..], &mut problems)
            {
                break;
            }
        }
    }
    CycleEvents {
        sets: vec![(producer, first_seq, outcomes)],
        problems,
        ..CycleEvents::default()
    }
}

/// Reads one reply per set of the batch; false once the connection is gone.
fn read_set_replies(
    conn: &mut Conn,
    cycle: &Cycle,
    outcomes: &mut [SetOutcome],
    problems: &mut Vec<String>,
) -> bool {
    for outcome in outcomes {
        match conn.reply() {
            Ok(Reply::Stored) => {
                *outcome = SetOutcome::Acked;
                cycle.backlog.fetch_add(1, Relaxed);
            }
            Ok(other) => {
                *outcome = SetOutcome::Refused;
                problems.push(format!("a set was answered {other:?}"));
            }
            Err(error) => {
                note_garbled(&error, problems);
                return false;
            }
        }
    }
    true
}

/// Takes items with plain gets (blocking or not), pipelined; every reply received is a
/// confirmed delivery, every get left unanswered is in doubt.
pub fn take_plain(cycle: &Cycle, seed: u64) -> CycleEvents {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut events = CycleEvents::default();
    let Ok(mut conn) = cycle.connect() else {
        return events;
    };
    let mut request = Vec::new();
    loop {
        let batch = rng.random_range(1..=cycle.pipeline);
        request.clear();
        for _ in 0..batch {
            let wait = if rng.random_bool(0.5) {
                format!("/t={WAIT_MS}")
            } else {
                String::new()
            };
            request.extend_from_slice(format!("get {}{wait}\r\n", cycle.queue).as_bytes());
        }
        if conn.send(&request).is_err() {
            events.plain_in_doubt += batch as u64;
            return events;
        }
        for answered in 0..batch {
            match conn.reply() {
                Ok(Reply::Value(range)) => {
                    if let Some(id) = stamp_of(conn.data(range), &mut events.problems) {
                        events.taken.push((id, Taken::Plain));
                        cycle.backlog.fetch_sub(1, Relaxed);
                    }
                }
                Ok(Reply::Empty) => {}
                Ok(other) => events
                    .problems
                    .push(format!("a get was answered {other:?}")),
                Err(error) => {
                    note_garbled(&error, &mut events.problems);
                    events.plain_in_doubt += (batch - answered) as u64;
                    return events;
                }
            }
        }
    }
}

/// One reliable reader: opens an item, then confirms it (`/close/open` or `/close`), gives it
/// back (`/abort`, or by dropping the connection), or still holds it when the server dies.
pub fn take_reliably(cycle: &Cycle, seed: u64) -> CycleEvents {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut reader = Reliable {
        cycle,
        events: CycleEvents::default(),
        open: None,
    };
    let Ok(mut conn) = cycle.connect() else {
        return reader.events;
    };
    loop {
        let Some(item) = reader.open else {
            if !reader.open_next(&mut conn, "open") {
                break;
            }
            continue;
        };
        if rng.random_bool(0.3) {
            // Processing the item; a kill now leaves it open, so it must come back.
            std::thread::sleep(Duration::from_millis(rng.random_range(1..=5)));
            if cycle.stop.load(Relaxed) {
                break;
            }
        }
        let alive = match rng.random_range(0..100) {
            0..70 => reader.finish(&mut conn, "close/open", item),
            70..85 => reader.finish(&mut conn, "close", item),
            85..95 => reader.abort(&mut conn, item),
            _ => {
                reader.give_back(item);
                match cycle.connect() {
                    Ok(fresh) => {
                        conn = fresh;
                        true
                    }
                    Err(_) => false,
                }
            }
        };
        if !alive {
            break;
        }
    }
    if let Some(item) = reader.open {
        reader.events.taken.push((item, Taken::HeldAtKill));
    }
    reader.events
}

struct Reliable<'a, 'c> {
    cycle: &'a Cycle<'c>,
    events: CycleEvents,
    /// The item this connection holds open.
    open: Option<Id>,
}

impl Reliable<'_, '_> {
    /// `get q/<options>/t=..`; the item it answers (if any) is now open. False once the
    /// connection is gone.
    fn open_next(&mut self, conn: &mut Conn, options: &str) -> bool {
        let request = format!("get {}/{options}/t={WAIT_MS}\r\n", self.cycle.queue);
        if conn.send(request.as_bytes()).is_err() {
            return false;
        }
        match conn.reply() {
            Ok(Reply::Value(range)) => {
                self.open = stamp_of(conn.data(range), &mut self.events.problems);
                true
            }
            Ok(Reply::Empty) => true,
            Ok(other) => {
                self.events
                    .problems
                    .push(format!("get /{options} was answered {other:?}"));
                true
            }
            Err(error) => {
                note_garbled(&error, &mut self.events.problems);
                false
            }
        }
    }

    /// Confirms `item` with `/close` or `/close/open`: confirmed once answered, in doubt if
    /// the answer never came.
    fn finish(&mut self, conn: &mut Conn, options: &str, item: Id) -> bool {
        self.open = None;
        let alive = if options == "close" {
            self.close_only(conn)
        } else {
            self.open_next(conn, options)
        };
        let taken = if alive {
            self.cycle.backlog.fetch_sub(1, Relaxed);
            Taken::Closed
        } else {
            Taken::CloseInDoubt
        };
        self.events.taken.push((item, taken));
        alive
    }

    fn close_only(&mut self, conn: &mut Conn) -> bool {
        self.expect_empty_reply(conn, "close")
    }

    /// `/abort`: the item goes back whether or not the answer arrives (unanswered, it is still
    /// open when the server dies, and open reads return on restart).
    fn abort(&mut self, conn: &mut Conn, item: Id) -> bool {
        self.give_back(item);
        self.expect_empty_reply(conn, "abort")
    }

    /// Sends `get <queue>/<option>`, whose answer must be a bare `END`; false when the
    /// connection is gone (an unexpected answer is a problem, but the connection goes on).
    fn expect_empty_reply(&mut self, conn: &mut Conn, option: &str) -> bool {
        let request = format!("get {}/{option}\r\n", self.cycle.queue);
        if conn.send(request.as_bytes()).is_err() {
            return false;
        }
        match conn.reply() {
            Ok(Reply::Empty) => true,
            Ok(other) => {
                self.events
                    .problems
                    .push(format!("get /{option} was answered {other:?}"));
                true
            }
            Err(error) => {
                note_garbled(&error, &mut self.events.problems);
                false
            }
        }
    }

    fn give_back(&mut self, item: Id) {
        self.open = None;
        self.events.taken.push((item, Taken::Aborted));
    }
}

/// The item a payload names, or a problem noted when it is damaged.
fn stamp_of(data: &[u8], problems: &mut Vec<String>) -> Option<Id> {
    match payload::decode(data, None) {
        Ok(stamp) => Some((stamp.producer, stamp.seq)),
        Err(why) => {
            problems.push(format!("a delivered payload is damaged ({why:?})"));
            None
        }
    }
}

/// A connection error is expected (the kill); a reply that is not the protocol is a problem.
fn note_garbled(error: &anyhow::Error, problems: &mut Vec<String>) {
    if let Some(garbled) = error.downcast_ref::<Garbled>() {
        problems.push(garbled.to_string());
    }
}
