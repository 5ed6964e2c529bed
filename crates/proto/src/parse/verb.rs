//! The command word (spec a.1 item 3, a.3): case-insensitive, one of a fixed set.

/// A recognised command word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    /// A command whose line is followed by a data block.
    Storage(StorageCommand),
    /// A command made of one line.
    Line(LineCommand),
}

/// A memcache storage command: its line carries the data length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StorageCommand {
    /// `set`, the only storage command Kestrel implements.
    Set,
    /// `add`, `replace`, `append`, `prepend`, `cas`: framed like `set`, then refused.
    Unimplemented,
}

/// A one-line command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineCommand {
    Get,
    Monitor,
    Confirm,
    Delete,
    Flush,
    FlushAll,
    FlushExpired,
    FlushAllExpired,
    Stats,
    DumpStats,
    DumpConfig,
    Version,
    Reload,
    Shutdown,
    Quit,
    Status,
}

const VERBS: [(&[u8], Verb); 23] = [
    (b"get", Verb::Line(LineCommand::Get)),
    (b"gets", Verb::Line(LineCommand::Get)),
    (b"set", Verb::Storage(StorageCommand::Set)),
    (b"monitor", Verb::Line(LineCommand::Monitor)),
    (b"confirm", Verb::Line(LineCommand::Confirm)),
    (b"delete", Verb::Line(LineCommand::Delete)),
    (b"flush", Verb::Line(LineCommand::Flush)),
    (b"flush_all", Verb::Line(LineCommand::FlushAll)),
    (b"flush_expired", Verb::Line(LineCommand::FlushExpired)),
    (
        b"flush_all_expired",
        Verb::Line(LineCommand::FlushAllExpired),
    ),
    (b"stats", Verb::Line(LineCommand::Stats)),
    (b"dump_stats", Verb::Line(LineCommand::DumpStats)),
    (b"dump_config", Verb::Line(LineCommand::DumpConfig)),
    (b"version", Verb::Line(LineCommand::Version)),
    (b"reload", Verb::Line(LineCommand::Reload)),
    (b"shutdown", Verb::Line(LineCommand::Shutdown)),
    (b"quit", Verb::Line(LineCommand::Quit)),
    (b"status", Verb::Line(LineCommand::Status)),
    (b"add", Verb::Storage(StorageCommand::Unimplemented)),
    (b"replace", Verb::Storage(StorageCommand::Unimplemented)),
    (b"append", Verb::Storage(StorageCommand::Unimplemented)),
    (b"prepend", Verb::Storage(StorageCommand::Unimplemented)),
    (b"cas", Verb::Storage(StorageCommand::Unimplemented)),
];

impl Verb {
    /// Recognises a command word, ignoring ASCII case. Kestrel lower-cases ISO-8859-1 text, and
    /// no non-ASCII Latin-1 letter lower-cases to an ASCII one, so ASCII folding is exact.
    pub(super) fn from_word(word: &[u8]) -> Option<Self> {
        VERBS
            .iter()
            .find(|(name, _)| word.eq_ignore_ascii_case(name))
            .map(|&(_, verb)| verb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_are_case_insensitive() {
        for word in ["get", "GET", "Get", "gEt"] {
            assert_eq!(
                Verb::from_word(word.as_bytes()),
                Some(Verb::Line(LineCommand::Get))
            );
        }
        assert_eq!(
            Verb::from_word(b"SET"),
            Some(Verb::Storage(StorageCommand::Set))
        );
    }

    #[test]
    fn gets_is_get() {
        assert_eq!(Verb::from_word(b"gets"), Some(Verb::Line(LineCommand::Get)));
    }

    #[test]
    fn unimplemented_storage_commands_are_recognised_as_storage() {
        for word in ["add", "replace", "append", "prepend", "cas", "CAS"] {
            let verb = Verb::from_word(word.as_bytes());
            assert_eq!(
                verb,
                Some(Verb::Storage(StorageCommand::Unimplemented)),
                "{word}"
            );
        }
    }

    #[test]
    fn unknown_words_are_not_commands() {
        for word in ["", "incr", "gett", "ge", "get ", "peek", "\u{c9}"] {
            assert_eq!(Verb::from_word(word.as_bytes()), None, "{word:?}");
        }
    }
}
