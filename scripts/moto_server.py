"""Run moto's AWS API emulator on 127.0.0.1 and a free port (for scripts/moto).

Prints the port on the first line of stdout once the server is listening, then
serves until SIGTERM/SIGINT, or until the process named by --parent is gone
(so a killed test run never leaves the server behind).
"""

import argparse
import os
import signal
import sys
import threading

from moto.server import ThreadedMotoServer


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

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        if args.parent and not alive(args.parent):
            break
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
