#!/usr/bin/env python3
"""How many HTTP connections rampartd's HTTP door holds at once, and what each costs it.

Usage: tools/bench-http-connections.py PID HOST:PORT MODEL N [API_KEY]

Against a running rampartd (process PID, HTTP door at HOST:PORT serving MODEL), with asyncio on one thread:
1. idle: opens N keep-alive connections that send nothing, and reads rampartd's resident memory and thread count;
2. streaming: sends one streamed completion (32 tokens, ignore_eos) on each of the N connections at once, and
   reads memory and threads once every stream has been accepted (its first chunk came), then waits for every
   stream to end with [DONE].
Prints one JSON object: the connections held, resident memory per connection in each phase, rampartd's thread
count before and during (a thread per connection would add N), and how many streams completed.
"""
import asyncio
import json
import sys
import time


def proc_status(pid):
    rss_kb = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss_kb, threads


async def open_all(host, port, n):
    conns = []
    for _ in range(n):
        conns.append(await asyncio.open_connection(host, port))
    return conns


async def stream_one(reader, writer, body, headers, accepted, done_counter):
    writer.write(("POST /v1/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n" + headers +
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        if not accepted.done():
            accepted.set_result(False)
        return head.split(b"\r\n")[0].decode()
    first = True
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            break
        if first:
            first = False
            if not accepted.done():
                accepted.set_result(True)
        if b"data: [DONE]" in data:
            done_counter[0] += 1
    return "ok"


async def main():
    pid, hostport, model, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    api_key = sys.argv[5] if len(sys.argv) > 5 else ""
    host, port = hostport.rsplit(":", 1)
    port = int(port)
    headers = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
    rss0, threads0 = proc_status(pid)

    conns = await open_all(host, port, n)
    await asyncio.sleep(0.5)
    rss_idle, threads_idle = proc_status(pid)

    body = json.dumps({"model": model, "prompt": list(range(1000, 1016)), "max_tokens": 32, "ignore_eos": True,
                       "temperature": 0, "stream": True}).encode()
    loop = asyncio.get_running_loop()
    accepted = [loop.create_future() for _ in conns]
    done = [0]
    start = time.monotonic()
    tasks = [asyncio.create_task(stream_one(r, w, body, headers, a, done)) for (r, w), a in zip(conns, accepted)]
    await asyncio.wait(accepted, timeout=120)
    held = sum(1 for a in accepted if a.done() and a.result())
    rss_streaming, threads_streaming = proc_status(pid)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    seconds = time.monotonic() - start
    for _, w in conns:
        w.close()
    failures = [str(r) for r in results if r != "ok"]
    print(json.dumps({
        "connections": n,
        "idle_held": n,
        "idle_rss_kib_per_connection": round((rss_idle - rss0) / n, 2),
        "streams_accepted": held,
        "streaming_rss_kib_per_connection": round((rss_streaming - rss0) / n, 2),
        "rss_mib": {"before": round(rss0 / 1024, 1), "idle": round(rss_idle / 1024, 1),
                    "streaming": round(rss_streaming / 1024, 1)},
        "threads": {"before": threads0, "idle": threads_idle, "streaming": threads_streaming},
        "streams_completed": done[0],
        "seconds": round(seconds, 2),
        "first_failures": failures[:3],
    }))
    return 0 if done[0] == n else 1


sys.exit(asyncio.run(main()))
