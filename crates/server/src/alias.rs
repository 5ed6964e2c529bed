//! Aliases (spec c.2): a `set` to an alias adds the item to each destination queue; reads from
//! an alias always miss, and `delete`/`flush` of an alias do nothing.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use crate::config::AliasConfig;
use crate::stats::{add, bump, read};

/// One alias with its counters.
#[derive(Debug)]
pub struct Alias {
    pub destinations: Vec<String>,
    put_items: AtomicU64,
    put_bytes: AtomicU64,
}

impl Alias {
    /// Counts one item of `len` bytes put through the alias.
    pub fn count_put(&self, len: usize) {
        bump(&self.put_items);
        add(&self.put_bytes, len as u64);
    }

    /// The alias's stats, named and ordered as Kestrel's.
    pub fn figures(&self) -> [(&'static str, String); 3] {
        [
            ("put_items", read(&self.put_items).to_string()),
            ("put_bytes", read(&self.put_bytes).to_string()),
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
        let aliases = config.iter().map(|(name, alias)| {
            let counters = Alias {
                destinations: alias.destination_queues.clone(),
                put_items: AtomicU64::new(0),
                put_bytes: AtomicU64::new(0),
            };
            (name.clone(), counters)
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
