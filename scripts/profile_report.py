#!/usr/bin/env python3
"""Summarises the raw output of scripts/profile.sh as Markdown tables (stdout).

Usage: profile_report.py OUT_DIR
"""

import json
import os
import re
import sys
from collections import defaultdict


def per_message_table(out):
    rows = []
    path = os.path.join(out, "counts.jsonl")
    if not os.path.exists(path):
        return "(not measured)"
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    lines = [
        "| run | server | msg/s | server CPU us/msg | client CPU us/msg | syscalls/msg | read | write | epoll_wait | futex | fdatasync | ctx switches/msg |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in rows:
        n = run.get("consumed_total") or run.get("messages") or 0
        c = run.get("counters", {})
        if not n:
            continue

        def per(*names):
            return sum(c.get(name, 0) for name in names) / n

        syscalls = per("read", "recvfrom", "write", "sendto", "epoll_wait", "futex", "fdatasync", "mprotect", "brk", "mmap")
        lines.append(
            f"| {run['label']} | {run['server']} | {run['msgs_per_s']:,.0f} | {run.get('server_cpu_us_per_msg', 0):.1f} | "
            f"{run.get('client_cpu_us_per_msg', 0):.1f} | {syscalls:.3f} | {per('read', 'recvfrom'):.3f} | "
            f"{per('write', 'sendto'):.3f} | {per('epoll_wait'):.3f} | {per('futex'):.3f} | {per('fdatasync'):.4f} | "
            f"{per('context-switches'):.3f} |"
        )
    return "\n".join(lines)


def perf_tables(out):
    parts = []
    for name in sorted(os.listdir(out)):
        if not name.endswith(".data.dso.txt"):
            continue
        label = name[len("perf-"):-len(".data.dso.txt")].replace("_", " ")
        with open(os.path.join(out, name)) as f:
            dso = [line.split() for line in f if line.strip()]
        with open(os.path.join(out, name.replace(".dso.txt", ".symbols.txt"))) as f:
            symbols = [line.rstrip() for line in f if line.strip()][:25]
        parts.append(f"#### perf: lanner, {label}\n")
        parts.append("Samples by binary: " + ", ".join(f"{d[1]} {d[0]}" for d in dso if len(d) >= 2) + "\n")
        parts.append("```\n" + "\n".join(re.sub(r"\s+-\s+-\s*$", "", s) for s in symbols) + "\n```\n")
    return "\n".join(parts)


def dhat_sites(path):
    with open(path) as f:
        data = json.load(f)
    ftbl = data["ftbl"]
    sites = defaultdict(lambda: [0, 0])
    for pp in data["pps"]:
        frames = [ftbl[i] for i in pp["fs"]]
        keep = [
            fr for fr in frames
            if not re.search(r"library/(alloc|core|std)/|UnknownInlinedFun \(library|\[root\]|malloc|realloc|calloc", fr)
        ]
        key = " <- ".join(re.sub(r"^0x[0-9A-Fa-f]+: ", "", fr)[:80] for fr in keep[:3])
        sites[key][0] += pp["tbk"]
        sites[key][1] += pp["tb"]
    return sites


def dhat_table(out):
    small = os.path.join(out, "vg-dhat-10000.dhat.json")
    large = os.path.join(out, "vg-dhat-30000.dhat.json")
    if not (os.path.exists(small) and os.path.exists(large)):
        return "(dhat output missing)"
    a, b = dhat_sites(small), dhat_sites(large)
    per = 20000  # messages more in the larger run, each produced and consumed once
    rows = []
    for key, (blocks, size) in b.items():
        db = blocks - a.get(key, [0, 0])[0]
        dsize = size - a.get(key, [0, 0])[1]
        if db >= per * 0.05:
            rows.append((db / per, dsize / per, key))
    rows.sort(reverse=True)
    total_blocks = sum(r[0] for r in rows)
    total_bytes = sum(r[1] for r in rows)
    lines = [
        f"Heap allocations per message (one `set` plus one `get`): **{total_blocks:.1f} blocks, {total_bytes:.0f} bytes**.",
        "",
        "| blocks/msg | bytes/msg | allocation site (innermost lanner frames) |",
        "|---:|---:|---|",
    ]
    lines += [f"| {r[0]:.2f} | {r[1]:.0f} | `{r[2]}` |" for r in rows]
    return "\n".join(lines)


def callgrind_self(path):
    """Self cost per function name (paths stripped), and the program total."""
    totals = defaultdict(int)
    program = 0
    with open(path) as f:
        for line in f:
            m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(\S.*)$", line)
            if not m:
                continue
            value = int(m.group(1).replace(",", ""))
            name = m.group(2)
            if name.startswith("PROGRAM TOTALS"):
                program = value
                continue
            name = re.sub(r"\s+\[[^\]]*\]$", "", name)
            name = name.split(":", 1)[1] if ":" in name else name
            totals[name] += value
    return totals, program


def callgrind_table(out):
    small = os.path.join(out, "callgrind-10000.txt")
    large = os.path.join(out, "callgrind-30000.txt")
    if not (os.path.exists(small) and os.path.exists(large)):
        return "(callgrind output missing)"
    (a, program_a), (b, program_b) = callgrind_self(small), callgrind_self(large)
    per = 20000
    rows = sorted(((value - a.get(name, 0)) / per, name) for name, value in b.items())
    rows.reverse()
    total = (program_b - program_a) / per
    groups = defaultdict(float)
    for diff, name in rows:
        if re.search(r"malloc|free|realloc|__rdl_|__rust_alloc|__rust_dealloc|consolidate", name):
            groups["allocator (malloc/free)"] += diff
        elif "crc32c" in name:
            groups["CRC32C of journal records"] += diff
        elif re.search(r"sip|hash", name, re.I):
            groups["SipHash (queue-name lookups)"] += diff
        elif "from_utf8" in name or "validations" in name:
            groups["UTF-8 validation"] += diff
        elif "tokio" in name:
            groups["tokio runtime"] += diff
        elif "memcpy" in name or "memmove" in name or "memset" in name:
            groups["memcpy/memset"] += diff
    lines = [
        f"User-space instructions per message (one `set` plus one `get`, 8x16): **{total:,.0f}**. "
        "Grouped (self cost):",
        "",
        "| instructions/msg | group |",
        "|---:|---|",
    ]
    lines += [f"| {value:,.0f} | {name} |" for name, value in sorted(groups.items(), key=lambda kv: -kv[1])]
    lines += ["", "Top functions (self cost):", "", "| instructions/msg | function |", "|---:|---|"]
    lines += [f"| {diff:,.0f} | `{name[:120]}` |" for diff, name in rows[:25] if diff > 0]
    return "\n".join(lines)


def recovery_section(out):
    path = os.path.join(out, "recovery-io.txt")
    if not os.path.exists(path):
        return "(not measured)"
    with open(path) as f:
        io = f.read().strip()
    disk = ""
    path = os.path.join(out, "recovery-disk.txt")
    if os.path.exists(path):
        with open(path) as f:
            disk = f.read().strip()
    return "Restart with 1,000,000 x 1 KiB queued (read-behind, `max_memory_size = \"8MiB\"`):\n\n```\n" + disk + "\n\n" + io + "\n```"


def idle_section(out):
    path = os.path.join(out, "idle-2000.dhat.json")
    if not os.path.exists(path):
        return "(not measured)"
    with open(path) as f:
        data = json.load(f)
    ftbl = data["ftbl"]
    rows = []
    for pp in data["pps"]:
        frames = [ftbl[i] for i in pp["fs"]]
        keep = [fr for fr in frames if not re.search(r"library/(alloc|core|std)/|UnknownInlinedFun \(library|\[root\]|malloc|realloc|calloc", fr)]
        rows.append((pp.get("gb", 0), pp.get("gbk", 0), " <- ".join(re.sub(r"^0x[0-9A-Fa-f]+: ", "", fr)[:80] for fr in keep[:2])))
    rows.sort(reverse=True)
    lines = ["Heap at its peak with 2,000 idle connections, per connection (dhat):", "",
             "| bytes/conn | blocks/conn | site |", "|---:|---:|---|"]
    lines += [f"| {r[0] / 2000:,.0f} | {r[1] / 2000:.2f} | `{r[2]}` |" for r in rows[:6]]
    return "\n".join(lines)


def main():
    out = sys.argv[1]
    print("## Per message, on the server process\n")
    print(per_message_table(out))
    print("\n## Flat CPU profiles (perf record -e cpu-clock)\n")
    print(perf_tables(out))
    print("\n## Allocations (valgrind --tool=dhat)\n")
    print(dhat_table(out))
    print("\n## User-space instructions (valgrind --tool=callgrind)\n")
    print(callgrind_table(out))
    print("\n## Recovery\n")
    print(recovery_section(out))
    print("\n## Idle connections\n")
    print(idle_section(out))


if __name__ == "__main__":
    main()
