#!/usr/bin/env python3
"""Renders docs/benchmarks.md from the raw results of scripts/bench.sh.

Reads OUT_DIR/results.jsonl (one lanner-bench JSON line per run, tagged with "rep"),
OUT_DIR/machine.json, OUT_DIR/commands.txt and OUT_DIR/duration.json, takes the median of
every figure over the repetitions, checks the issue's targets, and writes Markdown. Notes for
targets come from scripts/bench_notes.json ({target id: markdown}). Standard library only.
"""

import argparse
import json
import os
import re
import statistics
from collections import defaultdict

SERVERS = ["lanner", "redis", "memcached"]


def load(out_dir):
    runs = []
    with open(os.path.join(out_dir, "results.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    with open(os.path.join(out_dir, "machine.json")) as f:
        machine = json.load(f)
    commands = []
    path = os.path.join(out_dir, "commands.txt")
    if os.path.exists(path):
        with open(path) as f:
            commands = [line.rstrip("\n") for line in f if line.strip()]
    duration = {}
    path = os.path.join(out_dir, "duration.json")
    if os.path.exists(path):
        with open(path) as f:
            duration = json.load(f)
    return runs, machine, commands, duration


class Results:
    def __init__(self, runs):
        self.by = defaultdict(list)
        for run in runs:
            self.by[(run["label"], run["server"])].append(run)

    def runs(self, label, server):
        return self.by.get((label, server), [])

    def values(self, label, server, key):
        return [r[key] for r in self.runs(label, server) if isinstance(r.get(key), (int, float))]

    def median(self, label, server, key):
        values = self.values(label, server, key)
        return statistics.median(values) if values else None

    def labels(self):
        seen = []
        for label, _ in self.by:
            if label not in seen:
                seen.append(label)
        return seen


def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.{digits}f}"
    return f"{int(value):,}"


def mib(kib):
    return None if kib is None else kib / 1024.0


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Targets:
    def __init__(self, results, notes):
        self.r = results
        self.notes = notes
        self.rows = []
        self.failed = []

    def add(self, tid, target, measured, goal, met):
        status = "–" if met is None else ("**met**" if met else "**not met**")
        self.rows.append((tid, target, measured, goal, status))
        if met is False:
            self.failed.append(tid)

    def rate_ratio(self, tid, label, peer, goal, what="rate"):
        lanner = self.r.median(label, "lanner", "msgs_per_s")
        other = self.r.median(label, peer, "msgs_per_s")
        value = ratio(lanner, other)
        measured = (
            f"{fmt(value, 3)}x ({fmt(lanner)} vs {fmt(other)} msg/s)" if value is not None else "not run"
        )
        self.add(tid, f"{label}: lanner {what} / {peer}", measured, f"≥ {goal}x",
                 None if value is None else value >= goal)


def note_status(tid, targets):
    """How a note's heading marks its target: nothing when missed, met, or no target at all."""
    if tid in targets.failed:
        return ""
    statuses = {status for row_tid, *_, status in targets.rows if row_tid == tid}
    return " (met)" if "**met**" in statuses else " (no target)"


def check_targets(r, notes, machine):
    t = Targets(r, notes)
    t.rate_ratio("produce_redis", "produce 8x16", "redis", 2.5)
    t.rate_ratio("produce_memcached", "produce 8x16", "memcached", 0.8)
    t.rate_ratio("consume_redis", "consume 8x16", "redis", 2.5)
    t.rate_ratio("mixed_rate", "mixed 4+4", "redis", 2.0, "consumed rate")
    lp99, rp99 = r.median("mixed 4+4", "lanner", "p99_us"), r.median("mixed 4+4", "redis", "p99_us")
    t.add("mixed_p99", "mixed 4+4: end-to-end p99, lanner ≤ redis",
          f"{fmt(lp99)} us vs {fmt(rp99)} us", "≤ Redis",
          None if lp99 is None or rp99 is None else lp99 <= rp99)
    pp99l, pp99r = r.median("mixed 4+4 paced", "lanner", "p99_us"), r.median("mixed 4+4 paced", "redis", "p99_us")
    if pp99l is not None:
        t.add("paced_p99", f"mixed 4+4 at {machine.get('paced_rate')} msg/s offered: end-to-end p99 (context)",
              f"{fmt(pp99l)} us vs {fmt(pp99r)} us", "(no target)", None)
    t.rate_ratio("reliable", "reliable 8x1", "redis", 2.0)
    for label in ["produce 1x1", "consume 1x1"]:
        t.rate_ratio("single_rate", label, "redis", 1.0)
        lp50, rp50 = r.median(label, "lanner", "p50_us"), r.median(label, "redis", "p50_us")
        diff = None if lp50 is None or rp50 is None else lp50 - rp50
        t.add("single_p50", f"{label}: p50 within 10 us of Redis",
              f"{fmt(lp50)} us vs {fmt(rp50)} us ({'+' if (diff or 0) >= 0 else ''}{fmt(diff)} us)",
              "≤ +10 us", None if diff is None else diff <= 10)
    t.rate_ratio("always_rate", "sync-always 64x1", "redis", 3.0)
    verify = r.runs("sync-always verify", "lanner")
    if verify:
        lost = sum(run.get("lost", 0) for run in verify)
        acked = sum(run.get("received", 0) - run.get("unacked_delivered", 0) for run in verify) + lost
        t.add("always_verify", "sync = always: every acknowledged message present after SIGKILL",
              f"{lost} lost of {fmt(acked)} acknowledged ({len(verify)} runs)", "0 lost",
              lost == 0 and all(run.get("ok") for run in verify))
    peak = mib(r.median("1M x 1KiB", "lanner", "peak_rss_kib"))
    note = "" if machine.get("max_memory") == "1" else " (this build has no max_memory_size: run without it)"
    t.add("memory", f"1,000,000 x 1 KiB queued: lanner peak RSS{note}",
          f"{fmt(peak)} MiB", "≤ 32 MiB", None if peak is None else peak <= 32)
    ready = r.median("restart 1M x 1KiB", "lanner", "ready_ms")
    t.add("restart", "restart after SIGKILL with 1,000,000 x 1 KiB queued: spawn to head item served",
          f"{fmt(ready)} ms", "≤ 500 ms", None if ready is None else ready <= 500)
    growth = mib(r.median("fanin 8x16", "lanner", "rss_growth_kib"))
    t.add("fanin_rss", f"{machine.get('idle')} idle connections: lanner RSS growth",
          f"{fmt(growth)} MiB", "≤ 40 MiB", None if growth is None else growth <= 40)
    for key, what in [("produce_ratio", "produce"), ("consume_ratio", "consume")]:
        value = r.median("fanin 8x16", "lanner", key)
        t.add("fanin_rate", f"{machine.get('idle')} idle connections: active {what} rate vs without them",
              f"{fmt(value, 3)}x", "≥ 0.9x", None if value is None else value >= 0.9)
    return t


def scenario_table(r):
    lines = [
        "| run | server | msg/s (median) | min – max | MB/s | p50 us | p99 us | p99.9 us | server peak RSS MiB | delivery (all reps) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label in r.labels():
        for server in SERVERS:
            runs = r.runs(label, server)
            if not runs:
                continue
            rates = r.values(label, server, "msgs_per_s")
            delivery = "–"
            if any("lost" in run for run in runs):
                lost = sum(run.get("lost", 0) for run in runs)
                dup = sum(run.get("duplicated", 0) for run in runs)
                bad = sum(run.get("corrupt", 0) + run.get("unexpected", 0) for run in runs)
                delivery = f"{lost} lost, {dup} dup" + (f", {bad} bad" if bad else "")
            if not all(run.get("ok") for run in runs):
                delivery += " **FAILED**"
            lines.append(
                f"| {label} | {server} | {fmt(r.median(label, server, 'msgs_per_s'))} | "
                f"{fmt(min(rates) if rates else None)} – {fmt(max(rates) if rates else None)} | "
                f"{fmt(r.median(label, server, 'mb_per_s'))} | {fmt(r.median(label, server, 'p50_us'))} | "
                f"{fmt(r.median(label, server, 'p99_us'))} | {fmt(r.median(label, server, 'p999_us'))} | "
                f"{fmt(mib(r.median(label, server, 'peak_rss_kib')))} | {delivery} |"
            )
    return "\n".join(lines)


def cpu_table(r):
    lines = ["| run | " + " | ".join(f"{s} server us/msg | {s} client us/msg" for s in SERVERS) + " |",
             "|---|" + "---:|" * (2 * len(SERVERS))]
    for label in r.labels():
        cells = []
        any_value = False
        for server in SERVERS:
            srv = r.median(label, server, "server_cpu_us_per_msg")
            cli = r.median(label, server, "client_cpu_us_per_msg")
            any_value |= srv is not None
            cells += [fmt(srv), fmt(cli)]
        if any_value:
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def extra_tables(r):
    out = []
    rows = []
    for label in ["mixed 4+4", "mixed 4+4 paced"]:
        for server in SERVERS:
            if not r.runs(label, server):
                continue
            rows.append(
                f"| {label} | {server} | {fmt(r.median(label, server, 'produced_per_s'))} | "
                f"{fmt(r.median(label, server, 'msgs_per_s'))} | {fmt(r.median(label, server, 'backlog_at_end'))} | "
                f"{fmt(r.median(label, server, 'p50_us'))} | {fmt(r.median(label, server, 'p99_us'))} | "
                f"{fmt(r.median(label, server, 'p999_us'))} | {fmt(r.median(label, server, 'put_p99_us'))} |"
            )
    if rows:
        out += ["### Mixed: producers and blocking consumers at once", "",
                "| run | server | produced/s | consumed/s | backlog at end | e2e p50 us | e2e p99 us | e2e p99.9 us | put p99 us |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|", *rows, ""]
    rows = []
    for server in SERVERS:
        label = "fanin 8x16"
        if not r.runs(label, server):
            continue
        rows.append(
            f"| {server} | {fmt(r.median(label, server, 'baseline_msgs_per_s'))} | {fmt(r.median(label, server, 'msgs_per_s'))} | "
            f"{fmt(r.median(label, server, 'produce_ratio'), 3)} | {fmt(r.median(label, server, 'baseline_consume_per_s'))} | "
            f"{fmt(r.median(label, server, 'consume_per_s'))} | {fmt(r.median(label, server, 'consume_ratio'), 3)} | "
            f"{fmt(mib(r.median(label, server, 'rss_before_idle_kib')))} | {fmt(mib(r.median(label, server, 'rss_with_idle_kib')))} | "
            f"{fmt(mib(r.median(label, server, 'rss_growth_kib')))} | {fmt(r.median(label, server, 'idle_open_seconds'), 2)} |"
        )
    if rows:
        out += ["### Fan-in: idle connections next to an active load", "",
                "| server | produce/s alone | produce/s with idle | ratio | consume/s alone | consume/s with idle | ratio | RSS before MiB | RSS with idle MiB | growth MiB | s to open them |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
                "Each column is the median over the repetitions on its own. A *ratio* is the median of each "
                "repetition's own with-idle / alone ratio (the two loads of one repetition ran back to back on "
                "one server process), so it need not equal the quotient of the two rate medians beside it when "
                "the machine's speed changed between repetitions.", ""]
    rows = []
    for server in SERVERS:
        if not r.runs("1M x 1KiB", server):
            continue
        rows.append(
            f"| {server} | {fmt(r.median('1M x 1KiB', server, 'msgs_per_s'))} | "
            f"{fmt(mib(r.median('1M x 1KiB', server, 'peak_rss_kib')))} | {fmt(mib(r.median('1M x 1KiB', server, 'rss_kib')))} | "
            f"{fmt(r.median('restart 1M x 1KiB', server, 'ready_ms'))} | "
            f"{fmt(mib(r.median('restart 1M x 1KiB', server, 'rss_kib')))} | "
            f"{fmt(r.median('drain 1M x 1KiB', server, 'msgs_per_s'))} |"
        )
    if rows:
        out += ["### 1,000,000 x 1 KiB queued: memory and restart", "",
                "| server | produce msg/s | peak RSS MiB | RSS when full MiB | restart: spawn to head item ms | RSS after restart MiB | drain msg/s |",
                "|---|---:|---:|---:|---:|---:|---:|", *rows, ""]
    return "\n".join(out)


def machine_section(m, duration):
    quick = " **(quick trial mode: small counts, not a benchmark)**" if m.get("quick") == "1" else ""
    run_time = duration.get("seconds")
    return "\n".join([
        f"Produced by `scripts/bench.sh` on {m.get('date')}{quick}; "
        f"{m.get('reps')} repetitions of every run, all figures are medians over them"
        + (f"; the whole run took {int(run_time) // 60} min {int(run_time) % 60} s." if run_time else "."),
        "",
        "| | |",
        "|---|---|",
        f"| CPUs (nproc) | {m.get('nproc')} |",
        f"| CPU model | {m.get('cpu')} |",
        f"| memory | {m.get('memory')} |",
        f"| kernel | {m.get('kernel')} |",
        f"| disk | {m.get('disk')} |",
        f"| load average at start | {m.get('loadavg')} |",
        f"| lanner | {m.get('lanner')}, {m.get('lanner_source') or 'commit ' + str(m.get('commit'))}; {m.get('rustc')} |",
        f"| Redis | {m.get('redis')} |",
        f"| memcached | {m.get('memcached')} |",
        "",
        "**The machine was shared**: client and server run on the same 2 cores, next to other work "
        "(other builds compiled concurrently). Expect run-to-run noise of 10-30 %; the min – max "
        "column shows it. Ratios between servers are more stable than absolute rates, because the "
        "servers ran in alternation (lanner, Redis, memcached, lanner, ...), each on a fresh process "
        "and data directory.",
    ])


def commands_section(commands):
    seen = []
    for command in commands:
        generic = re.sub(r"acked-(\w+)-\d+\.txt", r"acked-\1-REP.txt", command)
        generic = re.sub(r"--pid \d+", "--pid PID", generic)
        generic = re.sub(r"/[^ ]*/target/bench/[^/ ]+", "$OUT", generic)
        generic = re.sub(r"/(data|logs)/(lanner|redis|memcached)-[\d-]+", r"/\1/\2-N", generic)
        if generic not in seen:
            seen.append(generic)
    return "\n".join(seen)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--doc", required=True)
    parser.add_argument("--notes", default=os.path.join(os.path.dirname(__file__), "bench_notes.json"))
    args = parser.parse_args()
    runs, machine, commands, duration = load(args.out_dir)
    notes = {}
    if os.path.exists(args.notes):
        with open(args.notes) as f:
            notes = json.load(f)
    r = Results(runs)
    targets = check_targets(r, notes, machine)

    doc = ["# Benchmarks", "",
           "lanner against Redis (lists, AOF) and memcached, with the same load from `lanner-bench`. "
           "This file is generated: rerun `scripts/bench.sh` to refresh it (see *How to reproduce*). "
           "Where a target is not met, the notes say why and what would close it; the profiles behind "
           "them are in [performance.md](performance.md).", "",
           "## Machine", "", machine_section(machine, duration), "",
           "## Targets", "",
           "64-byte messages and lanner with `sync = \"100ms\"` unless a row says otherwise; ratios are lanner / peer "
           "of the medians.", "",
           "| target | measured | goal | status |", "|---|---|---|---|"]
    for tid, target, measured, goal, status in targets.rows:
        doc.append(f"| {target} | {measured} | {goal} | {status} |")
    met = sum(1 for row in targets.rows if row[4] == "**met**")
    missed = sum(1 for row in targets.rows if row[4] == "**not met**")
    doc += ["", f"{met} met, {missed} not met.", ""]
    shown = []
    for tid, *_ in targets.rows:
        if tid in notes and tid not in shown:
            shown.append(tid)
    if shown:
        doc += ["### Notes on the targets", "",
                "From `scripts/bench_notes.json`, written from this run's figures and the profiles in "
                "[performance.md](performance.md).", ""]
        for tid in shown:
            doc += [f"**{tid}**{note_status(tid, targets)}: {notes[tid]}", ""]
    doc += ["## All runs", "",
            "Rates count messages acknowledged (produce) or received (consume) per second of the run; "
            "latency is from writing a batch of requests to reading each reply, except for *mixed* "
            "where it is end to end (the producer's send time stamped in the payload to the consumer's "
            "receipt). *Server peak RSS* is `VmHWM` from `/proc/<pid>/status` after the run.", "",
            scenario_table(r), "", extra_tables(r),
            "### CPU per message", "",
            "Server and client CPU time (user + system, from `/proc/<pid>/stat`, 10 ms ticks) divided by the "
            "messages counted: the client shares the two cores with the server, so this is where the "
            "ceiling on every rate comes from (see [performance.md](performance.md)).", "",
            cpu_table(r), "",
            "## What each run does", "",
            SCENARIOS.format(**machine), "",
            "## How to reproduce", "",
            "```sh\nscripts/bench.sh              # installs redis-server and memcached if missing, builds, runs, writes this file\n"
            "BENCH_QUICK=1 scripts/bench.sh  # a two-minute trial with small counts\n```", "",
            "Servers as started (fresh data directory per run; `$OUT` is the run's output directory):", "",
            "```sh\n" + SERVER_COMMANDS + "\n```", "",
            "Every `lanner-bench` command of the run (one repetition shown; ports as in the script):", "",
            "```sh\n" + commands_section(commands) + "\n```", "",
            "<details><summary>Raw results (one JSON line per run)</summary>", "",
            "```json\n" + "\n".join(json.dumps(run, separators=(",", ":")) for run in runs) + "\n```", "",
            "</details>", ""]
    with open(args.doc, "w") as f:
        f.write("\n".join(doc))


SERVER_COMMANDS = """\
# lanner: lanner.toml holds [default] sync = "100ms" (sync-always runs: "always";
# the 1M x 1 KiB run adds max_memory_size = "8MiB" when the build accepts it)
target/release/lanner --listen 127.0.0.1:27133 --data-dir $OUT/data/lanner-N --config $OUT/data/lanner-N.toml
# Redis: AOF on, fsync every second (sync-always runs: --appendfsync always), RDB snapshots off
redis-server --bind 127.0.0.1 --port 27379 --dir $OUT/data/redis-N --appendonly yes --appendfsync everysec --save "" --maxclients 12000 --daemonize no
# memcached: 4 GiB of cache so nothing is evicted, 12000 connections, default 4 threads
memcached -l 127.0.0.1 -p 27211 -U 0 -m 4096 -c 12000 -u root"""

SCENARIOS = """\
Every message carries its producer id, a sequence number, its send time and a filler pattern;
consumers check each payload and count **lost** (acknowledged but never received), **duplicated**,
corrupt and unknown messages. Every run is bounded by a message count and a duration.

| run | what it does |
|---|---|
| produce 8x16 / consume 8x16 | 8 connections each keep 16 requests in flight (a batch of 16 written at once, then its 16 replies read), {n_pipelined} messages of 64 B; then the same drains them and verifies. |
| produce 1x1 / consume 1x1 | one connection, one request at a time, {n_single} messages. |
| mixed 4+4 | 4 producers (one request at a time) and 4 consumers doing blocking reads (`get q/t=500`, `BRPOP q 0.5`) for {mixed_seconds} s, as fast as they go; the rate is what consumers received within the window. Afterwards the consumers drain the rest and delivery is verified. |
| mixed 4+4 paced | the same with producers paced to {paced_rate} msg/s in total, a load both servers sustain, so end-to-end latency is not dominated by a growing backlog. |
| reliable 8x1 | {n_reliable} messages prefilled, then 8 consumers take them with reliable reads: lanner `get q/open`, then `get q/close/open` per item (confirming the previous one), `get q/close` at the end; Redis `BLMOVE q q:proc:<c> RIGHT LEFT 0.5` and, in the same write as the next BLMOVE, `LREM q:proc:<c> 1 <value>` for the previous item. |
| sync-always 64x1 | lanner with `sync = "always"` (fsync before the ack, group commit) against Redis with `appendfsync always`: 64 connections, one request at a time, for {always_seconds} s; then the server is SIGKILLed while the producers are still sending, restarted on the same data, and drained: every acknowledged message must be there (**sync-always verify**). |
| fanin 8x16 | an 8x16 produce then consume of {n_fanin} messages twice alone (the first a warm-up, not counted), then {idle} further connections are opened (each answers one `version`/`PING`, then stays idle, held open with non-blocking sockets), then the same load again; reports both rates and the server's RSS growth for the idle connections. |
| 1M x 1KiB | {n_big} messages of 1 KiB produced 8x16; the server's RSS then. |
| restart 1M x 1KiB | the server is SIGKILLed with those items queued and started again with the same command; time from the spawn until it serves the head item (`get q/peek`, `LINDEX q -1`; Redis answers `-LOADING` until its AOF is loaded). |
| drain 1M x 1KiB | the restarted server drained 8x16, verifying every message. |

**memcached is a cache, not a queue.** For it, *produce* is a `set` of a distinct key per message
(`<queue>:<producer>:<seq>`) and *consume* is a `get` of each of those keys (still verified); it has
no blocking or reliable reads and keeps nothing across a restart, so it takes part only in
produce/consume, fan-in and the memory run (given 4 GiB so nothing is evicted).

Redis speaks RESP: produce is `LPUSH q <payload>`, consume `RPOP q` (FIFO), pipelined the same way."""


if __name__ == "__main__":
    main()
