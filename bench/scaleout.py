#!/usr/bin/env python3
"""Scale-out benchmarks (issue 5), one section of docs/benchmarks.md (between the
bench:scaleout markers), raw results in docs/bench/scaleout-results.json:

1. Proxy overhead: the same workloads sent to one Shoal node directly and through
   `shoal balance`, HAProxy and nginx, interleaved.
2. The forwarding hop: polling clients whose requests reach the session's owner directly,
   or through another node that forwards them (two nodes on one Redis).
3. Cluster mode: fan-out of `bench_server --workers 2` (primary + 2 worker processes,
   embedded adapter) against one process.

    python3 bench/scaleout.py                    # everything, 3 repetitions
    python3 bench/scaleout.py --parts proxies --reps 1 --proxies direct,haproxy

Placement on this 2-core machine: the Shoal node (`bench_server --threads 1`) on core 0;
the proxy and the load generator share core 1 (a proxy is usually on another machine; here
every proxy pays the same price). nginx runs one worker process, HAProxy one thread and
`shoal balance` one runtime thread (TOKIO_WORKER_THREADS=1). The proxy's CPU time is read
from /proc for all its processes over the whole run (connection set-up included).

Needs what bench/run.py needs, plus haproxy and nginx (Debian packages; scripts/deps
installs them).
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as base  # noqa: E402  (bench/run.py: shared helpers)

SHOAL = os.path.join(base.TARGET, "shoal")
SERVER = os.path.join(base.TARGET, "examples", "bench_server")
BEGIN = "<!-- bench:scaleout:begin (written by bench/scaleout.py) -->"
END = "<!-- bench:scaleout:end -->"

PROXIES = {
    "direct": "no proxy: clients connect to the node",
    "shoal-balance": "`shoal balance --strategy least-connections` (one runtime thread)",
    "haproxy": "HAProxy (`nbthread 1`, HTTP mode, keep-alive both sides)",
    "nginx": "nginx (`worker_processes 1`, HTTP/1.1 and keep-alive to the upstream)",
}
NODE_ID = "bnch"
COLORS = {"direct": "#7f7f7f", "shoal-balance": "#1f77b4", "haproxy": "#ff7f0e", "nginx": "#2ca02c"}

# scenario -> (shoal-bench arguments, figures, the unit of work for the proxy's CPU, text)
SCENARIOS = {
    "echo-100": (base.SCENARIOS["echo-100"][0], ["acks_per_s", "p50_us", "p99_us", "proxy_cpu_us_per_unit"], "acks",
                 "echo with ack, 100 clients in closed loop, 100 B (WebSocket through the proxy)"),
    "fanout-1000x1000": (base.SCENARIOS["fanout-1000x1000"][0],
                         ["delivered_per_s", "first_msg_ms_p50", "lost", "proxy_cpu_us_per_unit"], "delivered",
                         "burst of 1000 messages (100 B) to 1000 clients in one room"),
    "handshake": (base.SCENARIOS["handshake"][0], ["sessions_per_s", "failures", "proxy_cpu_us_per_unit"], "sessions",
                  "polling handshake + upgrade + namespace connect, 32 concurrent loops (a new proxied HTTP "
                  "request for each step)"),
}
LOWER = {"p50_us", "p99_us", "first_msg_ms_p50", "lost", "failures", "proxy_cpu_us_per_unit"}

HAPROXY_CFG = """global
    nbthread 1
    maxconn 9000
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
frontend fe
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    server n1 127.0.0.1:{upstream}
"""

NGINX_CFG = """worker_processes 1;
daemon off;
user root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 16000; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream nodes {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            proxy_pass http://nodes;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


def wait_port(port, proc, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with base.socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def start_proxy(name, upstream, tmp):
    """Starts the proxy on core 1 in front of 127.0.0.1:upstream; returns (proc, port)."""
    port = base.free_port()
    pin = ["taskset", "-c", base.BENCH_CORE]
    env = dict(os.environ)
    if name == "shoal-balance":
        # the node id is given (bench_server has no /health to learn it from), and active
        # health checks are off (they would get 404 from bench_server)
        cmd = pin + [SHOAL, "balance", "--host", "127.0.0.1", "--port", str(port),
                     "--upstream", f"{NODE_ID}@127.0.0.1:{upstream}", "--health-interval", "0", "--log", "warn"]
        env["TOKIO_WORKER_THREADS"] = "1"
    elif name == "haproxy":
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as fh:
            fh.write(HAPROXY_CFG.format(port=port, upstream=upstream))
        cmd = pin + ["haproxy", "-db", "-f", cfg]
    elif name == "nginx":
        d = os.path.join(tmp, "nginx")
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "nginx.conf")
        with open(cfg, "w") as fh:
            fh.write(NGINX_CFG.format(port=port, upstream=upstream, dir=d))
        cmd = pin + ["nginx", "-p", d, "-c", cfg]
    else:
        raise ValueError(name)
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wait_port(port, proc, name)
    return proc, port


def tree_pids(root):
    """The pid and every descendant (nginx's workers)."""
    pids, todo = [], [root]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(x) for x in fh.read().split()]
        except OSError:
            pass
    return pids


