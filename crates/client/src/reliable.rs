//! Reliable reads as values: an open read (or a `monitor` batch of them) owns the connection it
//! was opened on until it is confirmed or aborted, because the server ties open reads to the
//! connection. Dropping one unconfirmed aborts it, so the item goes back to the head of its
//! queue.

use std::time::Duration;

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::command::GetOptions;
use crate::error::Result;
use crate::pool::Pooled;

/// Aborts the connection's open reads oldest first (`get <queue>/abort` each).
async fn abort_all(connection: &mut Pooled, queue: &str) -> Result<()> {
    let abort = GetOptions {
        abort: true,
        ..GetOptions::default()
    };
    while connection.open_reads() > 0 {
        connection.get(queue, abort).await?;
    }
    Ok(())
}

/// An item removed from its queue by a reliable read (`get <queue>/open`), not yet confirmed.
///
/// Call [`confirm`](ReliableItem::confirm) once the item is processed, or
/// [`abort`](ReliableItem::abort) to put it back at the head of the queue. Dropping it
/// unconfirmed aborts it. Both go to the connection that opened the read, which this value
/// owns meanwhile (no other operation uses it). If that connection or its server dies first,
/// `confirm` and `abort` fail with [`Error::ConnectionLost`](crate::Error::ConnectionLost) and
/// the server re-queues the item (on restart, if it crashed): it will be delivered again.
///
/// ```no_run
/// # async fn work(client: lanner_client::Client) -> lanner_client::Result<()> {
/// use std::time::Duration;
///
/// if let Some(item) = client.open("jobs", Duration::from_secs(5)).await? {
///     println!("processing {} bytes", item.data().len());
///     item.confirm().await?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ReliableItem {
    data: Bytes,
    queue: String,
    /// `Some` until confirmed, aborted or dropped.
    connection: Option<Pooled>,
    /// Where the abort of a dropped item runs (the drop may happen outside any runtime).
    runtime: Handle,
}

impl ReliableItem {
    pub(crate) fn new(queue: String, data: Bytes, connection: Pooled) -> ReliableItem {
        ReliableItem {
            data,
            queue,
            connection: Some(connection),
            runtime: Handle::current(),
        }
    }

    /// The item.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The queue it came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The server it came from (`host:port` as configured).
    pub fn server(&self) -> &str {
        self.connection
            .as_ref()
            .map_or("", |connection| connection.server().address())
    }

    fn take(&mut self) -> Pooled {
        self.connection
            .take()
            .expect("taken once, by a method that consumes the item")
    }

    /// Confirms the read (`get <queue>/close`): the item is gone for good.
    pub async fn confirm(mut self) -> Result<()> {
        let mut connection = self.take();
        let close = GetOptions {
            close: true,
            ..GetOptions::default()
        };
        connection.get(&self.queue, close).await.map(drop)
    }

    /// Aborts the read (`get <queue>/abort`): the item goes back to the head of its queue.
    pub async fn abort(mut self) -> Result<()> {
        let mut connection = self.take();
        abort_all(&mut connection, &self.queue).await
    }

    /// Confirms this item and opens the next one from the same server and queue in one round
    /// trip (`get <queue>/close/open/t=<wait>`), the usual Kestrel worker loop. `None` if the
    /// queue on that server stayed empty for `wait`; the confirm happened either way. To read
    /// from the other servers too, call [`Client::open`](crate::Client::open) after a `None`.
    pub async fn confirm_and_open(mut self, wait: Duration) -> Result<Option<ReliableItem>> {
        let mut connection = self.take();
        let queue = std::mem::take(&mut self.queue);
        let next = GetOptions {
            close: true,
            open: true,
            wait,
            ..GetOptions::default()
        };
        let data = connection.get(&queue, next).await?;
        Ok(data.map(|data| ReliableItem::new(queue, data, connection)))
    }
}

impl Drop for ReliableItem {
    fn drop(&mut self) {
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let queue = std::mem::take(&mut self.queue);
        // If the abort fails or never runs (the runtime shut down), the connection is closed
        // instead, and the server aborts the read itself.
        drop(self.runtime.spawn(async move {
            let _ = abort_all(&mut connection, &queue).await;
        }));
    }
}

/// The items of one `monitor` request: each is an open read of one connection, which the batch
/// owns, and they are confirmed or aborted together. Dropping the batch unconfirmed aborts
/// them.
///
/// ```no_run
/// # async fn work(client: lanner_client::Client) -> lanner_client::Result<()> {
/// use std::time::Duration;
///
/// let batch = client.monitor("jobs", Duration::from_secs(1), 50).await?;
/// for item in batch.items() {
///     println!("{} bytes", item.len());
/// }
/// batch.confirm().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MonitorBatch {
    items: Vec<Bytes>,
    queue: String,
    connection: Pooled,
}

impl MonitorBatch {
    pub(crate) fn new(queue: String, items: Vec<Bytes>, connection: Pooled) -> MonitorBatch {
        MonitorBatch {
            items,
            queue,
            connection,
        }
    }

    /// The items, oldest first.
    pub fn items(&self) -> &[Bytes] {
        &self.items
    }

    /// How many items the batch holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if the monitor delivered nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The queue the items came from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The server they came from (`host:port` as configured).
    pub fn server(&self) -> &str {
        self.connection.server().address()
    }

    /// Confirms every item (`confirm <queue> <n>`).
    pub async fn confirm(mut self) -> Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        self.connection.confirm(&self.queue, self.items.len()).await
    }

    /// Aborts every item by closing the connection that holds them, which is also what
    /// dropping the batch does. lanner puts them back at the head of the queue in their
    /// original order as soon as it sees the connection close (Kestrel 2.4 reverses them).
    pub fn abort(self) {
        drop(self);
    }
}
