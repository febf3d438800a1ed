#!/usr/bin/env python3
"""Builds the table of bench/cluster.sh from the files it collected in one directory.

For each run NAME (single-*, cluster-*, spread-*) there are NAME.K.json, one `cairn bench --json`
output per load process (K = 0.. endpoints), and NAME.cpu: "server_ticks etcd_ticks CLK_TCK
nendpoints concurrency_each". Throughput of a run is the sum over its processes. The listing
runs (LIST=1) add single-/cluster-listsmall and -listbig (the same files) and single-/cluster-
pages.json (bench/list_pages.py's line); the wrk runs (WRK=1) wrk-single-/wrk-cluster-SUFFIX.json
(bench/wrk_s3.lua's WRKJSON line). Targets are
those of issue 9: the cluster through one node at least 0.33x the single node for 4 KiB and 0.5x
for 1 MiB. Prints markdown and writes it to the file given as the second argument.
"""
import glob
import json
import os
import sys

ROWS = [  # run suffix, label, figure, unit, target, object size
    ("get4k", "4 KiB GET, c=64", "ops_per_s", "req/s", 0.33, 4096),
    ("put4k", "4 KiB PUT, c=64", "ops_per_s", "op/s", 0.33, 4096),
    ("get1m", "1 MiB GET, c=16", "mb_per_s", "MB/s", 0.5, 1 << 20),
    ("put1m", "1 MiB PUT, c=16", "mb_per_s", "MB/s", 0.5, 1 << 20),
]


def load_run(d, name):
    files = sorted(glob.glob(os.path.join(d, name + ".*.json")))
    if not files:
        return None
    ops = mb = 0.0
    count = 0
    for f in files:
        with open(f) as fh:
            t = json.load(fh)["total"]
        ops += t["ops_per_s"]
        mb += t["mb_per_s"]
        count += t["count"]
    with open(os.path.join(d, name + ".cpu")) as fh:
        srv, etcd, hz, neps, each = fh.read().split()
    hz = float(hz)
    return {
        "ops_per_s": ops,
        "mb_per_s": mb,
        "count": count,
        "us_per_op": float(srv) / hz / count * 1e6 if count else 0.0,
        "etcd_us_per_op": float(etcd) / hz / count * 1e6 if count else 0.0,
        "conns": f"{neps}x{each}",
    }


def load_wrk(d, name, size):
    """A wrk run's figures (WRK=1): requests per second, and MB/s of object bytes (wrk's own byte
    count is of the responses: for a PUT, the small answers)."""
    try:
        with open(os.path.join(d, "wrk-" + name + ".json")) as fh:
            w = json.load(fh)
    except (OSError, ValueError):
        return None
    return {"ops_per_s": w["ops_per_s"], "mb_per_s": w["ops_per_s"] * size / 1e6}


def wrk_table(d):
    """The outside tool's rows: each workload by wrk on both sides."""
    rows = []
    for suffix, label, key, unit, target, size in ROWS:
        s, c = load_wrk(d, "single-" + suffix, size), load_wrk(d, "cluster-" + suffix, size)
        if not s or not c:
            continue
        ratio = c[key] / s[key] if s[key] else 0.0
        rows.append(f"| {label} | {s[key]:,.1f} {unit} | {c[key]:,.1f} {unit} | {ratio:.2f} |"
                    f" >= {target} | {'yes' if ratio >= target else '**no**'} |")
    if not rows:
        return []
    return ["", "The same workloads by wrk (SigV4 presigned URLs, bench/wrk_s3.lua), each right after"
            " cairn bench's runs of it:", "",
            "| workload | single node (wrk) | cluster via n1 (wrk) | ratio (wrk) | target | met? |",
            "|---|---|---|---|---|---|"] + rows


