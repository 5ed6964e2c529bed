//! Starting and stopping a server: recovery, the listener, signals, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use arc_swap::ArcSwap;
use futures_util::FutureExt;
use lanner_journal::JournalOptions;
use lanner_queue::{QueueCollection, QueueOptions, RecoveredQueue, SystemClock};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::access::{self, Users};
use crate::admin::AdminServer;
use crate::alias::Aliases;
use crate::background::Background;
use crate::config::{Config, TlsConfig};
use crate::connection;
use crate::recovery::RecoveryLog;
use crate::reload::reload;
use crate::request_memory::RequestMemory;
use crate::shared::Shared;
use crate::stats::{ServerStats, bump, read};
use crate::status::{ServerStatus, Status};
use crate::text;
use crate::tls::Tls;

/// Recovers every queue, then serves until a signal or the `shutdown` command. Returns once
/// connections have finished (or `shutdown_timeout` passed) and every journal is fsynced.
///
/// `config_path` is the file `reload` (or SIGHUP) reads queue and alias settings from again.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    access::refuse_unprotected_text_protocol(&config)?;
    let tls = config.server.tls.as_ref().map(Tls::load).transpose()?;
    // Before anything listens: a SIGTERM during recovery or right after the port accepts must
    // stop the server gracefully (once recovered), not kill it.
    let signals = Signals::install()?;
    let admin = AdminServer::start(config.server.admin_listen_addr()).await?;
    // Off the async workers, so the admin port answers /healthz during a long replay.
    let recovered = tokio::task::spawn_blocking(move || recover(config, config_path)).await;
    let shared = Arc::new(recovered.context("journal recovery panicked")??);
    let listener = listen(shared.server.listen)
        .with_context(|| format!("cannot listen on {}", shared.server.listen))?;
    let text_listener = bind_text_listener(&shared.server.text_listen).await?;
    let tls_listener = bind_tls_listener(shared.server.tls.as_ref())?;
    // Ready only once every port is bound: a failed bind must never have looked ready.
    if let Some(admin) = &admin {
        admin.recovered(&shared);
    }
    let address = listener.local_addr()?;
    info!(%address, "lanner listening on {address}");
    access::warn_if_exposed("memcache", address, &shared.users);
    if let Some(text_listener) = &text_listener {
        let address = text_listener.local_addr()?;
        info!(%address, "lanner text protocol listening on {address}");
        access::warn_if_exposed("text protocol", address, &shared.users);
    }
    if let Some(tls_listener) = &tls_listener {
        let address = tls_listener.local_addr()?;
        info!(%address, "lanner TLS listening on {address}");
        access::warn_if_exposed("TLS", address, &shared.users);
    }
    let background = Background::start(Arc::clone(&shared))?;
    let connections = TaskTracker::new();
    notify_systemd(sd_notify::NotifyState::Ready);
    tokio::spawn(stop_on_signal(shared.shutdown.clone(), signals));
    tokio::spawn(reload_on_sighup(Arc::clone(&shared)));
    let text_accepted = async {
        if let Some(text_listener) = &text_listener {
            let serve = |stream, _peer, shared| text::serve(stream, shared);
            accept_until_shutdown(text_listener, &shared, &connections, serve).await;
        }
    };
    let tls_accepted = async {
        if let (Some(tls_listener), Some(tls)) = (&tls_listener, &tls) {
            let serve = |stream, peer, shared| tls.clone().serve(stream, peer, shared);
            accept_until_shutdown(tls_listener, &shared, &connections, serve).await;
        }
    };
    tokio::join!(
        accept_until_shutdown(&listener, &shared, &connections, connection::serve),
        text_accepted,
        tls_accepted,
    );
    drop(listener);
    drop(text_listener);
    drop(tls_listener);
    notify_systemd(sd_notify::NotifyState::Stopping);
    drain(&shared, &connections).await;
    let closed = read(&shared.stats.closed_at_shutdown);
    let returned = read(&shared.stats.returned_at_shutdown);
    background.stop();
    let journals = shared.queues.queues().len();
    shared
        .queues
        .sync_all()
        .context("final journal sync failed")?;
    if let Some(admin) = admin {
        admin.stop().await;
    }
    info!(
        connections_closed = closed,
        open_reads_returned = returned,
        journals_synced = journals,
        "lanner stopped: {closed} connections closed, {returned} open reads returned, {journals} journals flushed and fsynced"
    );
    Ok(())
}

