//! `reload` and SIGHUP: read the configuration file again and apply its queue and alias
//! settings to the running server. Server settings (`[server]`) and users (`[users]`) need a
//! restart, as in Kestrel; a change to them is logged and otherwise ignored. `sync` and the journal segment size of
//! existing queues stay as they were opened; every other queue setting applies at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::{info, warn};

use crate::config::Config;
use crate::shared::Shared;

/// Reloads the configuration file. On an error nothing changes.
pub fn reload(shared: &Shared) -> Result<(), String> {
    let Some(path) = &shared.config_path else {
        info!("reload: the server runs on its built-in defaults; nothing to reload");
        return Ok(());
    };
    let mut new = Config::load(path).map_err(|error| error.to_string())?;
    if new.server != shared.server {
        warn!(
            "reload: [server] settings changed in {}; they apply after a restart",
            path.display()
        );
    }
    new.server = shared.server.clone();
    let old = shared.config.load_full();
    if new.users != old.users {
        warn!(
            "reload: [users] changed in {}; they apply after a restart",
            path.display()
        );
        new.users.clone_from(&old.users);
    }
    log_changes(&old, &new);
    for queue in shared.queues.queues() {
        queue.set_limits(new.queue_settings(queue.name()).limits());
    }
    shared
        .aliases
        .store(Arc::new(shared.aliases.load().reloaded(&new.aliases)));
    shared.config.store(Arc::new(new));
    info!(file = %path.display(), "configuration reloaded");
    Ok(())
}

/// Logs each queue or alias table that the reload adds, removes or changes.
fn log_changes(old: &Config, new: &Config) {
    if old.default != new.default {
        info!(old = ?old.default, new = ?new.default, "reload: [default] changed");
    }
    let queue_names: BTreeSet<&String> = old.queues.keys().chain(new.queues.keys()).collect();
    for name in queue_names {
        let (before, after) = (old.queues.get(name), new.queues.get(name));
        if before != after {
            info!(queue = %name, old = ?before, new = ?after, "reload: queue settings changed");
        }
    }
    let alias_names: BTreeSet<&String> = old.aliases.keys().chain(new.aliases.keys()).collect();
    for name in alias_names {
        let (before, after) = (old.aliases.get(name), new.aliases.get(name));
        if before != after {
            info!(alias = %name, old = ?before, new = ?after, "reload: alias changed");
        }
    }
}
