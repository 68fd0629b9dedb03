#!/usr/bin/python3
"""Drives headless Chromium over the DevTools protocol against rampartd's dashboard.

  browser_check.py URL OUT_DIR DETECTOR -- TRIGGER_COMMAND...

Opens URL, waits until the page's event stream and metrics poll are live and its charts exist, runs the trigger
command (something that makes the monitor raise DETECTOR), then waits until the DOM shows an alert row for
DETECTOR and the monitor's level off green. Prints one JSON line: how long after the monitor raised the alert
(its EVE timestamp) the page showed it, the same for the level change, the page's script errors, and the
screenshot it saved as OUT_DIR/dashboard.png. Exit 0 when everything appeared, 1 otherwise, 2 on bad usage.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # Debian's python3-websocket


class DevTools:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=10, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def errors(self):
        out = []
        for e in self.events:
            if e["method"] == "Runtime.exceptionThrown":
                out.append(e["params"]["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                entry = e["params"]["entry"]
                # A reconnecting EventSource logs nothing; a refused script or style (CSP) or a failed fetch does.
                out.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        return out


def wait_for(dt, expression, timeout_s, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = dt.evaluate(expression)
        if value:
            return value
        time.sleep(interval_s)
    return None


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    url, out_dir, detector, trigger = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5:]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print(json.dumps({"error": "no chromium on PATH (tools/setup.sh installs Debian's chromium)"}))
        return 1
    os.makedirs(out_dir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="rampart-chromium-")
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--remote-debugging-port=0",
         "--remote-allow-origins=*", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = {"detector": detector}
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.monotonic() > deadline or browser.poll() is not None:
                result["error"] = "chromium did not open its DevTools port"
                print(json.dumps(result))
                return 1
            time.sleep(0.1)
        port = open(port_file).read().split("\n")[0].strip()
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        dt = DevTools(page["webSocketDebuggerUrl"])
        dt.call("Runtime.enable")
        dt.call("Log.enable")
        dt.call("Page.enable")
        dt.call("Emulation.setDeviceMetricsOverride", width=1400, height=1300, deviceScaleFactor=1, mobile=False)
        dt.call("Page.navigate", url=url)
        live = wait_for(dt, "document.readyState === 'complete' && "
                            "document.getElementById('stream-state')?.dataset.state === 'live' && "
                            "document.getElementById('metrics-state')?.dataset.state === 'live' && "
                            "typeof Chart !== 'undefined' && Object.keys(Chart.instances).length", 20)
        result["charts"] = live or 0
        if not live:
            result["error"] = "the page did not go live (event stream, metrics poll and charts)"
            result["page_errors"] = dt.errors()
            print(json.dumps(result))
            return 1
        time.sleep(1.5)  # a second metrics reading, so rates are drawn
        flood = subprocess.Popen(trigger, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.time() * 1000
        row = f"document.querySelector('#alerts tr[data-detector=\"{detector}\"]')"
        shown = wait_for(dt, f"(() => {{ const r = {row}; return r && [Number(r.dataset.raisedAt), "
                             f"Number(r.dataset.shownAt)]; }})()", 15)
        level = wait_for(dt, "(() => { const l = document.getElementById('level-monitor'); "
                             "return l.dataset.level && l.dataset.level !== 'green' && l.dataset.shownAt && "
                             "[l.dataset.level, Number(l.dataset.changedAt), Number(l.dataset.shownAt)]; })()", 15)
        flood.wait(timeout=60)
        time.sleep(1.2)  # one more poll, so the figures and charts in the screenshot include the flood
        if shown:
            result["alert_shown_ms_after_raised"] = shown[1] - shown[0]
            result["alert_shown_ms_after_trigger"] = shown[1] - started
        if level:
            result["level"] = level[0]
            result["level_shown_ms_after_change"] = level[2] - level[1]
        result["alert_rows"] = dt.evaluate("document.querySelectorAll('#alerts tr').length")
        result["registration"] = dt.evaluate("document.getElementById('registration').textContent")
        result["page_errors"] = dt.errors()
        shot = dt.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path = os.path.join(out_dir, "dashboard.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        result["screenshot"] = path
        ok = bool(shown and level) and not result["page_errors"]
        print(json.dumps(result))
        return 0 if ok else 1
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