/// Locks the data directory and replays every journal before anything listens.
fn recover(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<Shared> {
    let started = Instant::now();
    let data_dir = config.server.data_dir.clone();
    let live_config = Arc::new(ArcSwap::from_pointee(config.clone()));
    let resolver_config = Arc::clone(&live_config);
    let resolve = Box::new(move |name: &str| queue_options(&resolver_config.load(), name));
    let mut progress = RecoveryLog::new();
    let (queues, recovered) = QueueCollection::open_with_progress(
        &data_dir,
        resolve,
        Arc::new(SystemClock),
        &mut |done| progress.observe(done),
    )
    .with_context(|| format!("cannot open data directory {}", data_dir.display()))?;
    log_recovery(&recovered, started.elapsed());
    create_configured_fanout_children(&config, &queues)?;
    let limits = lanner_proto::Limits {
        max_line_len: usize::try_from(config.server.max_line_length).unwrap_or(usize::MAX),
        max_item_size: usize::try_from(config.server.max_request_size).unwrap_or(usize::MAX),
    };
    Ok(Shared {
        users: Arc::new(
            Users::from_config(&config.users, &config.server.login)
                .map_err(|message| anyhow!(message))?,
        ),
        queues,
        stats: ServerStats::default(),
        aliases: ArcSwap::from_pointee(Aliases::new(&config.aliases)),
        status: server_status(&config),
        connection_slots: Arc::new(Semaphore::new(config.server.max_connections as usize)),
        request_memory: RequestMemory::new(config.server.max_buffered_request_bytes),
        server: config.server,
        config: live_config,
        config_path,
        shutdown: CancellationToken::new(),
        limits,
    })
}

/// Fanout children named in the configuration exist from startup, so they receive copies from
/// the first item on (Kestrel issue #127).
fn create_configured_fanout_children(
    config: &Config,
    queues: &QueueCollection,
) -> anyhow::Result<()> {
    for name in config.queues.keys().filter(|name| name.contains('+')) {
        queues
            .get_or_create(name)
            .with_context(|| format!("cannot create fanout queue {name}"))?;
    }
    Ok(())
}

/// The status saved by the last run, or the configured default.
fn server_status(config: &Config) -> ServerStatus {
    let default = Status::parse(&config.server.default_status).unwrap_or(Status::Up);
    ServerStatus::load(
        &config.server.status_path(),
        default,
        config.server.status_change_grace_period,
    )
}

/// The queue crate's options for `name`, from the resolved configuration.
fn queue_options(config: &Config, name: &str) -> QueueOptions {
    let settings = config.queue_settings(name);
    QueueOptions {
        sync: settings.sync,
        journal: JournalOptions {
            segment_size: settings.journal_segment_size,
            salvage: config.server.salvage,
            ..JournalOptions::default()
        },
        limits: settings.limits(),
        expire_to_queue: settings.expire_to_queue,
        max_memory_size: settings.max_memory_size,
        keep_journal: settings.keep_journal,
        ..QueueOptions::default()
    }
}

fn log_recovery(recovered: &[RecoveredQueue], elapsed: Duration) {
    for queue in recovered {
        for cut in &queue.replay.truncations {
            warn!(
                queue = %queue.name, file = %cut.file.display(), offset = cut.offset, dropped_bytes = cut.dropped_bytes,
                "journal truncated at a damaged record"
            );
        }
        info!(queue = %queue.name, items = queue.items, bytes = queue.bytes, segments = queue.replay.segments, journal_bytes = queue.replay.bytes, "recovered queue");
    }
    info!(
        queues = recovered.len(),
        elapsed_ms = elapsed.as_millis() as u64,
        "recovery finished"
    );
}

/// Binds the text-protocol listener of `[server] text_listen`; `None` when it is `""`.
async fn bind_text_listener(text_listen: &str) -> anyhow::Result<Option<TcpListener>> {
    if text_listen.is_empty() {
        return Ok(None);
    }
    let address: SocketAddr = text_listen.parse().map_err(|_| {
        anyhow!(
            "invalid text_listen {text_listen:?}: write an address such as \"127.0.0.1:2222\", or \"\" to disable"
        )
    })?;
    let listener = listen(address)
        .with_context(|| format!("cannot listen for the text protocol on {address}"))?;
    Ok(Some(listener))
}

/// Binds the memcache-over-TLS listener of `[server.tls]`, if there is one.
fn bind_tls_listener(tls: Option<&TlsConfig>) -> anyhow::Result<Option<TcpListener>> {
    let Some(tls) = tls else { return Ok(None) };
    let listener =
        listen(tls.listen).with_context(|| format!("cannot listen for TLS on {}", tls.listen))?;
    Ok(Some(listener))
}

/// Accepts connections on `listener` until shutdown, serving each with `serve` (one
/// protocol's per-connection task, given the client's address) under `connections`, so that
/// shutdown drains them.
async fn accept_until_shutdown<F>(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    connections: &TaskTracker,
    serve: impl Fn(TcpStream, SocketAddr, Arc<Shared>) -> F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shared.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                configure_stream(&stream, peer);
                match Arc::clone(&shared.connection_slots).try_acquire_owned() {
                    Ok(permit) => {
                        let slot = ConnectionSlot::take(permit, Arc::clone(shared));
                        let connection = serve(stream, peer, Arc::clone(shared));
                        connections.spawn(connection.map(move |()| drop(slot)));
                    }
                    Err(_) => {
                        warn!(%peer, "refusing a connection: max_connections reached");
                        connections.spawn(refuse(stream));
                    }
                }
            }
            // Running out of descriptors must not end the server; back off briefly instead.
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A served connection's hold on one of the `max_connections` slots, counted in
/// `curr_connections` and `total_connections`. Fields drop in declaration order, so the slot
/// is free again before the count falls: a client that sees `curr_connections` drop is not
/// refused for want of a slot.
struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    _counted: ConnectionCount,
}

