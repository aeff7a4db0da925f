#!/usr/bin/env python3
"""A Lambda function's cold start, measured on this machine: from starting its binary to its
answer to the first event, served by a stand-in for the Lambda Runtime API on loopback (the
protocol `lambda_runtime` polls), with DynamoDB and S3 on moto.

    lambda_start.py BINARY EVENT [--runs N]

Prints the median of N starts in milliseconds, and each start. The binary is an x86_64 build
of a function; the deployed one is the same code for arm64.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RuntimeApi(BaseHTTPRequestHandler):
    """Hands out one event, then waits; notes when the answer comes."""

    event = b"{}"
    answered = None
    handed_out = False

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        if RuntimeApi.handed_out:
            # A real runtime would freeze the function here; hold the poll until the end.
            time.sleep(30)
            self.send_error(404)
            return
        RuntimeApi.handed_out = True
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", str(uuid.uuid4()))
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:0:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(RuntimeApi.event)))
        self.end_headers()
        self.wfile.write(RuntimeApi.event)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if "/response" in self.path or "/error" in self.path:
            RuntimeApi.answered = (time.monotonic(), self.path, body)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def one_start(binary, event, env):
    RuntimeApi.event = event
    RuntimeApi.answered = None
    RuntimeApi.handed_out = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    started = time.monotonic()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while RuntimeApi.answered is None:
            if process.poll() is not None:
                sys.exit(f"{binary} exited with {process.returncode} before answering")
            if time.monotonic() - started > 30:
                sys.exit(f"{binary} did not answer within 30 s")
            time.sleep(0.0005)
    finally:
        process.kill()
        process.wait()
        server.shutdown()
    answered_at, path, body = RuntimeApi.answered
    if "/error" in path:
        sys.exit(f"{binary} answered with an error: {body[:300]!r}")
    return (answered_at - started) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("event")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with open(args.event, "rb") as file:
        event = file.read()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "STOWAGE_LOG": "warn",
    })
    starts = [one_start(args.binary, event, env) for _ in range(args.runs)]
    print(json.dumps({"median_ms": statistics.median(starts), "starts_ms": starts}))


if __name__ == "__main__":
    main()
