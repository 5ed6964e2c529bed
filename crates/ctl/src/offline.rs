//! `lannerctl journal ...`: offline work on a data directory.
//!
//! `dump` and `verify` only read: they open every file read-only and take no lock, so they can
//! run beside a server (whose newest segment may then end in a record being written, which
//! verify reports as a torn tail, not as damage). `compact` rewrites files, so it takes the
//! data-directory lock and refuses while a server holds it.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use lanner_journal::inspect::{self, LiveState, SegmentFile, SegmentScan};
use lanner_journal::{
    FsStorage, Journal, JournalError, JournalOptions, Record, list_queues, lock_dir,
};
use serde_json::{Value, json};

use crate::cli::JournalCommand;
use crate::format;

/// Payload bytes shown per record by `dump`.
const PREVIEW_BYTES: usize = 40;

pub fn run(dir: &Path, command: JournalCommand, json: bool) -> anyhow::Result<ExitCode> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    match command {
        JournalCommand::Dump { queue } => dump(dir, &queue, json),
        JournalCommand::Verify { queue } => verify(dir, queue, json),
        JournalCommand::Compact { queue } => compact(dir, &queue, json),
    }
}

/// The segment files of `queue`; an error if it has none.
fn files_of(dir: &Path, queue: &str) -> anyhow::Result<Vec<SegmentFile>> {
    let files = inspect::segment_files(dir, queue)?;
    if files.is_empty() {
        bail!("no journal of queue {queue:?} in {}", dir.display());
    }
    Ok(files)
}

/// A progress bar over `total` bytes on stderr; hidden unless stderr is a terminal.
fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

