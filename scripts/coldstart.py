#!/usr/bin/env python3
"""Init time of Lambda bootstraps (e.g. from `cargo lambda build --release`):
process start -> first `GET /runtime/invocation/next`, i.e. config loaded and
checked, store and clients built. A stand-in Runtime API on 127.0.0.1 answers
nothing, so only init is timed; each run gets a fresh embedded store.

    scripts/coldstart.py target/lambda [RUNS] [sqlite|aws]

With `aws`, the functions build the DynamoDB and SQS clients (FERRY_STORE=aws,
dummy names and credentials; init makes no AWS call).
"""
import http.server, os, pathlib, statistics, subprocess, sys, tempfile, threading, time

root = pathlib.Path(__file__).resolve().parent.parent
lambda_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else root / "target" / "lambda")
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
store = sys.argv[3] if len(sys.argv) > 3 else "sqlite"
first_poll = {}

class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            first_poll.setdefault("t", time.perf_counter())
            time.sleep(0.2)
        self.send_response(500); self.end_headers()
    def log_message(self, *a):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
env_file = dict(l.split("=", 1) for l in (root / "events" / "ferry.env").read_text().splitlines() if l and not l.startswith("#") and "=" in l)

for fn in ("ferry-ingest", "ferry-execute", "ferry-sync"):
    boot = lambda_dir / fn / "bootstrap"
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            env = {**os.environ, **env_file,
                   "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
                   "AWS_LAMBDA_FUNCTION_NAME": fn, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                   "AWS_LAMBDA_FUNCTION_VERSION": "1", "AWS_REGION": "us-east-1",
                   "FERRY_CONFIG": str(root / "events" / "ferry.yaml"),
                   "FERRY_STORE": f"sqlite:{d}/ferry.db", "FERRY_LOG": "error"}
            if store == "aws":
                env.update({"FERRY_STORE": "aws", "FERRY_TABLE": "ferry",
                            "FERRY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/work",
                            "FERRY_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
                            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
            first_poll.clear()
            start = time.perf_counter()
            p = subprocess.Popen([str(boot)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while "t" not in first_poll and p.poll() is None and time.perf_counter() - start < 5:
                time.sleep(0.0005)
            p.kill(); p.wait()
            if "t" in first_poll:
                times.append((first_poll["t"] - start) * 1000)
    times.sort()
    size = boot.stat().st_size
    print(f"{fn} ({store}): bootstrap {size / 1048576:.1f} MiB; init median {statistics.median(times):.1f} ms, "
          f"p90 {times[int(len(times) * 0.9) - 1]:.1f} ms, min {times[0]:.1f} ms ({len(times)}/{runs} runs)")