def cpu_s(pids):
    total = 0
    for p in pids:
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/schedstat") as fh:
                    total += int(fh.read().split()[0])
        except OSError:
            pass
    return total / 1e9


def run_proxy(proxy, scenario):
    args, _, unit, _ = SCENARIOS[scenario]
    upstream = base.free_port()
    server = base.start_process(["taskset", "-c", base.SERVER_CORE, SERVER, "--port", str(upstream),
                                 "--threads", "1", "--node-id", NODE_ID], "bench_server", subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="shoal-proxies-")
    proc = None
    try:
        addr_port = upstream
        if proxy != "direct":
            proc, addr_port = start_proxy(proxy, upstream, tmp)
        time.sleep(0.3)
        pids = tree_pids(proc.pid) if proc else []
        before = cpu_s(pids)
        cmd = ["taskset", "-c", base.BENCH_CORE, base.BENCH, "--addr", f"127.0.0.1:{addr_port}",
               "--server-pid", str(server.pid), "--label", proxy, "--quiet"] + args
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        proxy_cpu = cpu_s(pids) - before if proc else 0.0
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return {"part": "proxies", "scenario_name": scenario, "variant": proxy, "error": out.stderr.strip()[-300:]}
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["part"] = "proxies"
        r["scenario_name"] = scenario
        r["variant"] = proxy
        r["proxy_cpu_s"] = round(proxy_cpu, 3)
        if proc and r.get(unit):
            r["proxy_cpu_us_per_unit"] = round(proxy_cpu * 1e6 / r[unit], 3)
        return r
    finally:
        if proc:
            base.stop_server(proc)
        base.stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)
        time.sleep(1.0)



# --- 2. the forwarding hop -------------------------------------------------------------

FORWARD_VARIANTS = {
    "owner": "every request of a session sent to the node that owns it",
    "forwarded": "the handshake on the owner, every later request (polling GET/POST) sent to the other node, "
                 "which forwards it to the owner",
}
POLL_ARGS = ["poll", "--clients", "50", "--duration", "10", "--warmup", "2", "--payload", "100"]
FORWARD_FIGS = ["acks_per_s", "p50_us", "p99_us", "server_cpu_us_per_ack", "via_cpu_us_per_ack", "client_errors"]


def run_forward(variant, redis_url):
    """Two nodes on one Redis (core 0); polling clients (core 1) open their sessions on
    node A and send the rest to A (owner) or to B (forwarded)."""
    nodes = []
    try:
        for node_id in ("AAAA", "BBBB"):
            port = base.free_port()
            cmd = ["taskset", "-c", base.SERVER_CORE, SERVER, "--port", str(port), "--threads", "1",
                   "--redis", redis_url, "--node-id", node_id]
            nodes.append((base.start_process(cmd, "bench_server", subprocess.DEVNULL), port))
        time.sleep(3.0)  # membership: each node has seen the other's announcement
        (a, pa), (b, pb) = nodes
        args = list(POLL_ARGS)
        if variant == "forwarded":
            args += ["--via", f"127.0.0.1:{pb}", "--via-pid", str(b.pid)]
        cmd = ["taskset", "-c", base.BENCH_CORE, base.BENCH, "--addr", f"127.0.0.1:{pa}", "--server-pid", str(a.pid),
               "--label", variant, "--quiet"] + args
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return {"part": "forwarding", "scenario_name": "poll-50", "variant": variant,
                    "error": out.stderr.strip()[-300:]}
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r.update(part="forwarding", scenario_name="poll-50", variant=variant)
        return r
    finally:
        for pr, _ in nodes:
            base.stop_server(pr)
        time.sleep(1.0)