fn file_name(file: &SegmentFile) -> String {
    file.path.file_name().map_or_else(
        || file.path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The kind of a record as dump shows it, and its open-read id if it has one.
fn kind(record: &Record) -> (&'static str, Option<u32>) {
    match record {
        Record::Add { .. } => ("add", None),
        Record::Remove => ("remove", None),
        Record::RemoveTentative { xid } => ("remove_tentative", Some(*xid)),
        Record::Unremove { xid } => ("unremove", Some(*xid)),
        Record::ConfirmRemove { xid } => ("confirm_remove", Some(*xid)),
    }
}

/// One record of `dump`; `width` is that of the longest file name, to align the columns.
fn dump_line(
    file: &str,
    width: usize,
    offset: u64,
    len: u64,
    record: &Record,
    json: bool,
) -> String {
    let (kind, xid) = kind(record);
    if json {
        let mut value = json!({"file": file, "offset": offset, "kind": kind, "length": len});
        if let Some(xid) = xid {
            value["xid"] = xid.into();
        }
        if let Record::Add {
            add_time_ms,
            expiry_ms,
            data,
        } = record
        {
            value["add_time_ms"] = (*add_time_ms).into();
            value["expiry_ms"] = (*expiry_ms).into();
            value["data_length"] = data.len().into();
            value["preview"] = format::preview(data, PREVIEW_BYTES).into();
        }
        return value.to_string();
    }
    let detail = match record {
        Record::Add {
            expiry_ms, data, ..
        } => {
            let expiry = if *expiry_ms == 0 {
                String::new()
            } else {
                format!(" expiry_ms={expiry_ms}")
            };
            format!(
                "{} bytes{expiry} {:?}",
                data.len(),
                format::preview(data, PREVIEW_BYTES)
            )
        }
        _ => xid.map(|xid| format!("xid={xid}")).unwrap_or_default(),
    };
    format!("{file:<width$} {offset:>10} {kind:<16} {len:>8} {detail}")
}

fn dump(dir: &Path, queue: &str, json: bool) -> anyhow::Result<ExitCode> {
    let files = files_of(dir, queue)?;
    let mut out = std::io::stdout().lock();
    let width = files
        .iter()
        .map(|file| file_name(file).len())
        .max()
        .unwrap_or(0);
    if !json {
        writeln!(
            out,
            "{:<width$} {:>10} {:<16} {:>8} detail",
            "file", "offset", "kind", "length"
        )?;
    }
    let mut damaged = false;
    for (index, file) in files.iter().enumerate() {
        let newest = index + 1 == files.len();
        let name = file_name(file);
        let mut failed_write = None;
        let scan = inspect::scan_segment(file, u64::MAX, &mut |offset, len, record| {
            if failed_write.is_none()
                && let Err(error) = writeln!(
                    out,
                    "{}",
                    dump_line(&name, width, offset, len, record, json)
                )
            {
                failed_write = Some(error);
            }
        })?;
        if let Some(error) = failed_write {
            return Err(error).context("cannot write the dump");
        }
        if let Some(damage) = scan.damage.as_ref().filter(|d| !(newest && d.zero_fill)) {
            damaged = true;
            if json {
                let value = json!({"file": name, "offset": damage.offset, "kind": "damage", "reason": damage.reason});
                writeln!(out, "{value}")?;
            } else {
                writeln!(
                    out,
                    "{name:<width$} {:>10} DAMAGE: {}",
                    damage.offset, damage.reason
                )?;
            }
        }
    }
    out.flush()?;
    Ok(if damaged {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What verify found in one segment file.
struct FileReport {
    file: SegmentFile,
    scan: SegmentScan,
}

/// What verify found for one queue.
struct QueueReport {
    queue: String,
    files: Vec<FileReport>,
    items: usize,
    open_reads: usize,
}

/// A damaged spot and whether the server would refuse to start on it.
struct Finding {
    file: String,
    offset: u64,
    reason: String,
    fatal: bool,
    note: &'static str,
}

impl QueueReport {
    fn records(&self) -> u64 {
        self.files.iter().map(|file| file.scan.records).sum()
    }

    fn bytes(&self) -> u64 {
        self.files.iter().map(|file| file.file.len).sum()
    }

    /// Damage as the server would judge it: in a segment superseded by a later snapshot it is
    /// ignored (replay deletes that file), at the end of the newest segment with nothing intact
    /// after it it is a torn tail (truncated on start), or no damage at all when only zeros
    /// follow (a zero fill ahead); anywhere else it stops the server.
    fn findings(&self) -> Vec<Finding> {
        let first_live = self
            .files
            .iter()
            .rposition(|file| file.scan.snapshot == Some(true))
            .unwrap_or(0);
        let newest = self.files.len().saturating_sub(1);
        self.files
            .iter()
            .enumerate()
            .filter_map(|(index, report)| {
                let damage = report.scan.damage.as_ref()?;
                if index == newest && damage.zero_fill {
                    // The clean end of a zero fill ahead, cut off silently on start.
                    return None;
                }
                let (fatal, note) = if index < first_live {
                    (
                        false,
                        "in a segment superseded by a snapshot (ignored by the server)",
                    )
                } else if index == newest && damage.torn_tail {
                    (false, "torn tail (the server repairs it when it starts)")
                } else {
                    (true, "the server refuses to start (unless --salvage)")
                };
                Some(Finding {
                    file: report.file.path.display().to_string(),
                    offset: damage.offset,
                    reason: damage.reason.clone(),
                    fatal,
                    note,
                })
            })
            .collect()
    }
}

fn verify_queue(dir: &Path, queue: &str, bar: &ProgressBar) -> anyhow::Result<QueueReport> {
    let mut state = LiveState::default();
    let mut files = Vec::new();
    for file in files_of(dir, queue)? {
        let start = bar.position();
        let mut records = Vec::new();
        let scan = inspect::scan_segment(&file, u64::MAX, &mut |offset, len, record| {
            records.push(without_payload(record));
            bar.set_position(start + offset + len);
        })
        .with_context(|| format!("cannot read {}", file.path.display()))?;
        if scan.snapshot == Some(true) {
            // A snapshot supersedes everything before it.
            state = LiveState::default();
        }
        for record in &records {
            state.apply(record);
        }
        bar.set_position(start + file.len);
        files.push(FileReport { file, scan });
    }
    Ok(QueueReport {
        queue: queue.to_owned(),
        files,
        items: state.items(),
        open_reads: state.open_reads(),
    })
}

/// The record with an empty payload: verify counts items and need not hold their data.
fn without_payload(record: &Record) -> Record {
    match record {
        Record::Add {
            add_time_ms,
            expiry_ms,
            ..
        } => Record::Add {
            add_time_ms: *add_time_ms,
            expiry_ms: *expiry_ms,
            data: bytes::Bytes::new(),
        },
        other => other.clone(),
    }
}

fn verify(dir: &Path, queue: Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let queues = match queue {
        Some(queue) => vec![queue],
        None => list_queues(&FsStorage, dir)?,
    };
    let mut total = 0;
    for queue in &queues {
        total += files_of(dir, queue)?
            .iter()
            .map(|file| file.len)
            .sum::<u64>();
    }
    let bar = progress(total, "verifying");
    let reports = queues
        .iter()
        .map(|queue| verify_queue(dir, queue, &bar))
        .collect::<anyhow::Result<Vec<_>>>()?;
    bar.finish_and_clear();
    let findings: Vec<(&QueueReport, Vec<Finding>)> = reports
        .iter()
        .map(|report| (report, report.findings()))
        .collect();
    let ok = findings
        .iter()
        .all(|(_, found)| found.iter().all(|f| !f.fatal));
    if json {
        print_verify_json(&findings, ok);
    } else {
        print_verify_text(&findings, ok);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_verify_json(findings: &[(&QueueReport, Vec<Finding>)], ok: bool) {
    let queues: Vec<Value> = findings
        .iter()
        .map(|(report, found)| {
            let damage: Vec<Value> = found
                .iter()
                .map(|f| json!({"file": f.file, "offset": f.offset, "reason": f.reason, "fatal": f.fatal, "note": f.note}))
                .collect();
            json!({
                "queue": report.queue,
                "files": report.files.len(),
                "records": report.records(),
                "bytes": report.bytes(),
                "items": report.items,
                "open_reads": report.open_reads,
                "damage": damage,
            })
        })
        .collect();
    println!("{}", json!({"ok": ok, "queues": queues}));
}

fn print_verify_text(findings: &[(&QueueReport, Vec<Finding>)], ok: bool) {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "queue", "files", "records", "bytes", "items", "open", "state",
    ]);
    for (report, found) in findings {
        let state = if found.iter().any(|f| f.fatal) {
            "DAMAGED"
        } else if found.is_empty() {
            "ok"
        } else {
            "ok (see notes)"
        };
        table.add_row([
            report.queue.clone(),
            report.files.len().to_string(),
            report.records().to_string(),
            format::human_bytes(report.bytes()),
            report.items.to_string(),
            report.open_reads.to_string(),
            state.to_owned(),
        ]);
        for f in found {
            let label = if f.fatal { "damaged" } else { "note" };
            eprintln!(
                "{label}: {} at offset {}: {}; {}",
                f.file, f.offset, f.reason, f.note
            );
        }
    }
    println!("{table}");
    let files: usize = findings.iter().map(|(r, _)| r.files.len()).sum();
    let records: u64 = findings.iter().map(|(r, _)| r.records()).sum();
    let bytes: u64 = findings.iter().map(|(r, _)| r.bytes()).sum();
    let items: usize = findings.iter().map(|(r, _)| r.items).sum();
    println!(
        "{}: {} queue(s), {files} file(s), {records} record(s), {}, {items} live item(s)",
        if ok { "ok" } else { "DAMAGED" },
        findings.len(),
        format::human_bytes(bytes)
    );
}

fn compact(dir: &Path, queue: &str, json: bool) -> anyhow::Result<ExitCode> {
    let before = files_of(dir, queue)?;
    let _lock = match lock_dir(dir) {
        Ok(lock) => lock,
        Err(JournalError::Locked { .. }) => bail!(
            "{} is locked by a running server: stop it before compacting (journals are compacted online automatically)",
            dir.display()
        ),
        Err(error) => return Err(error.into()),
    };
    let before_bytes: u64 = before.iter().map(|file| file.len).sum();
    let bar = progress(before_bytes, "reading");
    let mut state = LiveState::default();
    let mut read = 0;
    let (journal, replay) =
        Journal::open_with(dir, queue, JournalOptions::default(), &mut |record| {
            read += record.encoded_len();
            bar.set_position(read);
            state.apply(&record);
        })
        .with_context(|| format!("cannot replay the journal of {queue}"))?;
    bar.finish_and_clear();
    for cut in &replay.truncations {
        eprintln!(
            "note: truncated a torn tail of {} at offset {} ({} bytes)",
            cut.file.display(),
            cut.offset,
            cut.dropped_bytes
        );
    }
    let (items, open_reads) = (state.items(), state.open_reads());
    let seq = journal.rewrite(state.into_records());
    journal.write_through(seq)?;
    journal.sync_all()?;
    drop(journal);
    let after = inspect::segment_files(dir, queue)?;
    let after_bytes: u64 = after.iter().map(|file| file.len).sum();
    if json {
        let value = json!({
            "queue": queue,
            "files_before": before.len(), "bytes_before": before_bytes,
            "files_after": after.len(), "bytes_after": after_bytes,
            "items": items, "open_reads": open_reads,
        });
        println!("{value}");
    } else {
        println!(
            "compacted {queue}: {} file(s), {} -> {} file(s), {}; {items} item(s), {open_reads} open read(s) kept",
            before.len(),
            format::human_bytes(before_bytes),
            after.len(),
            format::human_bytes(after_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}
