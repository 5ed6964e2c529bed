//! The server's configuration, read from one TOML file (see `config/lanner.toml`, which documents
//! every key with its default).
//!
//! Keys are snake_case and every table rejects keys it does not know, so a typo stops startup
//! instead of being ignored. Sizes and durations are written in human units (`"64KiB"`, `"100ms"`).
//!
//! Queue settings are layered as in Kestrel 2.3.4+: built-in defaults, then the `[default]` table,
//! then `[queues.<master>]` for a fanout child `master+child`, then `[queues.<name>]`. Only the
//! keys written in a table override its parent, which is why [`QueueOverrides`] holds `Option`s.
//! [`Config::queue_settings`] does the resolution.

mod units;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lanner_queue::QueueLimits;
use serde::{Deserialize, Serialize};

/// Built-in fsync interval of a queue: Kestrel's shipped production configuration.
const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(100);
/// Built-in memory budget of a queue (Kestrel's `maxMemorySize`).
const DEFAULT_MAX_MEMORY_SIZE: u64 = 128 << 20;
/// Built-in journal size that triggers compaction (Kestrel's `maxJournalSize`).
const DEFAULT_MAX_JOURNAL_SIZE: u64 = 1 << 30;
/// Built-in journal segment size of a queue (Kestrel's `defaultJournalSize`).
const DEFAULT_JOURNAL_SEGMENT_SIZE: u64 = 16 << 20;

/// Longest `[server.login]` duration.
const MAX_LOGIN_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: settings that need a restart to change.
    pub server: ServerConfig,
    /// `[default]`: queue settings every queue inherits. After loading, every field is `Some`
    /// (keys the file leaves out hold the built-in defaults), so dumps show the effective values.
    pub default: QueueOverrides,
    /// `[queues.<name>]`: per-queue overrides, keyed by queue name (fanout children included).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub queues: BTreeMap<String, QueueOverrides>,
    /// `[aliases.<name>]`: names that fan a `set` out to several queues.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, AliasConfig>,
    /// `[users.<name>]`: when any is configured, memcache clients must authenticate and are
    /// limited to their user's rules (see `docs/security.md`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, UserConfig>,
}

/// `[server]`: listener, data directory and protocol limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the memcache listener; loopback by default.
    pub listen: SocketAddr,
    /// Address of the text-protocol listener (Kestrel's port 2222); empty to disable it.
    pub text_listen: String,
    /// Address of the admin HTTP port (dashboard, `/metrics`, health); empty to disable it.
    pub admin_listen: String,
    /// Directory holding the journals; the server locks it exclusively.
    #[serde(serialize_with = "units::lossy_path::serialize")]
    pub data_dir: PathBuf,
    /// Client connections served at once (both protocols); more are refused with an error line.
    #[serde(deserialize_with = "units::at_least_one::deserialize")]
    pub max_connections: u32,
    /// Open (uncommitted) reads allowed per connection per queue; at least 1.
    #[serde(deserialize_with = "units::at_least_one::deserialize")]
    pub max_open_transactions: u32,
    /// Longest request line in bytes; a longer one gets `CLIENT_ERROR line too long`.
    #[serde(with = "units::size")]
    pub max_line_length: u64,
    /// Largest `set` payload in bytes that the protocol accepts at all.
    #[serde(with = "units::size")]
    pub max_request_size: u64,
    /// Request bytes all connections together may hold while requests arrive; a connection
    /// whose read would take the total over it gets `SERVER_ERROR` and is closed.
    #[serde(with = "units::size")]
    pub max_buffered_request_bytes: u64,
    /// How long a graceful shutdown waits for connections to finish.
    #[serde(with = "units::duration")]
    pub shutdown_timeout: Duration,
    /// Truncate a journal at corruption in the middle of a file instead of refusing to start.
    pub salvage: bool,
    /// `VALUE` repeats the key exactly as requested, `/options` included (Part 0 #12), for
    /// memcache clients that check the returned key.
    pub echo_full_key: bool,
    /// A connection idle this long is closed (its open reads go back); `None` for never.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "units::duration_opt"
    )]
    pub client_timeout: Option<Duration>,
    /// Period of the background sweep that expires items at the head of every queue, returns
    /// timed-out open reads and deletes queues past `max_queue_age`.
    #[serde(with = "units::duration")]
    pub expiration_timer_frequency: Duration,
    /// File that keeps the server status across restarts; `None` for `status` in `data_dir`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "units::lossy_path_opt::serialize"
    )]
    pub status_file: Option<PathBuf>,
    /// Status when no status file exists: `up`, `writeavoid`, `readonly` or `quiescent`.
    pub default_status: String,
    /// Delay before a change to a stricter status takes effect.
    #[serde(with = "units::duration")]
    pub status_change_grace_period: Duration,
    /// `[server.tls]`: a second memcache listener that speaks TLS; `None` for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// `[server.login]`: how failed logins are limited when `[users.*]` is configured.
    pub login: LoginConfig,
}

