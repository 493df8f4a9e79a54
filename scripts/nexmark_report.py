#!/usr/bin/env python3
"""Turns the CSV lines of `freshet_nexmark_bench --csv FILE` into the
Nexmark table of docs/benchmarks.md (markdown, on stdout) and a bar chart
(SVG) of events per second per core, Freshet's heap and RocksDB backends
next to Flink's published figures, on a logarithmic scale.

    scripts/nexmark_report.py results.csv --svg docs/nexmark.svg

When a query and backend occur on several lines, the last line counts.
"""
import argparse
import csv
import math
import sys

# Flink 1.13, RocksDB with incremental checkpoints every 3 min,
# parallelism 8, the reference Nexmark results: thousands of events per
# second per core.
FLINK_PER_CORE_K = {
    "q0": 155, "q1": 158, "q2": 175, "q3": 152, "q4": 34, "q5": 22, "q7": 12, "q8": 146, "q9": 14,
    "q10": 58, "q11": 40, "q12": 76, "q13": 131, "q14": 161, "q15": 72, "q16": 19, "q17": 117,
    "q18": 54, "q19": 44, "q20": 19, "q21": 99, "q22": 130,
}
FIELDS = ["query", "backend", "parallelism", "events", "checkpoint_interval_ms", "runs", "per_s", "per_core",
          "cores", "peak_memory", "checkpoints", "checkpoint_size"]


def query_number(name):
    return int(name[1:]) if name[1:].isdigit() else 1000


def load(path):
    results = {}
    with open(path, newline="") as f:
        for line, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != len(FIELDS):
                sys.exit(f"{path}:{line}: expected {len(FIELDS)} fields, found {len(row)}")
            record = dict(zip(FIELDS, row))
            try:
                for key in ("per_s", "per_core", "cores", "peak_memory", "checkpoints", "checkpoint_size"):
                    record[key] = float(record[key])
            except ValueError as e:
                sys.exit(f"{path}:{line}: {e}")
            backend = "rocksdb" if record["backend"].startswith("rocksdb") else "heap"
            results[(record["query"], backend)] = record
    return results


def table(results):
    queries = sorted({q for q, _ in results}, key=query_number)
    out = ["| query | Freshet heap, K events/s per core | Freshet RocksDB, K events/s per core | "
           "Flink, K events/s per core | heap / Flink | RocksDB / Flink | peak memory heap / RocksDB, MB | "
           "checkpoints (largest, MB) heap / RocksDB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for q in queries:
        heap, rocks = results.get((q, "heap")), results.get((q, "rocksdb"))
        flink = FLINK_PER_CORE_K.get(q)

        def per_core(r):
            return f"{r['per_core'] / 1e3:,.0f}" if r else "–"

        def ratio(r):
            return f"{r['per_core'] / 1e3 / flink:.1f}x" if r and flink else "–"

        def memory(r):
            return f"{r['peak_memory'] / 1e6:,.0f}" if r else "–"

        def checkpoints(r):
            return f"{r['checkpoints']:.0f} ({r['checkpoint_size'] / 1e6:,.1f})" if r else "–"

        out.append(f"| {q} | {per_core(heap)} | {per_core(rocks)} | {flink if flink else 'n/a'} | {ratio(heap)} | "
                   f"{ratio(rocks)} | {memory(heap)} / {memory(rocks)} | {checkpoints(heap)} / {checkpoints(rocks)} |")
    return "\n".join(out)


def svg(results):
    queries = sorted({q for q, _ in results}, key=query_number)
    series = [("Freshet heap", "heap", "#1f77b4"), ("Freshet RocksDB", "rocksdb", "#ff7f0e"),
              ("Flink (published)", None, "#7f7f7f")]
    values = []
    for q in queries:
        row = []
        for _, backend, _ in series:
            if backend is None:
                row.append(FLINK_PER_CORE_K.get(q))
            else:
                r = results.get((q, backend))
                row.append(r["per_core"] / 1e3 if r else None)
        values.append(row)
    top = max(v for row in values for v in row if v) * 1.5
    bottom = 1.0
    width_per_query, bar, left, plot_h, top_margin = 54, 14, 70, 320, 40
    width = left + width_per_query * len(queries) + 20
    height = top_margin + plot_h + 70

    def y(v):
        return top_margin + plot_h * (1 - (math.log10(v) - math.log10(bottom)) / (math.log10(top) - math.log10(bottom)))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="20" font-size="14">Nexmark: thousands of events per second per core '
             f'(log scale)</text>']
    decade = 1
    while decade <= top:
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(decade):.1f}" y2="{y(decade):.1f}" '
                     f'stroke="#ddd"/><text x="{left - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">'
                     f'{decade:,}</text>')
        decade *= 10
    for i, (q, row) in enumerate(zip(queries, values)):
        x0 = left + i * width_per_query + 4
        for j, v in enumerate(row):
            if not v:
                continue
            parts.append(f'<rect x="{x0 + j * bar}" y="{y(v):.1f}" width="{bar - 2}" '
                         f'height="{top_margin + plot_h - y(v):.1f}" fill="{series[j][2]}"><title>{q} '
                         f'{series[j][0]}: {v:,.0f} K/s</title></rect>')
        parts.append(f'<text x="{x0 + 1.5 * bar}" y="{top_margin + plot_h + 16}" text-anchor="middle">{q}</text>')
    for j, (label, _, color) in enumerate(series):
        lx = left + j * 160
        parts.append(f'<rect x="{lx}" y="{height - 30}" width="12" height="12" fill="{color}"/>'
                     f'<text x="{lx + 16}" y="{height - 20}">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", help="lines written by freshet_nexmark_bench --csv")
    parser.add_argument("--svg", help="write the chart here")
    args = parser.parse_args()
    results = load(args.csv)
    if not results:
        sys.exit(f"{args.csv}: no results")
    print(table(results))
    if args.svg:
        with open(args.svg, "w") as f:
            f.write(svg(results) + "\n")


if __name__ == "__main__":
    main()
