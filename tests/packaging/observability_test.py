#!/usr/bin/env python3
"""The Grafana dashboard, the web dashboard and the Prometheus rules against rampartd itself.

- promtool checks the alerting rules, and the PromQL of every dashboard panel (wrapped as recording rules).
- Every metric either names is one rampartd declares (net/metrics.cpp), and the ones a running rampartd (a model,
  two in-process expert shards, one request done and one refused) does not print yet are labelled families,
  which appear with their first label value.
- The dashboard is well formed: unique panel ids, a type Grafana ships, a query per target.

Usage: observability_test.py BIN_DIR SOURCE_DIR MODEL_DIR
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

bin_dir, src, model = sys.argv[1:4]
dashboard_path = os.path.join(src, "packaging/grafana/rampart-dashboard.json")
rules_path = os.path.join(src, "packaging/prometheus/rampart-rules.yml")
failures = []


def fail(message):
    failures.append(message)
    print("FAIL:", message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def promtool_check(path):
    r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"promtool check rules {path}:\n{r.stdout}{r.stderr}")


# The rules, and the dashboard's queries as recording rules (promtool parses their PromQL).
promtool_check(rules_path)
dashboard = json.load(open(dashboard_path))
exprs = []
ids = set()
for p in dashboard["panels"]:
    if p["id"] in ids:
        fail(f"panel id {p['id']} twice")
    ids.add(p["id"])
    if p["type"] not in ("stat", "timeseries", "heatmap", "bargauge", "gauge", "table"):
        fail(f"panel {p['title']}: type {p['type']}")
    if not p.get("targets"):
        fail(f"panel {p['title']} has no query")
    for t in p.get("targets", []):
        if not t.get("expr") or not t.get("refId"):
            fail(f"panel {p['title']}: a target without expr or refId")
        exprs.append(t.get("expr", ""))
with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
    wrapped = f.name
promtool_check(wrapped)
os.unlink(wrapped)
rules_text = open(rules_path).read()

# What rampartd declares, and which families carry labels (no unlabelled child added at start).
source = open(os.path.join(src, "net/metrics.cpp")).read()
declared, labelled = set(), set()
for m in re.finditer(r'Name\("(rampart:[a-z_]+)"\)', source):
    declared.add(m.group(1))
    if ".Add({})" not in source[m.end():source.find(";", m.end())]:
        labelled.add(m.group(1))

# What a running rampartd prints.
port, metrics_port = free_port(), free_port()
with tempfile.TemporaryDirectory() as tmp:
    config = os.path.join(tmp, "rampart.toml")
    open(config, "w").write("[engine]\nshards = 2\n")
    server = subprocess.Popen([os.path.join(bin_dir, "rampartd"), "--config", config, "--model", model,
                               "--tokenizer", os.path.join(src, "models/deepseek-v3-tokenizer"), "--endpoint", f"tcp://127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}",
                               "--alerts-publish", "off", "--log-level", "warn"])
    try:
        deadline = time.time() + 60
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=2).status == 200:
                    break
            except Exception:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("rampartd did not become ready")
            time.sleep(0.2)
        client = os.path.join(bin_dir, "rampart-client")
        endpoint = f"tcp://127.0.0.1:{port}"
        subprocess.run([client, "--connect", endpoint, "--prompt", "hello", "--max-tokens", "20", "--json"],
                       check=True, capture_output=True)
        subprocess.run([client, "--connect", endpoint, "--prompt", "hello", "--max-tokens", "0", "--json"],
                       capture_output=True)  # refused: bad_parameter
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)
live = set(re.findall(r"^# TYPE (rampart:[a-z_]+) ", text, re.M))

# The web dashboard rampartd serves itself (net/dashboard/dashboard.js) reads /metrics by name too.
web_js = open(os.path.join(src, "net/dashboard/dashboard.js")).read()
web_names = set(re.findall(r"'(rampart:[a-z_]+)'", web_js))
if len(web_names) < 10:
    fail(f"net/dashboard/dashboard.js names only {len(web_names)} metrics: the pattern no longer finds them")

referenced = set()
for e in exprs + re.findall(r"expr: (.*)", rules_text) + sorted(web_names):
    for name in re.findall(r"rampart:[a-z_]+", e):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        referenced.add(base if base in declared else name)
for name in sorted(referenced):
    if name not in declared:
        fail(f"{name} is used by a dashboard or the rules but rampartd has no such metric")
    elif name not in live and name not in labelled:
        fail(f"{name} is not in a running rampartd's /metrics")
unused = sorted(declared - referenced)
print(f"{len(exprs)} dashboard queries, {len(referenced)} metrics used, {len(live)} printed by rampartd;"
      f" not on the dashboard or in the rules: {', '.join(unused) or 'none'}")
sys.exit(1 if failures else 0)