/// `[server.login]`: the limits on password guessing (see `docs/security.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed logins one connection may make: the last is answered, then the connection closes.
    #[serde(deserialize_with = "units::at_least_one::deserialize")]
    pub max_attempts: u32,
    /// Each failed login is answered only after this long.
    #[serde(with = "units::duration")]
    pub failure_delay: Duration,
    /// Failed logins from one address (an IPv4 address, an IPv6 /64) within `failure_window`
    /// that lock the address out for `lockout`.
    #[serde(deserialize_with = "units::at_least_one::deserialize")]
    pub max_failures_per_address: u32,
    /// The window `max_failures_per_address` counts in, from an address's first failure.
    #[serde(with = "units::duration")]
    pub failure_window: Duration,
    /// How long a locked-out address's logins are refused without checking the password.
    #[serde(with = "units::duration")]
    pub lockout: Duration,
    /// Addresses whose failures are remembered at once; beyond it, the failures of addresses
    /// not remembered share one count.
    #[serde(deserialize_with = "units::at_least_one::deserialize")]
    pub max_tracked_addresses: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            max_attempts: 3,
            failure_delay: Duration::from_secs(1),
            max_failures_per_address: 10,
            failure_window: Duration::from_secs(10 * 60),
            lockout: Duration::from_secs(10 * 60),
            max_tracked_addresses: 65536,
        }
    }
}

