//! Aliases (spec c.2): a `set` to an alias adds the item to each destination queue; reads from
//! an alias always miss, and `delete`/`flush` of an alias do nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::config::AliasConfig;
use crate::stats::{add, bump, read};

/// What went through an alias; kept across reloads for an alias that stays.
#[derive(Debug, Default)]
struct Counters {
    put_items: AtomicU64,
    put_bytes: AtomicU64,
}

/// One alias with its counters.
#[derive(Debug)]
pub struct Alias {
    pub destinations: Vec<String>,
    counters: Arc<Counters>,
}

impl Alias {
    /// Counts one item of `len` bytes put through the alias.
    pub fn count_put(&self, len: usize) {
        bump(&self.counters.put_items);
        add(&self.counters.put_bytes, len as u64);
    }

    /// The alias's stats, named and ordered as Kestrel's.
    pub fn figures(&self) -> [(&'static str, String); 3] {
        [
            ("put_items", read(&self.counters.put_items).to_string()),
            ("put_bytes", read(&self.counters.put_bytes).to_string()),
            ("children", self.destinations.join(",")),
        ]
    }
}

/// The configured aliases, by name.
#[derive(Debug, Default)]
pub struct Aliases(BTreeMap<String, Alias>);

impl Aliases {
    /// Aliases as configured.
    pub fn new(config: &BTreeMap<String, AliasConfig>) -> Self {
        Aliases::default().reloaded(config)
    }

    /// The aliases of a new configuration; those that keep their name keep their counters.
    pub fn reloaded(&self, config: &BTreeMap<String, AliasConfig>) -> Self {
        let aliases = config.iter().map(|(name, alias)| {
            let counters = self
                .0
                .get(name)
                .map(|old| Arc::clone(&old.counters))
                .unwrap_or_default();
            (
                name.clone(),
                Alias {
                    destinations: alias.destination_queues.clone(),
                    counters,
                },
            )
        });
        Self(aliases.collect())
    }

    /// The alias named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Alias> {
        self.0.get(name)
    }

    /// Every alias, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Alias)> {
        self.0.iter()
    }
}
