//! Human units in the configuration file, and the serde glue that reads and writes them.
//!
//! Sizes are a TOML integer (bytes) or a string: a number with an optional unit, where `KiB`,
//! `MiB`, `GiB`, `TiB`, `PiB`, `EiB` are powers of 1024 and `KB`, `MB`, `GB`, ... (and a bare `K`,
//! `M`, ...) are powers of 1000, as IEC and SI define them; `B` or no unit means bytes. Parsing
//! is the `parse-size` crate's: case-insensitive, exact integer arithmetic, overflow rejected.
//! Every size must be greater than zero. Durations use `humantime` (`"100ms"`, `"5s"`, `"1m 30s"`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serializer};

use super::SyncPolicy;

/// Units a size is rendered in, largest first, so a size comes back in the unit that gives the
/// smallest number: `"64KiB"` and `"64MB"` render as written.
const SIZE_UNITS: [(&str, u64); 12] = [
    ("EiB", 1 << 60),
    ("EB", 1_000_000_000_000_000_000),
    ("PiB", 1 << 50),
    ("PB", 1_000_000_000_000_000),
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
];

/// Parses a size written as a string, e.g. `"64KiB"`, into bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    match parse_size::parse_size(text) {
        Ok(bytes) => nonzero(bytes, format_args!("{text:?}")),
        Err(error) => Err(format!(
            "invalid size {text:?} ({error}); write a number of bytes or a number with a unit, \
             such as \"64KiB\", \"16MiB\" or \"64KB\""
        )),
    }
}

/// Accepts `bytes` unless it is zero; `written` is how the value appeared in the file.
fn nonzero(bytes: u64, written: fmt::Arguments<'_>) -> Result<u64, String> {
    if bytes == 0 {
        Err(format!("size {written} must be greater than zero"))
    } else {
        Ok(bytes)
    }
}

/// Renders `bytes` in the largest unit that divides it exactly (`"64KiB"`), else as `"1001B"`.
fn format_size(bytes: u64) -> String {
    SIZE_UNITS
        .iter()
        .find(|&&(_, unit)| bytes >= unit && bytes.is_multiple_of(unit))
        .map_or_else(
            || format!("{bytes}B"),
            |&(name, unit)| format!("{}{name}", bytes / unit),
        )
}

/// Reads a size from a TOML integer or string.
struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a size: a number of bytes, or a string such as \"64KiB\"")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
        let bytes =
            u64::try_from(value).map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))?;
        nonzero(bytes, format_args!("{value}")).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<u64, E> {
        parse_size(value).map_err(E::custom)
    }
}

/// `#[serde(with)]` for a size in bytes.
pub mod size {
    use super::{Deserializer, Serializer, SizeVisitor, format_size};

    /// Writes the size in human units.
    pub fn serialize<S: Serializer>(bytes: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_size(*bytes))
    }

    /// Reads a size from an integer or a string with a unit.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// `#[serde(with)]` for an optional size; pair it with `default` so a missing key is `None`.
pub mod size_opt {
    use super::{Deserializer, Serializer, size};

    /// Writes a present size in human units.
    pub fn serialize<S: Serializer>(bytes: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => size::serialize(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a size that is present.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        size::deserialize(deserializer).map(Some)
    }
}

/// `#[serde(with)]` for a duration in humantime notation.
pub mod duration {
    use super::{Deserialize, Deserializer, Duration, Serializer, de, parse_duration};

    /// Writes the duration as e.g. `"1m 30s"`.
    pub fn serialize<S: Serializer>(period: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*period))
    }

    /// Reads a duration such as `"100ms"`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map_err(de::Error::custom)
    }
}

/// `#[serde(with)]` for an optional duration; pair it with `default` so a missing key is `None`.
pub mod duration_opt {
    use super::{Deserializer, Duration, Serializer, duration};

    /// Writes a present duration in humantime notation.
    pub fn serialize<S: Serializer>(
        period: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match period {
            Some(period) => duration::serialize(period, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a duration that is present.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(deserializer).map(Some)
    }
}

/// `#[serde(with)]` for an optional value written as TOML writes it (booleans, counts, names);
/// pair it with `default` so a missing key is `None`.
pub mod plain {
    use serde::Serialize;

    use super::{Deserialize, Deserializer, Serializer};

    /// Writes a present value as it is.
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    /// Reads a value that is present.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(deserializer).map(Some)
    }
}

/// `#[serde(deserialize_with)]` for a count that must be at least 1.
pub mod at_least_one {
    use super::{Deserialize, Deserializer, de};

    /// Reads a `u32` and rejects zero.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        match u32::deserialize(deserializer)? {
            0 => Err(de::Error::custom("must be at least 1")),
            count => Ok(count),
        }
    }
}

/// `#[serde(serialize_with)]` for a path that may not be UTF-8 (e.g. given on the command line).
pub mod lossy_path {
    use super::{Path, Serializer};

    /// Writes the path, replacing bytes that are not UTF-8, so rendering never fails.
    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&path.to_string_lossy())
    }
}