/// `[server.tls]`: the memcache protocol over TLS on its own port, beside the plaintext one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address of the TLS listener.
    pub listen: SocketAddr,
    /// PEM file with the server certificate, then any intermediate certificates.
    #[serde(serialize_with = "units::lossy_path::serialize")]
    pub cert_file: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(serialize_with = "units::lossy_path::serialize")]
    pub key_file: PathBuf,
    /// A client that has not finished the TLS handshake within this time is disconnected.
    #[serde(default = "default_handshake_timeout", with = "units::duration")]
    pub handshake_timeout: Duration,
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[users.<name>]`: one user's password and rights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The password's Argon2 PHC string, as `lanner --hash-password` prints it.
    pub password_hash: String,
    /// Queues the user may `set` to: names, or prefixes ending in `*`.
    #[serde(default)]
    pub produce: Vec<String>,
    /// Queues the user may `get`, `monitor` and `confirm` from: names, or prefixes ending in `*`.
    #[serde(default)]
    pub consume: Vec<String>,
    /// May use the admin commands (delete, flush, flush_all, flush_expired,
    /// flush_all_expired, status <name>, reload, shutdown, dump_config).
    #[serde(default)]
    pub admin: bool,
}

impl ServerConfig {
    /// The text-protocol listener's address, or `None` when it is disabled.
    pub fn text_listen_addr(&self) -> Option<SocketAddr> {
        self.text_listen.parse().ok()
    }

    /// The admin HTTP port's address, or `None` when it is disabled.
    pub fn admin_listen_addr(&self) -> Option<SocketAddr> {
        self.admin_listen.parse().ok()
    }

    /// Where the server status is kept.
    pub fn status_path(&self) -> PathBuf {
        self.status_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("status"))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 22133)),
            text_listen: "127.0.0.1:2222".to_owned(),
            admin_listen: "127.0.0.1:2223".to_owned(),
            data_dir: PathBuf::from("./data"),
            max_connections: 16384,
            max_open_transactions: 100,
            max_line_length: 64 << 10,
            max_request_size: 64 << 20,
            max_buffered_request_bytes: 256 << 20,
            shutdown_timeout: Duration::from_secs(5),
            salvage: false,
            echo_full_key: false,
            client_timeout: None,
            expiration_timer_frequency: Duration::from_secs(1),
            status_file: None,
            default_status: "up".to_owned(),
            status_change_grace_period: Duration::ZERO,
            tls: None,
            login: LoginConfig::default(),
        }
    }
}

/// `[aliases.<name>]`: a `set` to the alias adds the item to every destination queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasConfig {
    /// The queues that receive each item; at least one, none of them an alias.
    pub destination_queues: Vec<String>,
}

/// Declares every queue setting once, and derives from that list the per-table
/// [`QueueOverrides`] (every key optional), the resolved [`QueueSettings`], the built-in defaults
/// and the layering of one over the other. Adding a key is one entry here plus its line in
/// `config/lanner.toml`.
macro_rules! queue_settings {
    ($(
        $(#[doc = $doc:literal])*
        $key:ident: $setting:ty = $default:expr, serde $with:literal;
    )*) => {
        /// The queue settings written in one table.
        /// Every field is `Option`: only keys written in a table override the parent.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct QueueOverrides {
            $(
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Option::is_none", with = $with)]
                pub $key: Option<<$setting as Setting>::Written>,
            )*
        }

        /// Fully resolved settings for one queue.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct QueueSettings {
            $(
                $(#[doc = $doc])*
                pub $key: $setting,
            )*
        }

        impl Default for QueueSettings {
            fn default() -> Self {
                QueueSettings { $($key: $default,)* }
            }
        }

        impl QueueSettings {
            /// These settings with the keys written in `table` (if there is one) replacing them.
            fn overridden_by(self, table: Option<&QueueOverrides>) -> QueueSettings {
                let Some(table) = table else { return self };
                QueueSettings { $($key: table.$key.clone().map_or(self.$key, Into::into),)* }
            }
        }

        impl From<QueueSettings> for QueueOverrides {
            fn from(settings: QueueSettings) -> Self {
                QueueOverrides { $($key: settings.$key.written(),)* }
            }
        }
    };
}

impl QueueSettings {
    /// The settings a live queue takes on when they change (`reload`).
    pub fn limits(&self) -> QueueLimits {
        QueueLimits {
            max_items: self.max_items,
            max_size: self.max_size,
            max_item_size: self.max_item_size,
            discard_old_when_full: self.discard_old_when_full,
            max_age: self.max_age,
            max_expire_sweep: self.max_expire_sweep,
            fanout_only: self.fanout_only,
            open_transaction_timeout: self.open_transaction_timeout,
            max_queue_age: self.max_queue_age,
            max_journal_size: Some(self.max_journal_size),
        }
    }
}

/// A queue setting's type, and how it is written in a table: a required setting is written as
/// itself, an optional one (`None` = no limit) as its inner value.
pub trait Setting: Sized {
    /// What a table holds for this setting when the key is written.
    type Written: Clone + Into<Self>;
    /// The setting as a table would write it (`None` for an unset optional setting).
    fn written(self) -> Option<Self::Written>;
}

macro_rules! required_setting {
    ($($type:ty),*) => {$(
        impl Setting for $type {
            type Written = $type;
            fn written(self) -> Option<$type> {
                Some(self)
            }
        }
    )*};
}

required_setting!(SyncPolicy, u64, bool);

impl<T: Clone> Setting for Option<T> {
    type Written = T;
    fn written(self) -> Option<T> {
        self
    }
}

queue_settings! {
    /// When the journal is fsynced.
    sync: SyncPolicy = SyncPolicy::Interval(DEFAULT_SYNC_INTERVAL), serde "units::sync_opt";
    /// Size in bytes at which the journal moves on to a new segment.
    journal_segment_size: u64 = DEFAULT_JOURNAL_SEGMENT_SIZE, serde "units::size_opt";
    /// Payload bytes kept in memory; newer items wait in a spill file (read-behind).
    max_memory_size: u64 = DEFAULT_MAX_MEMORY_SIZE, serde "units::size_opt";
    /// The journal is compacted once it grows past this, whatever the live data.
    max_journal_size: u64 = DEFAULT_MAX_JOURNAL_SIZE, serde "units::size_opt";
    /// False for a memory-only queue: nothing is journaled and a restart starts it empty.
    keep_journal: bool = true, serde "units::plain";
    /// Most items the queue holds; `None` for no limit.
    max_items: Option<u64> = None, serde "units::plain";
    /// Most payload bytes the queue holds (checked before an add); `None` for no limit.
    max_size: Option<u64> = None, serde "units::size_opt";
    /// Largest item the queue accepts; `None` for no limit beyond the protocol's.
    max_item_size: Option<u64> = None, serde "units::size_opt";
    /// When full, drop the oldest items to make room instead of refusing the new one.
    discard_old_when_full: bool = false, serde "units::plain";
    /// Items expire at the latest this long after they were added; `None` for never.
    max_age: Option<Duration> = None, serde "units::duration_opt";
    /// Queue that receives this queue's expired items, without expiry (the delay-queue pattern).
    expire_to_queue: Option<String> = None, serde "units::plain";
    /// Most items one expiry pass removes; `None` for no limit.
    max_expire_sweep: Option<u64> = None, serde "units::plain";
    /// A fanout master that keeps nothing itself: only its children receive items.
    fanout_only: bool = false, serde "units::plain";
    /// An empty queue this old (since creation or startup) is deleted by the background sweep.
    max_queue_age: Option<Duration> = None, serde "units::duration_opt";
    /// An open read not confirmed within this time goes back to the queue.
    open_transaction_timeout: Option<Duration> = None, serde "units::duration_opt";
}

/// When a queue's journal is fsynced: `Always`, `Never` or `Interval(period)`, written in the
/// file as `"always"`, `"never"` or a non-zero duration such as `"100ms"`.
///
/// This is the queue crate's own type, so resolved settings hand it over unchanged. Whatever the
/// policy, a `set` is answered only after its record was written to the operating system; the
/// policy decides what survives a power loss.
pub use lanner_queue::SyncPolicy;

/// Why a configuration could not be loaded. Every message names the file (or other origin).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a key or value does not fit the layout (unknown keys
    /// included; the message names the key, its line and column).
    #[error("{origin}: {message}")]
    Parse {
        /// The file name, or whatever the text came from.
        origin: String,
        /// The parser's explanation.
        message: String,
    },
    /// Well-formed, but inconsistent: a bad queue or alias name, or a bad alias destination.
    #[error("{origin}: {message}")]
    Invalid {
        /// The file name, or whatever the text came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

impl Default for Config {
    /// The built-in configuration; `config/lanner.toml` documents exactly these values.
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            default: QueueSettings::default().into(),
            queues: BTreeMap::new(),
            aliases: BTreeMap::new(),
            users: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text; `origin` (usually the file name) prefixes errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|error| ConfigError::Parse {
            origin: origin.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        config.default = QueueSettings::default()
            .overridden_by(Some(&config.default))
            .into();
        config.validate().map_err(|message| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        })?;
        Ok(config)
    }

    /// The effective settings of `queue`: built-in defaults <- `[default]` <- `[queues.<master>]`
    /// (for a fanout child `a+b` the master is `a`, the text before the first `+`) <-
    /// `[queues.<queue>]`.
    pub fn queue_settings(&self, queue: &str) -> QueueSettings {
        let master = queue.split_once('+').map_or(queue, |(master, _)| master);
        let mut settings = QueueSettings::default()
            .overridden_by(Some(&self.default))
            .overridden_by(self.queues.get(master));
        if master != queue {
            settings = settings.overridden_by(self.queues.get(queue));
        }
        settings
    }

    /// Renders the configuration as TOML (for `dump_config`), sizes and durations in human units.
    /// The text loads back into an equal `Config`.
    pub fn to_toml_string(&self) -> String {
        // Every field maps to a TOML string, integer, boolean or table with string keys, and
        // `data_dir` is rendered lossily, so serialisation has no way to fail.
        toml::to_string(self).expect("a Config always serialises to TOML")
    }

    /// Checks what serde cannot: queue and alias names, and alias destinations.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let tables = self
            .queues
            .iter()
            .map(|(name, table)| (format!("[queues.{name:?}]"), Some(name), table));
        for (table, name, overrides) in
            tables.chain([("[default]".to_owned(), None, &self.default)])
        {
            if let Some(name) = name {
                check_name(&table, "queue", name)?;
            }
            if let Some(target) = &overrides.expire_to_queue {
                check_name(&table, "expire_to_queue", target)?;
            }
        }
        if !self.server.text_listen.is_empty() && self.server.text_listen_addr().is_none() {
            return Err(format!(
                "[server]: invalid text_listen {:?}: write an address such as \"127.0.0.1:2222\", or \"\" to disable",
                self.server.text_listen
            ));
        }
        self.check_admin_listen()?;
        self.check_login_durations()?;
        if self.server.max_buffered_request_bytes < self.server.max_request_size {
            return Err(format!(
                "[server]: max_buffered_request_bytes ({}) is smaller than max_request_size ({}): \
                 a set of the largest accepted size could never be received",
                self.server.max_buffered_request_bytes, self.server.max_request_size
            ));
        }
        if crate::status::Status::parse(&self.server.default_status).is_none() {
            return Err(format!(
                "[server]: invalid default_status {:?}: write \"up\", \"writeavoid\", \"readonly\" or \"quiescent\"",
                self.server.default_status
            ));
        }
        for (name, alias) in &self.aliases {
            self.check_alias(&format!("[aliases.{name:?}]"), name, alias)?;
        }
        for (name, user) in &self.users {
            crate::access::check_user(name, user)?;
        }
        Ok(())
    }

    /// `admin_listen` is an address or `""`, and never the memcache port: the admin port must
    /// not be served on the data port.
    fn check_admin_listen(&self) -> Result<(), String> {
        let admin = &self.server.admin_listen;
        match self.server.admin_listen_addr() {
            None if admin.is_empty() => Ok(()),
            None => Err(format!(
                "[server]: invalid admin_listen {admin:?}: write an address such as \"127.0.0.1:2223\", or \"\" to disable"
            )),
            Some(address) if address == self.server.listen && address.port() != 0 => Err(format!(
                "[server]: admin_listen {admin:?} is the memcache listen address; give the admin port its own"
            )),
            Some(_) => Ok(()),
        }
    }

    /// The login durations fit in the clock's range (a lockout of a year is already for good),
    /// and the window and the lockout are not zero: either would switch the per-address limit
    /// off while it still looked configured.
    fn check_login_durations(&self) -> Result<(), String> {
        let login = &self.server.login;
        for (key, value) in [
            ("failure_delay", login.failure_delay),
            ("failure_window", login.failure_window),
            ("lockout", login.lockout),
        ] {
            if value > MAX_LOGIN_DURATION {
                return Err(format!(
                    "[server.login]: {key} is longer than a year ({})",
                    humantime::format_duration(value)
                ));
            }
        }
        for (key, value) in [
            ("failure_window", login.failure_window),
            ("lockout", login.lockout),
        ] {
            if value.is_zero() {
                return Err(format!("[server.login]: {key} must be longer than 0"));
            }
        }
        Ok(())
    }

    /// An alias needs a valid name and at least one destination, and each destination must be a
    /// queue, not an alias (itself included): aliases do not chain.
    fn check_alias(&self, table: &str, name: &str, alias: &AliasConfig) -> Result<(), String> {
        check_name(table, "alias", name)?;
        if alias.destination_queues.is_empty() {
            return Err(format!("{table}: destination_queues is empty"));
        }
        for destination in &alias.destination_queues {
            check_name(table, "destination queue", destination)?;
            if destination == name {
                return Err(format!("{table}: the alias names itself as a destination"));
            }
            if self.aliases.contains_key(destination) {
                return Err(format!(
                    "{table}: destination {destination:?} is an alias, not a queue"
                ));
            }
        }
        Ok(())
    }
}

/// Rejects a name that a client could not use as a queue name either; `table` locates it.
fn check_name(table: &str, what: &str, name: &str) -> Result<(), String> {
    if lanner_proto::validate_queue_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{table}: invalid {what} name {name:?}: a name is 1 to 200 bytes without '/', '~', \
             '.', spaces or control characters, and does not start with '+'"
        ))
    }
}