# --- 3. cluster mode ---------------------------------------------------------------------

WORKER_VARIANTS = {
    "1 process, 1 thread": (["--threads", "1"], base.SERVER_CORE),
    "1 process, 2 threads": (["--threads", "2"], "0,1"),
    "cluster, 2 workers": (["--workers", "2"], "0,1"),
}
WORKER_SCENARIOS = ["fanout-1000x1000", "fanout-10000x100"]
WORKER_FIGS = ["delivered_per_s", "lost", "first_msg_ms_p50", "server_cpu_us_per_unit"]


def run_workers(variant, scenario):
    flags, cores = WORKER_VARIANTS[variant]
    port = base.free_port()
    server = base.start_process(["taskset", "-c", cores, SERVER, "--port", str(port)] + flags, "bench_server",
                                subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        pids = tree_pids(server.pid)
        before = cpu_s(pids)
        cmd = ["taskset", "-c", base.BENCH_CORE, base.BENCH, "--addr", f"127.0.0.1:{port}", f"--label={variant}",
               "--quiet"] + base.SCENARIOS[scenario][0]
        print("+", " ".join(cmd), file=sys.stderr, flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        used = cpu_s(tree_pids(server.pid)) - before
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return {"part": "workers", "scenario_name": scenario, "variant": variant, "error": out.stderr.strip()[-300:]}
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r.update(part="workers", scenario_name=scenario, variant=variant, server_tree_cpu_s=round(used, 3))
        if r.get("delivered"):
            r["server_cpu_us_per_unit"] = round(used * 1e6 / r["delivered"], 3)
        return r
    finally:
        base.stop_server(server)
        time.sleep(1.0)


# --- the report --------------------------------------------------------------------------

def summarize(results, part, figs_of):
    table = {}
    for r in results:
        if "error" in r or r.get("part") != part:
            continue
        for fig in figs_of(r["scenario_name"]):
            if fig in r:
                table.setdefault(r["scenario_name"], {}).setdefault(r["variant"], {}).setdefault(fig, []).append(
                    float(r[fig]))
    return {sc: {v: {f: (statistics.median(x), min(x), max(x), len(x)) for f, x in figs.items()}
                 for v, figs in vs.items()} for sc, vs in table.items()}


def cell(row, f):
    if f not in row:
        return "–"
    med, lo, hi, n = row[f]
    return f"{base.fmt(med)} [{base.fmt(lo)}–{base.fmt(hi)}]" if n > 1 else base.fmt(med)


def table(lines, rows_of, variants, figs, first="variant"):
    lines += [f"| {first} | " + " | ".join(figs) + " |", "|---|" + "---|" * len(figs)]
    for v in variants:
        row = rows_of.get(v)
        if row:
            lines.append(f"| {v} | " + " | ".join(cell(row, f) for f in figs) + " |")
    lines.append("")


def plot(lines, plots, name, title, rows):
    svg = base.svg_bars(title, rows)
    if svg:
        with open(os.path.join(plots, name), "w") as fh:
            fh.write(svg)
        lines += [f"![{title}](bench/{name})", ""]


def report(results, parts, proxies, reps, argv, path):
    plots = os.path.join(os.path.dirname(path), "bench")
    os.makedirs(plots, exist_ok=True)
    versions = {
        "haproxy": subprocess.run("haproxy -v | head -1", shell=True, capture_output=True, text=True).stdout.strip(),
        "nginx": subprocess.run("nginx -v 2>&1", shell=True, capture_output=True, text=True).stdout.strip(),
    }
    lines = ["## Scale-out: proxies, forwarding, cluster mode", "",
             f"Generated by `python3 bench/scaleout.py {' '.join(argv)}` on {datetime.date.today().isoformat()}, "
             f"{reps} interleaved repetition(s); medians with [min–max]. Raw results: "
             "`docs/bench/scaleout-results.json`.", ""]
    if "proxies" in parts:
        s = summarize(results, "proxies", lambda sc: SCENARIOS[sc][1])
        lines += ["### Proxy overhead", "",
                  f"One Shoal node (`bench_server --threads 1`) on core {base.SERVER_CORE}; the proxy and the load "
                  f"generator share core {base.BENCH_CORE}. "
                  + " ".join(f"`{k}`: {v}." for k, v in PROXIES.items() if k in proxies)
                  + " Versions: " + "; ".join(v for v in versions.values() if v) + ". "
                  "`proxy_cpu_us_per_unit` is the proxy's CPU time over the whole run (connection set-up "
                  "included) divided by the acks, deliveries or sessions.", ""]
        for sc, (args, figs, unit, text) in SCENARIOS.items():
            if sc not in s:
                continue
            lines += [f"**{sc}**: {text}. `shoal-bench {' '.join(args)}`; unit: {unit}.", ""]
            table(lines, s[sc], proxies, figs, "proxy")
            direct, hp = s[sc].get("direct", {}), s[sc].get("haproxy", {})
            rel = []
            for p in proxies:
                if p == "direct" or p not in s[sc]:
                    continue
                parts_ = []
                for f in ("p99_us", "p50_us"):
                    if f in direct and f in s[sc][p]:
                        parts_.append(f"added {f} {s[sc][p][f][0] - direct[f][0]:+,.0f}")
                for f in ("acks_per_s", "delivered_per_s", "sessions_per_s"):
                    if f in s[sc][p]:
                        if direct.get(f) and direct[f][0]:
                            parts_.append(f"{f} {s[sc][p][f][0] / direct[f][0]:.2f}× direct")
                        if p != "haproxy" and hp.get(f) and hp[f][0]:
                            parts_.append(f"{s[sc][p][f][0] / hp[f][0]:.2f}× HAProxy")
                if parts_:
                    rel.append(f"- {p}: " + ", ".join(parts_))
            if rel:
                lines += rel + [""]
            main_fig = figs[0]
            plot(lines, plots, f"scaleout-proxy-{sc}-{main_fig}.svg",
                 f"{sc} through a proxy: {main_fig} ({'lower' if main_fig in LOWER else 'higher'} is better)",
                 [(p, s[sc][p][main_fig][:3], COLORS.get(p, "#999")) for p in proxies
                  if p in s[sc] and main_fig in s[sc][p]])
            if "p99_us" in figs:
                plot(lines, plots, f"scaleout-proxy-{sc}-p99_us.svg", f"{sc} through a proxy: p99 µs (lower is better)",
                     [(p, s[sc][p]["p99_us"][:3], COLORS.get(p, "#999")) for p in proxies
                      if p in s[sc] and "p99_us" in s[sc][p]])
    if "forwarding" in parts:
        s = summarize(results, "forwarding", lambda sc: FORWARD_FIGS).get("poll-50", {})
        lines += ["### The forwarding hop (polling)", "",
                  f"Two Shoal nodes (`bench_server --threads 1 --redis URL --node-id AAAA|BBBB`) on core "
                  f"{base.SERVER_CORE}, Redis and the load generator on core {base.BENCH_CORE}. "
                  f"`shoal-bench {' '.join(POLL_ARGS)}`: 50 polling-only clients in closed loop, each POSTs an "
                  "event with an ack and GETs until the ack arrives. " +
                  " ".join(f"*{k}*: {v}." for k, v in FORWARD_VARIANTS.items()) +
                  " `server_cpu_us_per_ack` is the owner's CPU, `via_cpu_us_per_ack` the forwarding node's.", ""]
        table(lines, s, list(FORWARD_VARIANTS), FORWARD_FIGS)
        if "owner" in s and "forwarded" in s:
            o, f = s["owner"], s["forwarded"]
            lines += [f"The hop adds {f['p50_us'][0] - o['p50_us'][0]:+,.0f} µs at p50 and "
                      f"{f['p99_us'][0] - o['p99_us'][0]:+,.0f} µs at p99 per round trip (a POST and a GET), "
                      f"and costs the forwarding node {base.fmt(f.get('via_cpu_us_per_ack', (0,))[0])} µs of CPU "
                      "per round trip. Both nodes share one core here, so the forwarded run is also limited by "
                      "that core doing the work of two nodes, and every forwarded request switches between the "
                      "two processes (`perf` on the forwarding node: about 18 % of its time in the kernel's "
                      "scheduler, the rest spread over hyper's client and server and the socket calls). Across "
                      "machines the hop costs a network round trip plus the forwarding node's CPU.", ""]
    if "workers" in parts:
        s = summarize(results, "workers", lambda sc: WORKER_FIGS)
        lines += ["### Cluster mode: `--workers 2` against one process", "",
                  "`bench_server` as one process on one core (the single-node tables' setting), as one process with "
                  "two runtime threads on both cores, and as `--workers 2` (a primary that balances and runs the "
                  "embedded adapter's broker, and two worker processes) on both cores; the load generator runs on "
                  f"core {base.BENCH_CORE} in every case, so with two server cores it competes with the server. "
                  "`server_cpu_us_per_unit` is the CPU time of all the server's processes over the whole run "
                  "(connections included) per delivered message.", ""]
        for sc in WORKER_SCENARIOS:
            if sc in s:
                lines += [f"**{sc}**: {base.SCENARIOS[sc][2]}. `shoal-bench {' '.join(base.SCENARIOS[sc][0])}`.", ""]
                table(lines, s[sc], list(WORKER_VARIANTS), WORKER_FIGS, "server")
        lines += ["In cluster mode the primary carries every byte between clients and workers (it is a "
                  "`shoal balance` in the same binary), which costs about what a proxy costs per delivered "
                  "message in the proxy tables above; that is why the cluster's CPU per message is about "
                  "twice one process's. On this machine, whose second core also runs the load generator, two "
                  "workers cannot beat one process; cluster mode is for machines with cores to spare and for "
                  "isolating workers (a crash takes one worker's clients, which reconnect). "
                  "`@socket.io/sticky` instead hands each connection's file descriptor to a worker; passing "
                  "descriptors (SCM_RIGHTS) would take the primary out of the data path.", ""]
    errors = [r for r in results if "error" in r]
    if errors:
        lines += ["### Failed runs", ""] + [f"- {e['part']} {e['variant']} {e['scenario_name']}: {e['error'][:200]}"
                                           for e in errors]
        lines.append("")
    with open(os.path.join(plots, "scaleout-results.json"), "w") as fh:
        json.dump({"machine": base.machine(), "versions": versions, "results": results}, fh, indent=1)
    base.write_section(path, BEGIN, END, "\n".join(lines))
    print(f"wrote the scale-out section of {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parts", default="proxies,forwarding,workers")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--only", default="", help="comma-separated proxy scenarios")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--out", default=os.path.join(base.ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--from-results", default="", help="only re-render the section from this results file")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    proxies = [p for p in args.proxies.split(",") if p]
    scenarios = [x for x in (args.only.split(",") if args.only else SCENARIOS) if x]
    if args.from_results:
        with open(args.from_results) as fh:
            saved = json.load(fh)["results"]
        reps = max(1, sum(1 for r in saved if r.get("part") == "forwarding" and r.get("variant") == "owner"))
        report(saved, parts, proxies, reps, ["--no-build"], args.out)
        return
    for p in proxies:
        if p not in PROXIES:
            sys.exit(f"unknown proxy {p!r}")
        if "proxies" in parts and p in ("haproxy", "nginx") and not shutil.which(p):
            sys.exit(f"{p} is required (apt-get install {p}, or scripts/deps)")
    if not args.no_build:
        base.sh(["cargo", "build", "--release", "-p", "shoal-bench", "--bin", "shoal-bench"], cwd=base.ROOT)
        base.sh(["cargo", "build", "--release", "-p", "shoal", "--example", "bench_server"], cwd=base.ROOT)
        if "shoal-balance" in proxies:
            base.sh(["cargo", "build", "--release", "-p", "shoal-cli", "--bin", "shoal"], cwd=base.ROOT)
    redis = None
    results = []
    try:
        if "forwarding" in parts:
            redis, rport = base.start_redis()
        for rep in range(args.reps):
            runs = []
            if "proxies" in parts:
                runs += [(f"proxies {sc} {p}", run_proxy, (p, sc)) for sc in scenarios for p in proxies]
            if "forwarding" in parts:
                url = f"redis://127.0.0.1:{rport}"
                runs += [(f"forwarding {v}", run_forward, (v, url)) for v in FORWARD_VARIANTS]
            if "workers" in parts:
                runs += [(f"workers {sc} {v}", run_workers, (v, sc)) for sc in WORKER_SCENARIOS
                         for v in WORKER_VARIANTS]
            for what, fn, fargs in runs:
                print(f"== rep {rep + 1}/{args.reps} {what}", file=sys.stderr, flush=True)
                results.append(fn(*fargs))
                print(json.dumps(results[-1]), flush=True)
    finally:
        if redis:
            base.stop_server(redis)
    report(results, parts, proxies, args.reps, sys.argv[1:], args.out)


if __name__ == "__main__":
    main()