/// `#[serde(serialize_with)]` for an optional path that may not be UTF-8.
pub mod lossy_path_opt {
    use super::{Path, PathBuf, Serializer, lossy_path};

    /// Writes a present path lossily (a missing one is skipped by `skip_serializing_if`).
    pub fn serialize<S: Serializer>(
        path: &Option<PathBuf>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match path {
            Some(path) => lossy_path::serialize(Path::new(path), serializer),
            None => serializer.serialize_none(),
        }
    }
}

/// Parses a humantime duration, with a hint in the error.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| {
        format!("invalid duration {text:?} ({error}); write e.g. \"100ms\", \"5s\" or \"1m\"")
    })
}

/// Renders a sync policy: `always`, `never`, or the interval in humantime notation (`100ms`).
fn format_sync(policy: SyncPolicy) -> String {
    match policy {
        SyncPolicy::Always => "always".to_owned(),
        SyncPolicy::Never => "never".to_owned(),
        SyncPolicy::Interval(period) => humantime::format_duration(period).to_string(),
    }
}

/// Parses `always`, `never` or a non-zero duration; the error explains the choices.
fn parse_sync(text: &str) -> Result<SyncPolicy, String> {
    let hint = "write \"always\", \"never\" or an fsync interval such as \"100ms\"";
    match text {
        "always" => Ok(SyncPolicy::Always),
        "never" => Ok(SyncPolicy::Never),
        _ => match humantime::parse_duration(text) {
            Ok(Duration::ZERO) => Err(format!("sync interval {text:?} is zero; {hint}")),
            Ok(period) => Ok(SyncPolicy::Interval(period)),
            Err(error) => Err(format!("invalid sync policy {text:?} ({error}); {hint}")),
        },
    }
}

/// `#[serde(with)]` for an optional sync policy; pair it with `default` so a missing key is `None`.
pub mod sync_opt {
    use super::{Deserialize, Deserializer, Serializer, SyncPolicy, de, format_sync, parse_sync};

    /// Writes a present policy as `"always"`, `"never"` or a duration.
    pub fn serialize<S: Serializer>(
        policy: &Option<SyncPolicy>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match policy {
            Some(policy) => serializer.serialize_str(&format_sync(*policy)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a policy that is present.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SyncPolicy>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_sync(&text).map(Some).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        let cases = [
            ("512B", 512),
            ("65536", 65536),
            ("64KiB", 64 << 10),
            ("64 KiB", 64 << 10),
            ("64kib", 64 << 10),
            ("64MiB", 64 << 20),
            ("1GiB", 1 << 30),
            ("2TiB", 2 << 40),
            ("64KB", 64_000),
            ("64MB", 64_000_000),
            ("1.5KiB", 1536),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_text() {
        for text in [
            "",
            "KiB",
            "64XB",
            "64KiBx",
            "-1",
            "0",
            "0KiB",
            "0.1B",
            "20000000000GiB",
        ] {
            let error = parse_size(text).unwrap_err();
            assert!(error.contains(&format!("{text:?}")), "{text}: {error}");
        }
    }

    #[test]
    fn sizes_render_in_the_largest_exact_unit() {
        let cases = [
            (512, "512B"),
            (1001, "1001B"),
            (1536, "1536B"),
            (64 << 10, "64KiB"),
            (64_000, "64KB"),
            (64_000_000, "64MB"),
            (1_024_000, "1000KiB"),
            (16 << 20, "16MiB"),
            (1 << 30, "1GiB"),
            (3 << 60, "3EiB"),
            (u64::MAX, "18446744073709551615B"),
        ];
        for (bytes, text) in cases {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes), "{text} reads back");
        }
    }

    #[test]
    fn size_units_are_in_descending_order() {
        assert!(SIZE_UNITS.windows(2).all(|pair| pair[0].1 > pair[1].1));
    }

    #[test]
    fn durations_parse_and_reject_missing_units() {
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        for text in ["5", "", "soon", "-1s"] {
            let error = parse_duration(text).unwrap_err();
            assert!(error.contains(&format!("{text:?}")), "{text}: {error}");
        }
    }

    #[test]
    fn sync_policies_parse_and_display() {
        let cases = [
            ("always", SyncPolicy::Always),
            ("never", SyncPolicy::Never),
            ("100ms", SyncPolicy::Interval(Duration::from_millis(100))),
            ("1m 30s", SyncPolicy::Interval(Duration::from_secs(90))),
        ];
        for (text, policy) in cases {
            assert_eq!(parse_sync(text), Ok(policy));
            assert_eq!(format_sync(policy), text);
        }
    }

    #[test]
    fn bad_sync_policies_explain_the_choices() {
        for text in ["0ms", "0s", "sometimes", "Always", "5"] {
            let error = parse_sync(text).unwrap_err();
            assert!(error.contains(&format!("{text:?}")), "{text}: {error}");
            assert!(error.contains("\"always\", \"never\""), "{text}: {error}");
        }
    }
}
