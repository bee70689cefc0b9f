"""Run moto's AWS API emulator on 127.0.0.1 and a free port (for scripts/emulators).

Prints the port on the first line of stdout once the server is listening, then
serves until SIGTERM/SIGINT, or until the process named by --parent is gone
(so a killed test run never leaves the server behind).

One request at a time. moto's own server (ThreadedMotoServer) handles each
request on its own thread with no lock around the backends, so a DynamoDB
conditional write is a read, a check and a write that another thread can slip
between: two concurrent `attribute_not_exists` puts can both succeed, and the
adapter's concurrency contract (one claim winner, exactly `burst` tokens from a
shared bucket) passes or fails by luck under CPU load. Real DynamoDB applies
each conditional write atomically; serializing the requests gives moto the
same property (and SQS's receive, which marks messages received with no lock
either).

The lock is held for the whole of a request (the WSGI app's call and its
response body) with one exception: an SQS long poll (`WaitTimeSeconds`) waits
for messages in `Queue.wait_for_messages`, and that wait lets go of the lock
(it takes it back before looking at the queue again). A long poll therefore
blocks nobody: the send that ends it can run. Still threaded, not
`make_server(threaded=False)`: a single-threaded server would have to finish
a 20 s long poll before it even read the next request.
"""

import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sqs.models import Queue
from werkzeug.serving import make_server

# Held by the request being served; see the module docs.
LOCK = threading.RLock()


def serialized(app):
    """The WSGI app `app`, serving one request at a time under LOCK."""

    def serve(environ, start_response):
        with LOCK:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return serve


def release_lock_while_long_polling():
    """Make SQS's long-poll wait let go of LOCK while it waits.

    `ReceiveMessage` with `WaitTimeSeconds` loops: look at the queue, and if
    nothing is there, `wait_for_messages(1)` (a condition variable notified by
    every send). Only that wait runs without LOCK; looking at the queue and
    marking messages received happen with it, like every other request.
    """
    wait = Queue.wait_for_messages

    def wait_unlocked(self, timeout):
        # An RLock held once by this request thread: release it fully, then
        # take it back (as many times as it was held).
        depth = 0
        while True:
            try:
                LOCK.release()
            except RuntimeError:
                break
            depth += 1
        try:
            wait(self, timeout)
        finally:
            for _ in range(depth):
                LOCK.acquire()

    Queue.wait_for_messages = wait_unlocked


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parent", type=int, default=0, help="exit when this pid is gone")
    args = parser.parse_args()

    release_lock_while_long_polling()
    app = serialized(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        if args.parent and not alive(args.parent):
            break
    server.shutdown()
    thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
