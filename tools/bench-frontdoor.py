#!/usr/bin/python3
"""The front door under abuse: 4 registered streams while one client floods 1 MiB messages and another sends
small malformed messages at 100,000/s. Alternates baseline and attack phases (ratios within one run), and prints
the streams' inter-token latency p99 under attack over baseline, and rampartd's peak resident memory under
attack minus its baseline peak.

Usage: tools/bench-frontdoor.py [--bin build/bin] [--seconds 8] [--rounds 2] [--malformed-rate 100000]
       tools/bench-frontdoor.py --attack generate [--generate-rate 4000] [--priority high]
With --attack generate the attack is instead an anonymous request flood: 4 clients on 4 addresses sending
`generate` requests (16 prompt tokens, 16 generated) at --generate-rate in all, reading their answers; the script
then also prints the registered streams' completed requests per second under attack over baseline.
"""
import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, threading, time

import zmq

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def run_streams(endpoint, api_key, seconds, pid, priority=None):
    """4 streams, one generation after another each; returns (inter-token gaps in ms, peak RSS KiB, requests)."""
    ctx = zmq.Context.instance()
    socks = []
    for i in range(4):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(endpoint)
        socks.append(s)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    last = [None] * 4
    seq = [0] * 4
    gaps, done = [], 0
    peak = rss_kib(pid)

    def start(i):
        seq[i] += 1
        last[i] = None
        body = {"request_id": f"s{i}-{seq[i]}", "ids": list(range(1000, 1016)), "max_tokens": 64,
                "temperature": 0, "ignore_eos": True, "api_key": api_key}
        if priority:
            body["priority"] = priority
        socks[i].send_multipart([b"rampart/1", b"generate", json.dumps(body).encode()])

    for i in range(4):
        start(i)
    end = time.monotonic() + seconds
    next_rss = time.monotonic()
    while time.monotonic() < end:
        for s, _ in poller.poll(50):
            i = socks.index(s)
            _, kind, body = s.recv_multipart()
            now = time.monotonic()
            if kind == b"token":
                if last[i] is not None:
                    gaps.append((now - last[i]) * 1000.0)
                last[i] = now
            elif kind in (b"done", b"error", b"shed"):
                if kind != b"done":
                    print("stream ended with", kind.decode(), body.decode(), file=sys.stderr)
                done += 1
                start(i)
        if time.monotonic() >= next_rss:
            peak = max(peak, rss_kib(pid))
            next_rss = time.monotonic() + 0.05
    for s in socks:
        s.close()
    return gaps, peak, done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "build/bin"))
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--malformed-rate", type=int, default=100000)
    ap.add_argument("--attack", choices=["messages", "generate"], default="messages")
    ap.add_argument("--generate-rate", type=int, default=4000)
    ap.add_argument("--priority", default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rampart-frontdoor-")
    server = None
    try:
        subprocess.run([f"{a.bin}/rampart-mkmodel", "--out", f"{work}/m", "--variant", "v3", "--seed", "1",
                        "--preset", "tiny", "--vocab", "129280", "--no-mtp"], check=True, stdout=subprocess.DEVNULL)
        out = subprocess.run([f"{a.bin}/rampart-admin", "--db", f"{work}/accounts.db", "create", "bench",
                              "--class", "registered"], check=True, capture_output=True, text=True).stdout
        api_key = re.search(r"api_key: (\S+)", out).group(1)
        port = free_port()
        endpoint = f"tcp://127.0.0.1:{port}"
        with open(f"{work}/rampart.toml", "w") as f:
            f.write(f'[frontend]\nendpoint = "{endpoint}"\n'
                    f'[model]\npath = "{work}/m"\ntokenizer = "{HERE}/models/deepseek-v3-tokenizer"\n'
                    f'[engine]\nthreads = 1\n[metrics]\nenabled = false\n[alerts]\nenabled = false\n'
                    f'[admission]\naccounts_db = "{work}/accounts.db"\n[log]\nlevel = "warn"\n')
        server = subprocess.Popen([f"{a.bin}/rampartd", "--config", f"{work}/rampart.toml"])
        ctx = zmq.Context.instance()
        probe = ctx.socket(zmq.DEALER)
        probe.setsockopt(zmq.LINGER, 0)
        probe.connect(endpoint)
        for _ in range(200):
            probe.send_multipart([b"rampart/1", b"ping", b"{}"])
            if probe.poll(200):
                probe.recv_multipart()
                break
        probe.close()
        run_streams(endpoint, api_key, 2, server.pid, a.priority)  # warm-up
        base_gaps, attack_gaps, base_rss, attack_rss, floods = [], [], 0, 0, []
        base_done, attack_done = 0, 0
        for r in range(a.rounds):
            g, rss, done = run_streams(endpoint, api_key, a.seconds, server.pid, a.priority)
            base_gaps += g
            base_rss = max(base_rss, rss)
            base_done += done
            target = f"127.0.0.1:{port}"
            # The attackers come from their own addresses (127.0.0.2, 127.0.0.3), the streams from 127.0.0.1.
            if a.attack == "generate":
                procs = [subprocess.Popen(["nice", "-n", "19", f"{a.bin}/rampart-flood", "--kind", "generate",
                                           "--target", target, "--source", f"127.0.0.{10 + k}", "--rate",
                                           str(a.generate_rate / 4), "--duration", str(a.seconds + 1)],
                                          stdout=subprocess.PIPE, text=True) for k in range(4)]
            else:
                procs = [subprocess.Popen(["nice", "-n", "19", f"{a.bin}/rampart-flood", "--kind", "bigmsg",
                                           "--target", target, "--source", "127.0.0.2", "--duration",
                                           str(a.seconds + 1)], stdout=subprocess.PIPE, text=True),
                         subprocess.Popen(["nice", "-n", "19", f"{a.bin}/rampart-flood", "--kind", "malformed",
                                           "--target", target, "--source", "127.0.0.3", "--rate",
                                           str(a.malformed_rate), "--duration", str(a.seconds + 1)],
                                          stdout=subprocess.PIPE, text=True)]
            time.sleep(0.5)
            g, rss, done = run_streams(endpoint, api_key, a.seconds, server.pid, a.priority)
            attack_gaps += g
            attack_rss = max(attack_rss, rss)
            attack_done += done
            for p in procs:
                floods.append(json.loads(p.communicate()[0].strip().splitlines()[-1]))
        assert server.poll() is None, "rampartd exited during the run"
        b99, x99 = percentile(base_gaps, 0.99), percentile(attack_gaps, 0.99)
        print(json.dumps({
            "inter_token_ms": {"baseline_p50": round(percentile(base_gaps, 0.5), 2), "baseline_p99": round(b99, 2),
                               "attack_p50": round(percentile(attack_gaps, 0.5), 2), "attack_p99": round(x99, 2),
                               "samples": [len(base_gaps), len(attack_gaps)]},
            "itl_p99_ratio": round(x99 / b99, 3) if b99 > 0 else None,
            "registered_requests": [base_done, attack_done],
            "goodput_ratio": round(attack_done / base_done, 3) if base_done else None,
            "rss_mib": {"baseline_peak": round(base_rss / 1024, 1), "attack_peak": round(attack_rss / 1024, 1)},
            "rss_growth_mib": round((attack_rss - base_rss) / 1024, 1),
            "floods": floods,
        }, indent=1))
    finally:
        if server and server.poll() is None:
            server.send_signal(2)
            server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
