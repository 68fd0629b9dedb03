#!/usr/bin/env python3
"""A complete Rampart client in Python with pyzmq (Debian: python3-zmq). See docs/protocol.md.

    python3 docs/examples/client.py --prompt "Hello" --max-tokens 32
    python3 docs/examples/client.py --chat '[{"role": "user", "content": "Hi"}]'
    python3 docs/examples/client.py --prompt "Hello" --server-key 'SERVER-PUBLIC-Z85' --curve-keys me.key

With CURVE, --server-key is the server's public key and --curve-keys this client's key file (as written by
`rampart-admin keygen`: TOML with `public` and `secret`).
"""
import argparse
import json
import sys
import tomllib
import uuid

import zmq

PROTOCOL = b"rampart/1"
TERMINAL = {b"done", b"error", b"shed"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connect", default="tcp://127.0.0.1:5555")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--prompt", help="raw text prompt")
    group.add_argument("--chat", help="JSON array of chat messages")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--timeout-ms", type=int, default=30000)
    parser.add_argument("--api-key", help="a registered tenant's API key")
    parser.add_argument("--server-key", help="CURVE: the server's public key (Z85)")
    parser.add_argument("--curve-keys", help="CURVE: this client's key file (TOML: public, secret)")
    args = parser.parse_args()
    if (args.server_key is None) != (args.curve_keys is None):
        parser.error("CURVE needs both --server-key and --curve-keys")

    body = {"request_id": uuid.uuid4().hex, "max_tokens": args.max_tokens, "temperature": args.temperature}
    if args.prompt is not None:
        body["text"] = args.prompt
    else:
        body["messages"] = json.loads(args.chat)
    if args.api_key:
        body["api_key"] = args.api_key

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if args.server_key:
        with open(args.curve_keys, "rb") as f:
            keys = tomllib.load(f)
        sock.curve_serverkey = args.server_key.encode("ascii")
        sock.curve_publickey = keys["public"].encode("ascii")
        sock.curve_secretkey = keys["secret"].encode("ascii")
    sock.connect(args.connect)
    sock.send_multipart([PROTOCOL, b"generate", json.dumps(body).encode("utf-8")])

    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while True:
        if not poller.poll(args.timeout_ms):
            print("no answer within %d ms" % args.timeout_ms, file=sys.stderr)
            return 1
        frames = sock.recv_multipart()
        if len(frames) != 3 or frames[0] != PROTOCOL:
            print("malformed event: %r" % frames, file=sys.stderr)
            return 1
        kind, event = frames[1], json.loads(frames[2])
        if event.get("request_id") != body["request_id"]:
            continue
        if kind == b"token":
            sys.stdout.write(event["text"])
            sys.stdout.flush()
        elif kind in TERMINAL:
            detail = event.get("finish_reason") or event.get("code") or event.get("reason")
            print("\n[%s: %s]" % (kind.decode(), detail))
            return 0 if kind == b"done" else 1


if __name__ == "__main__":
    sys.exit(main())
