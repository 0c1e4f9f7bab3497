#!/usr/bin/env python3
"""Runs the Socket.IO benchmark for Shoal, Node socket.io and socketioxide, interleaved,
and writes docs/benchmarks.md (tables of medians with ranges, SVG plots, the commands).

Each server runs pinned to core 0 (taskset), the load generator (shoal-bench) to core 1.
Every scenario is run for every server in turn, `--reps` times, so slow drifts of the
machine spread over all servers alike.

    python3 bench/run.py                    # everything, 3 repetitions
    python3 bench/run.py --reps 1 --only fanout-1000x1000 --servers shoal,node

With --cluster it runs the cross-node benchmark instead (several nodes sharing a Redis,
see cluster_main) and writes only its own section of docs/benchmarks.md:

    python3 bench/run.py --cluster                          # about 25 minutes
    python3 bench/run.py --cluster --reps 1 --quick --cluster-impls shoal-classic,node

Stdlib only. Needs: cargo, node/npm (bench/node), taskset; redis-server for --cluster.
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
import tempfile
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
                         ["delivered_per_s", "server_cpu_us_per_msg", "lost", "first_msg_ms_min", "first_msg_ms_p50",
                          "first_msg_ms_max"],
                         "burst of 1000 messages (100 B) to 1000 clients in one room"),
    "fanout-10000x100": (["fanout", "--clients", "10000", "--messages", "100", "--payload", "100"],
                         ["delivered_per_s", "server_cpu_us_per_msg", "lost", "first_msg_ms_min", "first_msg_ms_p50",
                          "first_msg_ms_max"],
                         "burst of 100 messages (100 B) to 10 000 clients in one room"),
    "echo-100": (["echo", "--clients", "100", "--duration", "10", "--warmup", "2", "--payload", "100"],
                 ["acks_per_s", "server_cpu_us_per_ack", "p50_us", "p99_us"],
                 "echo with ack, 100 clients in closed loop, 100 B"),
    "handshake": (["handshake", "--concurrency", "32", "--duration", "10"],
                  ["sessions_per_s", "server_cpu_us_per_session", "failures"],
                  "polling handshake + upgrade + namespace connect, 32 concurrent loops"),
    "soak-19k": (["soak", "--clients", "19500", "--duration", "600", "--rate", "5", "--sample-every", "10"],
                 ["rss_drift_pct", "rss_ref_kib", "rss_end_kib", "received"],
                 "19 500 clients for 10 minutes under 5 broadcasts/s (97 500 deliveries/s); RSS after the first "
                 "minute vs at the end"),
}

# Scenarios run only when asked for with --only (they take long).
ON_DEMAND = {"soak-19k"}

# lower is better for these figures
LOWER_IS_BETTER = {"rss_per_client_bytes", "rss_drift_pct", "first_msg_ms_min", "server_cpu_us_per_msg", "server_cpu_us_per_ack", "p50_us", "p99_us",
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
        "shoal": lambda p: [os.path.join(TARGET, "examples", "bench_server"), "--port", str(p), "--threads", "1"],
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
    cmds = []
    for r in results:
        c = r.get("run_command") or "python3 bench/run.py"
        if c not in cmds:
            cmds.append(c)
    lines = ["# Benchmarks", "",
             "Generated by " + ", then ".join(f"`{c}`" for c in cmds) +
             f" (last run {datetime.date.today().isoformat()}). `scripts/bench` reruns the default scenarios; "
             "on-demand scenarios name themselves with `--only`, and `--merge` keeps the other results. "
             "Raw results: `docs/bench/results.json`.", "",
             "## Machine", ""]
    for k, v in m.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "## Method", "",
              f"- Every server runs pinned to core {SERVER_CORE} (`taskset -c {SERVER_CORE}`), single-threaded "
              "(Shoal `bench_server --threads 1`, socketioxide `--workers 1`, Node is single-threaded); the load "
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
        floor, shoal = summary[sc].get("floor"), summary[sc].get("shoal")
        if floor and shoal:
            dist = []
            for f in figs:
                if f in floor and f in shoal and floor[f][0] and f not in ("lost",):
                    dist.append(f"{f} {shoal[f][0] / floor[f][0]:.2f}×")
            lines += ["", "Shoal relative to the floor (median / median): " + ", ".join(dist) + "."]
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
    text = "\n".join(lines)
    kept = read_section(path, CLUSTER_BEGIN, CLUSTER_END)  # the cross-node section, if any
    if kept:
        text = text.rstrip("\n") + "\n\n" + kept + "\n"
    with open(path, "w") as fh:
        fh.write(text)
    print(f"wrote {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--servers", default="shoal,node,socketioxide,floor")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--merge", action="store_true",
                    help="keep the results of docs/bench/results.json for scenarios not run now")
    ap.add_argument("--from-results", default="",
                    help="only re-render the report from this results.json (no run)")
    ap.add_argument("--cluster", action="store_true",
                    help="run the cross-node (Redis) benchmark instead, and write only its section")
    ap.add_argument("--cluster-impls", default=",".join(CLUSTER_IMPLS),
                    help="with --cluster: comma-separated implementations")
    ap.add_argument("--cluster-runs", default=",".join(CLUSTER_RUNS),
                    help="with --cluster: comma-separated runs")
    ap.add_argument("--quick", action="store_true",
                    help="with --cluster: short runs with fewer clients (a check, not figures to publish)")
    args = ap.parse_args()
    if args.cluster:
        cluster_main(args)
        return
    servers = [s for s in args.servers.split(",") if s]
    results_path = os.path.join(ROOT, "docs", "bench", "results.json")
    if args.from_results:
        with open(args.from_results) as fh:
            old = json.load(fh)["results"]
        write_report(old, servers, max(1, args.reps), sys.argv[1:], args.out)
        return
    scenarios = [s for s in (args.only.split(",") if args.only else [k for k in SCENARIOS if k not in ON_DEMAND]) if s]
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
                r["run_command"] = " ".join(["python3 bench/run.py"] + sys.argv[1:])
                print(json.dumps(r), flush=True)
                results.append(r)
    if args.merge and os.path.exists(results_path):
        with open(results_path) as fh:
            old = json.load(fh)["results"]
        ran = set(scenarios)
        results = [r for r in old if r.get("scenario_name") not in ran] + results
    write_report(results, servers, args.reps, sys.argv[1:], args.out)


# ---------------------------------------------------------------------------------------
# Cross-node benchmark: several nodes of one implementation sharing a Redis.
# ---------------------------------------------------------------------------------------

CLUSTER_BEGIN = "<!-- bench:cluster:begin (written by bench/run.py --cluster) -->"
CLUSTER_END = "<!-- bench:cluster:end -->"

REDIS_CORE = BENCH_CORE  # 2 cores: the nodes share core 0, Redis and the load generator core 1


def _cluster_cmds():
    shoal = os.path.join(TARGET, "examples", "bench_server")
    sx = os.path.join(ROOT, "bench", "socketioxide", "target", "release", "sx-bench")
    node = ["node", os.path.join(ROOT, "bench", "node", "server.js")]
    return {
        "shoal-classic": lambda p, url: [shoal, "--port", str(p), "--threads", "1", "--redis", url,
                                         "--redis-mode", "classic"],
        "shoal-sharded": lambda p, url: [shoal, "--port", str(p), "--threads", "1", "--redis", url,
                                         "--redis-mode", "sharded"],
        "node": lambda p, url: node + ["--port", str(p), "--redis", url],
        "node-sharded": lambda p, url: node + ["--port", str(p), "--redis", url, "--redis-mode", "sharded"],
        "socketioxide": lambda p, url: [sx, "--port", str(p), "--workers", "1", "--buffer", "8192", "--redis", url],
    }


# implementation -> what it is
CLUSTER_IMPLS = {
    "shoal-classic": "Shoal `bench_server --redis-mode classic`: PUBLISH/PSUBSCRIBE, the protocol of "
                     "`@socket.io/redis-adapter`'s `createAdapter`",
    "shoal-sharded": "Shoal `bench_server --redis-mode sharded`: SPUBLISH/SSUBSCRIBE, subscription mode `dynamic` "
                     "(one channel per room with members on the node), as `createShardedAdapter`",
    "node": "Node socket.io 4.8 + `@socket.io/redis-adapter` 8.3 `createAdapter` (classic) on node-redis 4",
    "node-sharded": "Node socket.io 4.8 + `@socket.io/redis-adapter` 8.3 `createShardedAdapter` "
                    "(`subscriptionMode: \"dynamic\"`) on node-redis 4",
    "socketioxide": "socketioxide 0.18 + `socketioxide-redis` 0.4 (`redis` driver, RESP3): its own protocol, "
                    "one request channel per namespace that every node receives",
}
# only in the "no member" run (the others compare the classic adapters and Shoal's sharded one)
NO_MEMBER_ONLY = {"node-sharded"}

_STEADY = ["--clients", "3000", "--rate", "10", "--payload", "100", "--warmup", "2", "--duration", "10"]
_SATURATION = ["--clients", "3000", "--rate", "0", "--max-in-flight", "16", "--payload", "100",
               "--warmup", "2", "--duration", "10"]
_NO_MEMBER = ["--room-clients-only-on-first", "--clients", "10", "--rate", "2000", "--payload", "100",
              "--idle", "5", "--warmup", "1", "--duration", "10"]
# run -> (nodes, shoal-bench cluster arguments)
CLUSTER_RUNS = {
    "steady-1": (1, _STEADY),
    "steady-3": (3, _STEADY),
    "saturation-1": (1, _SATURATION),
    "saturation-3": (3, _SATURATION),
    "no-member": (3, _NO_MEMBER),
}
# --quick: the same runs, shorter and with fewer clients
_QUICK = {"--clients": {"3000": "600"}, "--duration": "3", "--warmup": "1", "--idle": "2"}



def describe(nodes, args):
    """What a run does, in words, from its arguments."""
    a = {k: v for k, v in zip(args, args[1:]) if k.startswith("--")}
    clients, payload = int(a["--clients"]), a["--payload"]
    where = f"{nodes} node" + ("s" if nodes > 1 else "")
    if "--room-clients-only-on-first" in args:
        return (f"{where}, {clients} clients all on node 1, {a['--rate']} broadcasts/s of {payload} B to room "
                f"`bench`, which has no member on the other nodes")
    where += f", {clients} clients" + (f" ({clients // nodes} per node)" if nodes > 1 else "")
    if a["--rate"] == "0":
        return f"{where}, broadcasts of {payload} B as fast as delivered, at most {a['--max-in-flight']} in flight"
    return f"{where}, {a['--rate']} broadcasts/s of {payload} B"


def quick_args(args):
    out = list(args)
    for i, a in enumerate(out[:-1]):
        rule = _QUICK.get(a)
        if isinstance(rule, dict):
            out[i + 1] = rule.get(out[i + 1], out[i + 1])
        elif rule is not None:
            out[i + 1] = rule
    return out


def read_section(path, begin, end):
    """The text from `begin` to `end` (markers included) in the file at `path`, or None."""
    try:
        with open(path) as fh:
            text = fh.read()
    except FileNotFoundError:
        return None
    i = text.find(begin)
    j = text.find(end, i + 1) if i >= 0 else -1
    return text[i:j + len(end)] if i >= 0 and j >= 0 else None


def write_section(path, begin, end, body):
    """Replaces the section between `begin` and `end` in the file at `path` (appends it if
    the file has none, creates the file if there is none); the rest is kept as it is."""
    section = f"{begin}\n{body.rstrip()}\n{end}"
    try:
        with open(path) as fh:
            text = fh.read()
    except FileNotFoundError:
        text = "# Benchmarks\n"
    i = text.find(begin)
    j = text.find(end, i + 1) if i >= 0 else -1
    if i >= 0 and j >= 0:
        text = text[:i] + section + text[j + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as fh:
        fh.write(text)


def start_process(cmd, what, stderr):
    """Starts a server and waits for its `listening on` line."""
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            return proc
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{what} did not start")


def redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
            c.sendall(b"PING\r\n")
            return c.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_redis():
    port = free_port()
    cmd = ["taskset", "-c", REDIS_CORE, "redis-server", "--port", str(port), "--bind", "127.0.0.1",
           "--save", "", "--appendonly", "no"]
    print("+", " ".join(c if c else '""' for c in cmd), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        if redis_ping(port):
            return proc, port
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def cluster_build(impls):
    build((["shoal"] if any(i.startswith("shoal") for i in impls) else [])
          + (["socketioxide"] if "socketioxide" in impls else []))
    # node_modules from before the Redis adapter was added lack it
    if any(i.startswith("node") for i in impls) and not os.path.isdir(
            os.path.join(ROOT, "bench", "node", "node_modules", "@socket.io", "redis-adapter")):
        sh(["npm", "ci", "--no-audit", "--no-fund"], cwd=os.path.join(ROOT, "bench", "node"))


def cluster_run_one(impl, run, redis_url, redis_pid, quick):
    """Starts the nodes of `impl` (pinned to core 0), runs shoal-bench's cluster scenario
    against them (pinned to core 1) and stops them. Returns the JSON line as a dict."""
    nodes, args = CLUSTER_RUNS[run]
    if quick:
        args = quick_args(args)
    procs = []
    logs = tempfile.TemporaryFile(mode="w+")
    try:
        try:
            for _ in range(nodes):
                port = free_port()
                cmd = ["taskset", "-c", SERVER_CORE] + _cluster_cmds()[impl](port, redis_url)
                procs.append((start_process(cmd, impl, logs), port))
        except RuntimeError as e:
            logs.seek(0)
            return {"run": run, "server": impl, "error": f"{e}: {logs.read()[-300:]}"}
        time.sleep(0.5)
        cmd = ["taskset", "-c", BENCH_CORE, BENCH, "--label", impl, "--quiet", "cluster",
               "--addrs", ",".join(f"127.0.0.1:{p}" for _, p in procs),
               "--server-pids", ",".join(str(pr.pid) for pr, _ in procs),
               "--redis-pid", str(redis_pid)] + args
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            logs.seek(0)
            return {"run": run, "server": impl, "error": (out.stderr.strip() + " " + logs.read())[-300:]}
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["run"] = run
        derive_figures(result)
        return result
    finally:
        for pr, _ in procs:
            stop_server(pr)
        logs.close()
        time.sleep(1.0)


def derive_figures(r):
    """CPU shares over the window, and figures of the nodes other than the sender's from
    the per-node CPU readings."""
    if r.get("duration_s"):
        for src, dst in (("server_cpu_s", "server_cpu_pct"), ("bench_window_cpu_s", "bench_cpu_pct")):
            if src in r:
                r[dst] = round(r[src] * 100 / r["duration_s"], 1)
    per_1000 = r.get("nodes_cpu_ms_per_1000_broadcasts") or []
    busy = r.get("nodes_cpu_s") or []
    idle = r.get("nodes_idle_cpu_s") or []
    if per_1000 and per_1000[0] is not None:
        r["node1_ms_per_1000"] = per_1000[0]
    others = [x for x in per_1000[1:] if x is not None]
    if others:
        r["others_ms_per_1000"] = round(statistics.mean(others), 3)
    others = [x for x in busy[1:] if x is not None]
    if others and r.get("duration_s"):
        r["others_busy_ms_per_s"] = round(statistics.mean(others) * 1000 / r["duration_s"], 3)
    others = [x for x in idle[1:] if x is not None]
    if others and r.get("idle_s"):
        r["others_idle_ms_per_s"] = round(statistics.mean(others) * 1000 / r["idle_s"], 3)


def cluster_summarize(results):
    """{run: {impl: {figure: (median, min, max, n)}}}"""
    table = {}
    for r in results:
        if "error" in r:
            continue
        for fig, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                table.setdefault(r["run"], {}).setdefault(r["server"], {}).setdefault(fig, []).append(float(v))
    return {run: {impl: {f: (statistics.median(v), min(v), max(v), len(v)) for f, v in figs.items()}
                  for impl, figs in impls.items()} for run, impls in table.items()}


IMPL_COLORS = {"shoal-classic": "#1f77b4", "shoal-sharded": "#17becf", "node": "#2ca02c",
               "node-sharded": "#98df8a", "socketioxide": "#d62728"}


def svg_bars(title, rows):
    """A horizontal bar chart: rows of (label, (median, min, max), color), whiskers for the range."""
    if not rows:
        return None
    width, bar_h, left, top = 680, 24, 190, 34
    height = top + len(rows) * (bar_h + 8) + 24
    vmax = max(max(r[1][0], r[1][2]) for r in rows) or 1.0
    scale = (width - left - 90) / vmax
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="13">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="10" y="20" font-weight="bold">{title}</text>']
    for i, (label, (med, lo, hi), color) in enumerate(rows):
        y = top + i * (bar_h + 8)
        lo, hi, med = max(lo, 0.0), max(hi, 0.0), max(med, 0.0)
        parts.append(f'<text x="10" y="{y + bar_h * 0.7}">{label}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{max(med * scale, 1):.1f}" height="{bar_h}" fill="{color}"/>')
        cy = y + bar_h / 2
        parts.append(f'<line x1="{left + lo * scale:.1f}" y1="{cy}" x2="{left + hi * scale:.1f}" y2="{cy}" '
                     f'stroke="black"/>')
        for x in (lo, hi):
            parts.append(f'<line x1="{left + x * scale:.1f}" y1="{cy - 6}" x2="{left + x * scale:.1f}" '
                         f'y2="{cy + 6}" stroke="black"/>')
        parts.append(f'<text x="{left + max(med, hi) * scale + 6:.1f}" y="{y + bar_h * 0.7}">{fmt(med)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def cell(row, fig, scale=1.0):
    if not row or fig not in row:
        return "–"
    med, lo, hi, n = row[fig]
    med, lo, hi = med * scale, lo * scale, hi * scale
    return f"{fmt(med)} [{fmt(lo)}–{fmt(hi)}]" if n > 1 else fmt(med)


def cluster_machine():
    def cmd(c):
        try:
            return subprocess.run(c, capture_output=True, text=True, shell=True).stdout.strip()
        except Exception:
            return "?"
    nm = os.path.join(ROOT, "bench", "node", "node_modules")
    lock = os.path.join(ROOT, "bench", "socketioxide", "Cargo.lock")
    return {
        "redis-server": (re.findall(r"v=(\S+)", cmd("redis-server --version")) or ["?"])[0],
        "@socket.io/redis-adapter": cmd(f"node -p \"require('{nm}/@socket.io/redis-adapter/package.json').version\""),
        "redis (node-redis)": cmd(f"node -p \"require('{nm}/redis/package.json').version\""),
        "socketioxide-redis": cmd(f"grep -A1 'name = \"socketioxide-redis\"' {lock} | grep version | cut -d'\"' -f2"),
    }


def cluster_report(results, impls, runs, reps, quick, argv, path):
    summary = cluster_summarize(results)
    plots_dir = os.path.join(os.path.dirname(path), "bench")
    os.makedirs(plots_dir, exist_ok=True)
    m = machine()
    m.update(cluster_machine())
    main_impls = [i for i in impls if i not in NO_MEMBER_ONLY]
    steady, saturation = (quick_args(a) if quick else a for a in (_STEADY, _SATURATION))
    node_share = ""
    row = summary.get("steady-3", {}).get("node", {})
    if "server_cpu_s" in row and row.get("duration_s", (0,))[0] > 0:
        node_share = f" (Node's 3 nodes use {row['server_cpu_s'][0] * 100 / row['duration_s'][0]:.0f} % of core 0 there)"

    def plot(name, title, rows):
        svg = svg_bars(title, rows)
        if not svg:
            return []
        with open(os.path.join(plots_dir, name), "w") as fh:
            fh.write(svg)
        return [f"![{title}](bench/{name})", ""]

    def rows_of(run, fig, scale=1.0, which=None, label=None):
        out = []
        for i in which or main_impls:
            row = summary.get(run, {}).get(i)
            if row and fig in row:
                med, lo, hi, _ = row[fig]
                out.append(((label or (lambda x: x))(i), (med * scale, lo * scale, hi * scale),
                            IMPL_COLORS.get(i, "#999")))
        return out

    lines = ["## Cross-node (Redis)", "",
             f"Generated by `python3 bench/run.py {' '.join(argv)}` on {datetime.date.today().isoformat()}"
             + (" with `--quick` (short runs, fewer clients: a check, not figures to quote)" if quick else "")
             + ". Raw results: `docs/bench/cluster-results.json`.", "",
             "### Machine", ""]
    for k, v in m.items():
        lines.append(f"- {k}: {v}")
    lines += ["", "### Method", "",
              f"- The machine has {m['cores']} cores. All server nodes run pinned to core {SERVER_CORE} "
              f"(`taskset -c {SERVER_CORE}`), each single-threaded; Redis (`redis-server --save \"\" --appendonly "
              f"no`) and the load generator (`shoal-bench cluster`, single-threaded) share core {BENCH_CORE}. "
              "Three nodes therefore share one core: the 3-node figures show what going through Redis costs "
              "and how the work spreads, not added capacity (on separate cores or hosts the capacity adds up).",
              "- Implementations:"]
    for i in impls:
        lines.append(f"  - `{i}`: {CLUSTER_IMPLS[i]}")
    lines += ["- socketioxide-redis does not speak `@socket.io/redis-adapter`'s protocol (msgpack requests on "
              "`socket.io-request#/#`, RESP3 required), so its nodes only talk to each other; Shoal's classic mode "
              "and Node's adapter speak the same protocol (Shoal and Node nodes can be mixed: see "
              "[redis.md](redis.md)).",
              "- Clients connect round-robin: client *i* to node *i* mod *n*. One sender, the first client of node 1, "
              "emits `broadcast` (the server emits `msg` to room `bench`, where every client is, the sender "
              "included). Each payload is a JSON string that carries the sender's send time in microseconds "
              "(`\"t:<µs>:aaaa…\"`, padded to the payload size); receivers are in the same process and clock, so "
              "the latency from emit to delivery needs no clock sync.",
              "- Phases: warm-up (sending, not counted), then the measured window. Expected = broadcasts sent in "
              "the window × clients; after the window the run waits up to 5 s for the rest (what is still missing "
              "is *lost*). *delivered/s* counts every message received while the window is open. Latency "
              "percentiles are over the measured messages; *remote* ones only over clients of nodes 2 and 3 "
              "(through Redis).",
              "- *server CPU/msg* is the nodes' CPU time summed (`/proc/<pid>/task/*/schedstat`, read at both ends "
              "of the window) divided by the messages delivered. *Redis CPU* and the load generator's CPU "
              "(*bench CPU*) are over the window too.",
              f"- *steady* ({describe(3, steady)}): low enough that every server, Node included, keeps up"
              + node_share +
              "; the figures to compare are latency and CPU per message. "
              f"*saturation* ({describe(3, saturation)}): the sender sends whenever fewer than "
              f"{saturation[saturation.index('--max-in-flight') + 1]} broadcasts are not yet delivered to every "
              "client, so the "
              "delivery rate is what the nodes (sharing one core) manage; no queue grows without bound and "
              "nothing is dropped.",
              f"- Runs are interleaved (every run for every implementation in turn), {reps} repetition(s); tables "
              "give the median and, in brackets, the range. Nodes are started afresh for every run; one Redis "
              "serves the whole benchmark.", ""]

    if "steady-3" in summary or "saturation-3" in summary:
        lines += ["### Cross-node fan-out, 3 nodes", ""]
    for run in ("steady-3", "saturation-3"):
        if run not in summary:
            continue
        nodes, args = CLUSTER_RUNS[run]
        lines += [f"**{run}**: {describe(nodes, quick_args(args) if quick else args)}.", "",
                  "| implementation | delivered/s | p50 ms | p99 ms | remote p50 ms | remote p99 ms "
                  "| server CPU µs/msg | nodes CPU % | lost | Redis CPU s | bench CPU % |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for i in main_impls:
            row = summary[run].get(i)
            if not row:
                continue
            lines.append(f"| {i} | {cell(row, 'delivered_per_s')} | {cell(row, 'p50_us', 1e-3)} | "
                         f"{cell(row, 'p99_us', 1e-3)} | {cell(row, 'remote_p50_us', 1e-3)} | "
                         f"{cell(row, 'remote_p99_us', 1e-3)} | {cell(row, 'server_cpu_us_per_msg')} | "
                         f"{cell(row, 'server_cpu_pct')} | {cell(row, 'lost')} | {cell(row, 'redis_cpu_s')} | "
                         f"{cell(row, 'bench_cpu_pct')} |")
        lines.append("")
    if "steady-3" in summary or "saturation-3" in summary:
        lines += ["*nodes CPU %*: the nodes' CPU time over the window, summed, in % of one core (they share core "
                  f"{SERVER_CORE}: 100 % is all of it). *bench CPU %*: the load generator's, on core {BENCH_CORE}; "
                  "close to 100 %, the load generator set the pace and delivered/s is a lower bound of what the "
                  "nodes can do.", ""]
    lines += plot("cluster-steady-3-p99.svg", "steady, 3 nodes: p99 latency emit to delivery, ms (lower is better)",
                  rows_of("steady-3", "p99_us", 1e-3))
    lines += plot("cluster-steady-3-cpu.svg", "steady, 3 nodes: server CPU µs per message (lower is better)",
                  rows_of("steady-3", "server_cpu_us_per_msg"))
    lines += plot("cluster-saturation-3-rate.svg", "saturation, 3 nodes: messages delivered/s (higher is better)",
                  rows_of("saturation-3", "delivered_per_s"))

    scaling = any(r in summary for r in ("steady-1", "saturation-1"))
    lines += [] if not scaling else ["### From 1 node to 3", "",
              f"The same {steady[steady.index('--clients') + 1]} clients and sender on 1 node, then spread over 3 "
              "(the Redis adapter is on in both, "
              "so only the node count changes). The nodes share one core, so the ideal is equal throughput and "
              "CPU per message at 1 and 3 nodes; the difference is what the cross-node path costs.", "",
              "| implementation | steady p50 ms 1 → 3 | steady p99 ms 1 → 3 | steady CPU µs/msg 1 → 3 "
              "| saturation delivered/s 1 → 3 | 3 nodes / 1 node |",
              "|---|---|---|---|---|---|"]
    for i in main_impls:
        s1, s3 = summary.get("steady-1", {}).get(i), summary.get("steady-3", {}).get(i)
        t1, t3 = summary.get("saturation-1", {}).get(i), summary.get("saturation-3", {}).get(i)
        if not scaling or not any((s1, s3, t1, t3)):
            continue
        ratio = "–"
        if t1 and t3 and "delivered_per_s" in t1 and "delivered_per_s" in t3 and t1["delivered_per_s"][0] > 0:
            ratio = f"{t3['delivered_per_s'][0] / t1['delivered_per_s'][0]:.2f}"
        lines.append(f"| {i} | {cell(s1, 'p50_us', 1e-3)} → {cell(s3, 'p50_us', 1e-3)} | "
                     f"{cell(s1, 'p99_us', 1e-3)} → {cell(s3, 'p99_us', 1e-3)} | "
                     f"{cell(s1, 'server_cpu_us_per_msg')} → {cell(s3, 'server_cpu_us_per_msg')} | "
                     f"{cell(t1, 'delivered_per_s')} → {cell(t3, 'delivered_per_s')} | {ratio} |")
    lines += [""] if scaling else []
    scaling_rows = []
    for i in main_impls:
        for run, tag in (("saturation-1", "1 node"), ("saturation-3", "3 nodes")):
            scaling_rows += rows_of(run, "delivered_per_s", which=[i], label=lambda x, t=tag: f"{x}, {t}")
    lines += plot("cluster-scaling.svg", "saturation: messages delivered/s, 1 and 3 nodes (higher is better)",
                  scaling_rows)

    if "no-member" in summary:
        nodes, args = CLUSTER_RUNS["no-member"]
        desc = describe(nodes, quick_args(args) if quick else args)
        lines += ["### A broadcast to a room with no member on the node", "",
                  f"{desc}. Nodes 2 and 3 hold no client (the benchmark contract puts every socket in `bench` "
                  "and in its own room, and has no join/leave, so a node without members of `bench` is a node "
                  "without clients; a socket-id room would not do either: in `dynamic` mode, like Node, Shoal "
                  "sends rooms that look like socket ids — 20 characters — on the main channel, which every node "
                  "receives; only `dynamic-private` gives them their own channels). Each node's CPU is read over "
                  f"a quiet phase first (nothing sent), then over the stream. *ms per 1000 broadcasts* is a "
                  "node's CPU during the stream less its idle level, per 1000 broadcasts; for nodes 2 and 3, the "
                  "mean of the two (about 0, or slightly negative, means no difference from idle).", "",
                  "| implementation | node 1 (sender's) ms / 1000 broadcasts | nodes 2, 3: ms / 1000 broadcasts "
                  "| nodes 2, 3: CPU ms/s streaming | nodes 2, 3: CPU ms/s idle | Redis CPU s | lost |",
                  "|---|---|---|---|---|---|---|"]
        for i in impls:
            row = summary["no-member"].get(i)
            if not row:
                continue
            lines.append(f"| {i} | {cell(row, 'node1_ms_per_1000')} | {cell(row, 'others_ms_per_1000')} | "
                         f"{cell(row, 'others_busy_ms_per_s')} | {cell(row, 'others_idle_ms_per_s')} | "
                         f"{cell(row, 'redis_cpu_s')} | {cell(row, 'lost')} |")
        lines += ["", "In classic mode every node `PSUBSCRIBE`s `socket.io#/#*` and receives every broadcast, "
                  "then finds no member and drops it; in sharded `dynamic` mode a node subscribes to "
                  "`socket.io#/#bench#` only while it has members in `bench`, so Redis does not send it the "
                  "broadcast at all. socketioxide-redis sends every broadcast to every node.", ""]
        lines += plot("cluster-no-member.svg", "nodes without members: CPU ms per 1000 broadcasts (lower is better)",
                      rows_of("no-member", "others_ms_per_1000", which=impls))

    lines += ["### Commands", "",
              "Ports are free ports picked at run time; `P` is Redis's. Every node:", "", "```sh",
              f"taskset -c {REDIS_CORE} redis-server --port P --bind 127.0.0.1 --save \"\" --appendonly no"]
    for i in impls:
        cmd = _cluster_cmds()[i]("PORT", "redis://127.0.0.1:P")
        cmd = [os.path.relpath(c, ROOT) if os.path.isabs(c) else c for c in cmd]
        lines.append(f"taskset -c {SERVER_CORE} {' '.join(cmd)}   # {i}")
    lines += ["```", "", "The load generator, per run (`--addrs` and `--server-pids` list the run's 1 or 3 nodes):",
              "", "```sh"]
    for run in runs:
        nodes, args = CLUSTER_RUNS[run]
        if quick:
            args = quick_args(args)
        addrs = ",".join(f"127.0.0.1:PORT{k + 1}" for k in range(nodes))
        pids = ",".join(f"PID{k + 1}" for k in range(nodes))
        lines.append(f"taskset -c {BENCH_CORE} target/release/shoal-bench --label IMPL --quiet cluster "
                     f"--addrs {addrs} --server-pids {pids} --redis-pid REDIS_PID {' '.join(args)}   # {run}")
    lines += ["```", ""]
    errors = [r for r in results if "error" in r]
    if errors:
        lines += ["### Failed runs", ""]
        for e in errors:
            lines.append(f"- {e['server']} {e['run']}: {e['error'][:200]}")
        lines.append("")
    with open(os.path.join(plots_dir, "cluster-results.json"), "w") as fh:
        json.dump({"machine": m, "results": results}, fh, indent=1)
    write_section(path, CLUSTER_BEGIN, CLUSTER_END, "\n".join(lines))
    print(f"wrote the cross-node section of {path}", file=sys.stderr)


def cluster_main(args):
    impls = [i for i in args.cluster_impls.split(",") if i]
    runs = [r for r in args.cluster_runs.split(",") if r]
    for i in impls:
        if i not in CLUSTER_IMPLS:
            sys.exit(f"unknown implementation {i!r} (known: {', '.join(CLUSTER_IMPLS)})")
    for r in runs:
        if r not in CLUSTER_RUNS:
            sys.exit(f"unknown run {r!r} (known: {', '.join(CLUSTER_RUNS)})")
    for tool in ("taskset", "redis-server"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required")
    if not args.no_build:
        cluster_build(impls)
    redis, port = start_redis()
    url = f"redis://127.0.0.1:{port}"
    results = []
    try:
        for rep in range(args.reps):
            for run in runs:
                for impl in impls:
                    if impl in NO_MEMBER_ONLY and run != "no-member":
                        continue
                    print(f"== rep {rep + 1}/{args.reps} {run} {impl}", file=sys.stderr, flush=True)
                    r = cluster_run_one(impl, run, url, redis.pid, args.quick)
                    print(json.dumps(r), flush=True)
                    results.append(r)
    finally:
        stop_server(redis)
    cluster_report(results, impls, runs, args.reps, args.quick, sys.argv[1:], args.out)


if __name__ == "__main__":
    main()