impl ConnectionSlot {
    fn take(permit: OwnedSemaphorePermit, shared: Arc<Shared>) -> Self {
        Self {
            _permit: permit,
            _counted: ConnectionCount::open(shared),
        }
    }
}

/// Counts a connection in `curr_connections` and `total_connections` for as long as it lives.
struct ConnectionCount(Arc<Shared>);

impl ConnectionCount {
    fn open(shared: Arc<Shared>) -> Self {
        bump(&shared.stats.total_connections);
        bump(&shared.stats.curr_connections);
        Self(shared)
    }
}

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0
            .stats
            .curr_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

fn configure_stream(stream: &TcpStream, peer: SocketAddr) {
    if let Err(error) = stream.set_nodelay(true) {
        warn!(%peer, %error, "cannot set TCP_NODELAY");
    }
}

/// Connection requests the kernel queues while the accept loop catches up. Tokio's default
/// (1024) overflows when thousands of clients connect at once, and each overflow costs the
/// client a one-second SYN retransmit; the kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 16384;

/// Binds a listener with [`LISTEN_BACKLOG`].
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Tells a client over the connection limit why it is turned away, then closes.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    // The client may already be gone; there is nothing more to do either way.
    let _ = stream
        .write_all(b"SERVER_ERROR too many connections\r\n")
        .await;
}

/// Lets connections finish the requests in flight and return their open reads, for at most
/// `shutdown_timeout`.
async fn drain(shared: &Shared, connections: &TaskTracker) {
    connections.close();
    let open = connections.len();
    info!(connections = open, "shutting down: draining connections");
    if tokio::time::timeout(shared.server.shutdown_timeout, connections.wait())
        .await
        .is_err()
    {
        warn!(
            remaining = connections.len(),
            "shutdown timeout passed with connections still open"
        );
    }
}

/// Tells systemd (`Type=notify`) about a state change; nothing happens without
/// `NOTIFY_SOCKET`, and a failure only costs the notification.
fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(false, &[state]) {
        warn!(%error, "cannot notify systemd");
    }
}

/// Reloads queue and alias settings on every SIGHUP.
async fn reload_on_sighup(shared: Arc<Shared>) {
    let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => signal,
        Err(error) => {
            warn!(%error, "cannot listen for SIGHUP");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        info!("SIGHUP received: reloading the configuration");
        if let Err(error) = reload(&shared) {
            warn!("reload failed, configuration unchanged: {error}");
        }
    }
}

/// The signals that stop the server, registered up front.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }
}

async fn stop_on_signal(shutdown: CancellationToken, mut signals: Signals) {
    let signal = tokio::select! {
        _ = signals.terminate.recv() => "SIGTERM",
        _ = signals.interrupt.recv() => "SIGINT",
        () = shutdown.cancelled() => return,
    };
    // Stop first, log second: logging to a closed stderr must not keep the server running.
    shutdown.cancel();
    info!("{signal} received");
}