def listing(d):
    """The listing rows (LIST=1): first pages of a small and a big prefix, and paging."""
    small = {side: load_run(d, side + "-listsmall") for side in ("single", "cluster")}
    big = {side: load_run(d, side + "-listbig") for side in ("single", "cluster")}
    pages = {}
    for side in ("single", "cluster"):
        try:
            with open(os.path.join(d, side + "-pages.json")) as fh:
                pages[side] = json.load(fh)
        except (OSError, ValueError):
            pages[side] = None
    if not all(small.values()) or not all(big.values()) or not all(pages.values()):
        return []
    n = pages["cluster"]["keys"]
    out = ["", f"Listing (ListObjectsV2) of a bucket with a {n:,}-key prefix and a 1,000-key prefix;"
           " steady means the big prefix's figure at least 0.8x the small one's (first pages) and"
           " the deepest fifth of the pages at most 1.25x as slow as the first fifth (medians):", "",
           "| listing | single node | cluster via n1 | ratio | steady on the cluster? |",
           "|---|---|---|---|---|"]
    for label, runs in (("first page (100 keys) of the 1,000-key prefix, c=4", small),
                        (f"first page (100 keys) of the {n:,}-key prefix, c=4", big)):
        s, c = runs["single"]["ops_per_s"], runs["cluster"]["ops_per_s"]
        out.append(f"| {label} | {s:,.0f} lists/s | {c:,.0f} lists/s | {c / s if s else 0:.2f} | - |")
    bs = big["cluster"]["ops_per_s"] / small["cluster"]["ops_per_s"] if small["cluster"]["ops_per_s"] else 0
    ss = big["single"]["ops_per_s"] / small["single"]["ops_per_s"] if small["single"]["ops_per_s"] else 0
    out.append(f"| big prefix / small prefix, first page | {ss:.2f} | {bs:.2f} | - |"
               f" {'yes' if bs >= 0.8 else '**no**'} |")
    ps, pc = pages["single"], pages["cluster"]
    out.append(f"| all {n:,} keys, 1,000 a page ({pc['pages']} pages), one client |"
               f" {ps['pages_per_s']:,.1f} pages/s | {pc['pages_per_s']:,.1f} pages/s |"
               f" {pc['pages_per_s'] / ps['pages_per_s'] if ps['pages_per_s'] else 0:.2f} | - |")
    depth = {k: v["last_fifth_ms"] / v["first_fifth_ms"] if v["first_fifth_ms"] else 0
             for k, v in pages.items()}
    out.append(f"| page time (median), last fifth / first fifth | {depth['single']:.2f}"
               f" ({ps['first_fifth_ms']:.1f} -> {ps['last_fifth_ms']:.1f} ms) | {depth['cluster']:.2f}"
               f" ({pc['first_fifth_ms']:.1f} -> {pc['last_fifth_ms']:.1f} ms) | - |"
               f" {'yes' if depth['cluster'] <= 1.25 else '**no**'} |")
    return out


def main():
    d, out, machine = sys.argv[1], sys.argv[2], sys.argv[3]
    lines = [f"Run: {machine}", ""]
    lines.append("| workload | single node | cluster via n1 | ratio | target | met? |"
                 " CPU/op single | CPU/op cluster | CPU ratio (single/cluster) |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    spread = []
    for suffix, label, key, unit, target, _ in ROWS:
        s = load_run(d, "single-" + suffix)
        c = load_run(d, "cluster-" + suffix)
        if not s or not c:
            continue
        ratio = c[key] / s[key] if s[key] else 0.0
        cpu_ratio = s["us_per_op"] / c["us_per_op"] if c["us_per_op"] else 0.0
        lines.append(
            f"| {label} | {s[key]:,.1f} {unit} | {c[key]:,.1f} {unit} | {ratio:.2f} | >= {target} |"
            f" {'yes' if ratio >= target else '**no**'} | {s['us_per_op']:,.0f} us |"
            f" {c['us_per_op']:,.0f} us (+ etcd {c['etcd_us_per_op']:,.1f}) | {cpu_ratio:.2f} |")
        p = load_run(d, "spread-" + suffix)
        if p:
            pr = p[key] / s[key] if s[key] else 0.0
            pc = s["us_per_op"] / p["us_per_op"] if p["us_per_op"] else 0.0
            spread.append(f"| {label} | {p['conns']} | {p[key]:,.1f} {unit} | {pr:.2f} |"
                          f" {p['us_per_op']:,.0f} us | {pc:.2f} |")
    if spread:
        lines += ["", "Spread over the six nodes (one load process per node, connections split):",
                  "", "| workload | connections | cluster, 6 nodes | ratio to single |"
                  " CPU/op | CPU ratio (single/cluster) |", "|---|---|---|---|---|---|"]
        lines += spread
    lines += wrk_table(d)
    lines += listing(d)
    lines += ["", "CPU/op: utime+stime of the server processes (single: one; cluster: the six "
              "nodes; etcd apart) over the requests of the run. The CPU ratio is the throughput "
              "ratio the cluster would reach if both were CPU-bound on the same cores."]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
