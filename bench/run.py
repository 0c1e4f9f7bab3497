#!/usr/bin/env python3
"""Runs the Socket.IO benchmark for Shoal, Node socket.io and socketioxide, interleaved,
and writes docs/benchmarks.md (tables of medians with ranges, SVG plots, the commands).

Each server runs pinned to core 0 (taskset), the load generator (shoal-bench) to core 1.
Every scenario is run for every server in turn, `--reps` times, so slow drifts of the
machine spread over all servers alike.

    python3 bench/run.py                    # everything, 3 repetitions
    python3 bench/run.py --reps 1 --only fanout-1000x1000 --servers shoal,node

Stdlib only. Needs: cargo, node/npm (bench/node), taskset.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "target", "release")
BENCH = os.path.join(TARGET, "shoal-bench")
SERVER_CORE = "0"
BENCH_CORE = "1"

# scenario name -> (shoal-bench arguments, the figures to report, a short description)
SCENARIOS = {
    "idle-10k": (["idle", "--clients", "10000", "--settle", "5"],
                 ["rss_per_client_bytes", "connects_per_s"], "10 000 idle WebSocket clients"),
    "idle-19k": (["idle", "--clients", "19500", "--settle", "5"],
                 ["rss_per_client_bytes", "connects_per_s"], "19 500 idle WebSocket clients (open-file cap)"),
    "fanout-1000x1000": (["fanout", "--clients", "1000", "--messages", "1000", "--payload", "100"],
                         ["delivered_per_s", "server_cpu_us_per_msg", "lost", "first_msg_ms_p50", "first_msg_ms_max"],
                         "burst of 1000 messages (100 B) to 1000 clients in one room"),
    "fanout-10000x100": (["fanout", "--clients", "10000", "--messages", "100", "--payload", "100"],
                         ["delivered_per_s", "server_cpu_us_per_msg", "lost", "first_msg_ms_p50", "first_msg_ms_max"],
                         "burst of 100 messages (100 B) to 10 000 clients in one room"),
    "echo-100": (["echo", "--clients", "100", "--duration", "10", "--warmup", "2", "--payload", "100"],
                 ["acks_per_s", "server_cpu_us_per_ack", "p50_us", "p99_us"],
                 "echo with ack, 100 clients in closed loop, 100 B"),
    "handshake": (["handshake", "--concurrency", "32", "--duration", "10"],
                  ["sessions_per_s", "server_cpu_us_per_session", "failures"],
                  "polling handshake + upgrade + namespace connect, 32 concurrent loops"),
}

# lower is better for these figures
LOWER_IS_BETTER = {"rss_per_client_bytes", "server_cpu_us_per_msg", "server_cpu_us_per_ack", "p50_us", "p99_us",
                   "lost", "first_msg_ms_p50", "first_msg_ms_max", "server_cpu_us_per_session", "failures"}


def sh(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def server_commands():
    return {
        "shoal": lambda p: [os.path.join(TARGET, "examples", "bench_server"), "--port", str(p), "--workers", "1"],
        "node": lambda p: ["node", os.path.join(ROOT, "bench", "node", "server.js"), "--port", str(p)],
        "socketioxide": lambda p: [os.path.join(ROOT, "bench", "socketioxide", "target", "release", "sx-bench"),
                                   "--port", str(p), "--workers", "1", "--buffer", "8192"],
        "floor": lambda p: [os.path.join(TARGET, "examples", "floor"), "--port", str(p)],
    }


def build(servers):
    sh(["cargo", "build", "--release", "-p", "shoal-bench", "--bin", "shoal-bench", "--example", "floor"], cwd=ROOT)
    if "shoal" in servers:
        sh(["cargo", "build", "--release", "-p", "shoal", "--example", "bench_server"], cwd=ROOT)
    if "node" in servers and not os.path.isdir(os.path.join(ROOT, "bench", "node", "node_modules")):
        sh(["npm", "ci", "--no-audit", "--no-fund"], cwd=os.path.join(ROOT, "bench", "node"))
    if "socketioxide" in servers:
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "bench", "socketioxide", "target"))
        sh(["cargo", "build", "--release", "--manifest-path",
            os.path.join(ROOT, "bench", "socketioxide", "Cargo.toml")], cwd=ROOT, env=env)


def start_server(name):
    port = free_port()
    cmd = ["taskset", "-c", SERVER_CORE] + server_commands()[name](port)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            return proc, port
    proc.kill()
    raise RuntimeError(f"{name} did not start")


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_one(name, scenario):
    args = SCENARIOS[scenario][0]
    proc, port = start_server(name)
    try:
        time.sleep(0.3)
        cmd = ["taskset", "-c", BENCH_CORE, BENCH, "--addr", f"127.0.0.1:{port}", "--server-pid", str(proc.pid),
               "--label", name, "--quiet"] + args
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return {"scenario": scenario, "server": name, "error": out.stderr.strip()[-300:]}
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["scenario_name"] = scenario
        return result
    finally:
        stop_server(proc)
        time.sleep(1.0)  # let TIME_WAIT sockets and memory settle between runs


def machine():
    def cmd(c):
        try:
            return subprocess.run(c, capture_output=True, text=True, shell=True).stdout.strip()
        except Exception:
            return "?"
    model = cmd("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = cmd("grep MemTotal /proc/meminfo | awk '{print $2}'")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1048576, 1) if mem.isdigit() else mem,
        "kernel": platform.release(),
        "rustc": cmd("rustc --version"),
        "node": cmd("node --version"),
        "socket.io": cmd(f"node -p \"require('{ROOT}/bench/node/node_modules/socket.io/package.json').version\""),
        "socketioxide": cmd(f"grep -A1 'name = \"socketioxide\"' {ROOT}/bench/socketioxide/Cargo.lock | grep version | cut -d'\"' -f2"),
        "open_files": cmd("ulimit -n"),
    }


def summarize(results):
    """{scenario: {server: {figure: (median, min, max, n)}}}"""
    table = {}
    for r in results:
        if "error" in r:
            continue
        sc, sv = r["scenario_name"], r["server"]
        for fig in SCENARIOS[sc][1] + ["capped", "clients"]:
            if fig in r:
                table.setdefault(sc, {}).setdefault(sv, {}).setdefault(fig, []).append(r[fig])
    out = {}
    for sc, servers in table.items():
        for sv, figs in servers.items():
            for fig, vals in figs.items():
                if fig == "capped":
                    out.setdefault(sc, {}).setdefault(sv, {})[fig] = any(vals)
                    continue
                nums = [float(v) for v in vals]
                out.setdefault(sc, {}).setdefault(sv, {})[fig] = (statistics.median(nums), min(nums), max(nums), len(nums))
    return out


def fmt(x):
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def svg_chart(scenario, figure, summary, servers):
    """A horizontal bar chart of medians with min-max whiskers."""
    rows = [(sv, summary[scenario][sv][figure]) for sv in servers
            if sv in summary.get(scenario, {}) and figure in summary[scenario][sv]]
    if not rows:
        return None
    width, bar_h, left, top = 640, 26, 120, 34
    height = top + len(rows) * (bar_h + 10) + 30
    vmax = max(r[1][2] for r in rows) or 1.0
    scale = (width - left - 90) / vmax
    colors = {"shoal": "#1f77b4", "node": "#2ca02c", "socketioxide": "#d62728", "floor": "#7f7f7f"}
    better = "lower is better" if figure in LOWER_IS_BETTER else "higher is better"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="10" y="20" font-weight="bold">{scenario}: {figure} ({better})</text>']
    for i, (sv, (med, lo, hi, _)) in enumerate(rows):
        y = top + i * (bar_h + 10)
        parts.append(f'<text x="10" y="{y + bar_h * 0.7}">{sv}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{max(med * scale, 1):.1f}" height="{bar_h}" fill="{colors.get(sv, "#999")}"/>')
        cy = y + bar_h / 2
        parts.append(f'<line x1="{left + lo * scale:.1f}" y1="{cy}" x2="{left + hi * scale:.1f}" y2="{cy}" stroke="black"/>')
        for x in (lo, hi):
            parts.append(f'<line x1="{left + x * scale:.1f}" y1="{cy - 6}" x2="{left + x * scale:.1f}" y2="{cy + 6}" stroke="black"/>')
        parts.append(f'<text x="{left + max(med, hi) * scale + 6:.1f}" y="{y + bar_h * 0.7}">{fmt(med)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_report(results, servers, reps, argv, path):
    summary = summarize(results)
    m = machine()
    plots_dir = os.path.join(os.path.dirname(path), "bench")
    os.makedirs(plots_dir, exist_ok=True)
    lines = ["# Benchmarks", "",
             f"Generated by `python3 bench/run.py {' '.join(argv)}` on {datetime.date.today().isoformat()}. "
             "Regenerate with `scripts/bench` (same command). Raw results: `docs/bench/results.json`.", "",
             "## Machine", ""]
    for k, v in m.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Method", "",
              f"- Every server runs pinned to core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), single-threaded "
              "(Shoal `bench_server --workers 1`, socketioxide `--workers 1`, Node is single-threaded); the load "
              f"generator `shoal-bench` runs pinned to core {BENCH_CORE} on a single-threaded runtime.",
              f"- Scenarios run interleaved (each scenario for every server in turn), {reps} repetition(s); the tables "
              "give the median and, in brackets, the range.",
              "- Server CPU time is read from `/proc/<pid>/task/*/schedstat` before and after the measured part; "
              "memory is the server's RSS (`/proc/<pid>/status`).",
              "- socketioxide runs with its per-socket buffer raised to 8192 packets (`--buffer 8192`; its default, "
              "128, drops most of a burst) and `max_payload` 1 MB, the same queue depth and payload limit as Shoal's "
              "defaults, so that no server loses messages. Node and Shoal run with their defaults.",
              "- `floor` is `shoal-bench`'s `floor` example: the same stack as Shoal (tokio, the `shoal-ws` framing, one "
              "task and one shared-bytes queue per connection) with no Engine.IO sessions, Socket.IO parsing or rooms. "
              "The distance to it is what the protocol layers cost.", ""]
    lines += ["## Results", ""]
    for sc, (args, figs, desc) in SCENARIOS.items():
        if sc not in summary:
            continue
        lines += [f"### {sc}", "", f"{desc}. `shoal-bench {' '.join(args)}`", ""]
        header = "| server | " + " | ".join(figs) + " |"
        lines += [header, "|" + "---|" * (len(figs) + 1)]
        for sv in servers:
            row = summary[sc].get(sv)
            if not row:
                continue
            cells = []
            for f in figs:
                if f in row:
                    med, lo, hi, n = row[f]
                    cells.append(f"{fmt(med)} [{fmt(lo)}–{fmt(hi)}]" if n > 1 else fmt(med))
                else:
                    cells.append("–")
            name = sv + (" (capped)" if row.get("capped") else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
        for f in figs[:2]:
            svg = svg_chart(sc, f, summary, servers)
            if svg:
                fname = f"{sc}-{f}.svg"
                with open(os.path.join(plots_dir, fname), "w") as fh:
                    fh.write(svg)
                lines.append(f"![{sc} {f}](bench/{fname})")
        lines.append("")
    errors = [r for r in results if "error" in r]
    if errors:
        lines += ["## Failed runs", ""]
        for e in errors:
            lines.append(f"- {e['server']} {e['scenario']}: {e['error'][:200]}")
        lines.append("")
    with open(os.path.join(plots_dir, "results.json"), "w") as fh:
        json.dump({"machine": m, "results": results}, fh, indent=1)
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--servers", default="shoal,node,socketioxide,floor")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    servers = [s for s in args.servers.split(",") if s]
    scenarios = [s for s in (args.only.split(",") if args.only else SCENARIOS.keys()) if s]
    if not shutil.which("taskset"):
        sys.exit("taskset is required (util-linux)")
    if not args.no_build:
        build(servers)
    results = []
    for rep in range(args.reps):
        for sc in scenarios:
            for sv in servers:
                if sv == "floor" and not sc.startswith(("fanout", "echo")):
                    continue
                print(f"== rep {rep + 1}/{args.reps} {sc} {sv}", file=sys.stderr, flush=True)
                r = run_one(sv, sc)
                print(json.dumps(r), flush=True)
                results.append(r)
    write_report(results, servers, args.reps, sys.argv[1:], args.out)


if __name__ == "__main__":
    main()
