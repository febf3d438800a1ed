#!/usr/bin/env python3
"""Builds the table of bench/run.sh from the JSON files it collected in one directory.

Each workload is a `cairn bench --json` output (cairn or nginx via --raw-http); wrk_*.json are
the same workloads measured by wrk (the WRKJSON line of bench/wrk_s3.lua); raw.json is
`cairn bench --raw --json`; disk.json holds the dd and fdatasync figures, fsync_put.json the
fdatasync rate again right before the 4 KiB PUTs (their reference); rss.txt the server's
peak resident set (KiB) during the 64 MiB PUT run. Targets are those of issue 4, met only when
every tool that measured the row meets them. Prints markdown and writes it to the file given as
the second argument.
"""
import json
import os
import sys


def load(d, name):
    with open(os.path.join(d, name)) as f:
        return json.load(f)


def fig(j, key):
    return j["total"][key]


def main():
    d, out, machine = sys.argv[1], sys.argv[2], sys.argv[3]
    raw = load(d, "raw.json")["raw"]
    disk = load(d, "disk.json")
    nproc = os.cpu_count() or 1
    rows = []

    def add(name, cairn, ref, refdesc, unit, target, higher_is_better=True, wrk=None):
        """wrk: (cairn, reference) as measured by wrk, or None when wrk did not measure it."""
        sign = ">=" if higher_is_better else "<="
        ratios = [cairn / ref if ref else 0.0]
        cells = [f"{cairn:,.1f}", f"{ref:,.1f} ({refdesc})", f"{ratios[0]:.2f}"]
        if wrk:
            ratios.append(wrk[0] / wrk[1] if wrk[1] else 0.0)
            cells += [f"{wrk[0]:,.1f}", f"{wrk[1]:,.1f}", f"{ratios[1]:.2f}"]
        else:
            cells += ["-", "-", "-"]
        met = all(r >= target if higher_is_better else r <= target for r in ratios)
        rows.append((f"{name} ({unit})", *cells, f"{sign} {target}", "yes" if met else "**no**"))

    def wrkfig(name, key):
        return load(d, name)[key]

    g4, n4 = load(d, "cairn_get4k.json"), load(d, "nginx_get4k.json")
    add("4 KiB GET, c=64", fig(g4, "ops_per_s"), fig(n4, "ops_per_s"), "nginx 4 KiB file",
        "req/s", 0.5, wrk=(wrkfig("wrk_cairn_get4k.json", "ops_per_s"),
                           wrkfig("wrk_nginx_get4k.json", "ops_per_s")))
    g1, n1 = load(d, "cairn_get1m.json"), load(d, "nginx_get1m.json")
    add("1 MiB GET, c=16", fig(g1, "mb_per_s"), fig(n1, "mb_per_s"), "nginx 1 MiB file",
        "MB/s", 0.5, wrk=(wrkfig("wrk_cairn_get1m.json", "mb_per_s"),
                          wrkfig("wrk_nginx_get1m.json", "mb_per_s")))
    p4 = load(d, "cairn_put4k.json")
    fs = load(d, "fsync_put.json")["fsync4k_per_s"]  # taken right before the PUTs
    add("4 KiB PUT, c=64", fig(p4, "ops_per_s"), fs,
        "4 KiB write+fdatasync, 1 stream, just before", "op/s", 3,
        wrk=(wrkfig("wrk_cairn_put4k.json", "ops_per_s"), fs))
    p64 = load(d, "cairn_put64m.json")
    md5_cap = raw["md5"] * nproc
    disk_cap = disk["seq_write_mb_s"] / 1.5
    ref = min(md5_cap, disk_cap)
    which = "MD5 x %d cores" % nproc if md5_cap <= disk_cap else "disk write / 1.5"
    add("64 MiB PUT, c=4", fig(p64, "mb_per_s"), ref, which, "MB/s", 0.6)
    with open(os.path.join(d, "rss.txt")) as f:
        rss_mib = int(f.read().split()[0]) / 1024.0
    add("server peak RSS, 64 MiB PUT", rss_mib, 200.0, "limit", "MiB", 1.0, False)

    wrk_runs = ("wrk_nginx_get4k", "wrk_cairn_get4k", "wrk_nginx_get1m", "wrk_cairn_get1m",
                "wrk_cairn_put4k")
    errors = sum(load(d, n)["total"]["errors"] for n in
                 ("cairn_get4k.json", "nginx_get4k.json", "cairn_get1m.json",
                  "nginx_get1m.json", "cairn_put4k.json", "cairn_put64m.json"))
    errors += sum(sum(load(d, n + ".json")["errors"].values()) for n in wrk_runs)
    lines = [f"Machine: {machine}", ""]
    head = ("workload", "cairn (cairn bench)", "reference (same run)", "ratio",
            "cairn (wrk)", "reference (wrk)", "ratio (wrk)", "target", "met?")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * len(head)) + "|")
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    lines += ["", "References measured in this run:", ""]
    lines.append(f"- disk: sequential write with fdatasync {disk['seq_write_mb_s']:,.1f} MB/s "
                 f"(dd, 1 MiB blocks, O_DIRECT); 4 KiB append+fdatasync, one stream "
                 f"{disk['fsync4k_per_s']:,.1f} /s at the start, "
                 f"{load(d, 'fsync_put.json')['fsync4k_per_s']:,.1f} /s right before the PUTs")
    lines.append("- CPU, one core (MB/s): " +
                 ", ".join(f"{k} {v:,.0f}" for k, v in raw.items()))
    lines += ["", "Latency (ms) of each workload:", "",
              "| workload | ops | errors | p50 | p90 | p99 | p99.9 | max |",
              "|---|---|---|---|---|---|---|---|"]
    for name in ("nginx_get4k", "cairn_get4k", "nginx_get1m", "cairn_get1m", "cairn_put4k",
                 "cairn_put64m"):
        j = load(d, name + ".json")
        for op, s in j["ops"].items():
            lat = s["latency_ms"]
            lines.append(f"| {name} ({op}) | {s['count']} | {s['errors']} | {lat['p50']:.3f} | "
                         f"{lat['p90']:.3f} | {lat['p99']:.3f} | {lat['p99_9']:.3f} | "
                         f"{lat['max']:.3f} |")
    for name in wrk_runs:
        j = load(d, name + ".json")
        lat = j["latency_ms"]
        lines.append(f"| {name} | {j['requests']} | {sum(j['errors'].values())} | "
                     f"{lat['p50']:.3f} | {lat['p90']:.3f} | {lat['p99']:.3f} | "
                     f"{lat['p99_9']:.3f} | {lat['max']:.3f} |")
    lines.append("")
    lines.append(f"Request errors in the measured runs: {errors}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out, "w") as f:
        f.write(text)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
