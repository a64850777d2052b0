"""kmock's in-memory Kubernetes API emulator as a standalone server, for tests and demos.

    python scripts/kmock_server.py [PORT]     (default 6443; 0 picks a free port)

Prints ``kmock listening on http://127.0.0.1:PORT`` once ready; stops on SIGTERM/SIGINT.
What it does not do (no controllers, no Pods, label selectors ignored, Namespace create
refused, merge-only patches) is listed in tests/kubernetes/conftest.py.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import kmock


async def main(port: int) -> None:
    async with kmock.KubernetesEmulator() as k8s, kmock.Server(k8s, host="127.0.0.1", port=port) as srv:
        k8s.resources.load_bundled()  # discovery of core/v1, apps/v1, autoscaling/v2, ... from kmock's snapshot
        print(f"kmock listening on {srv.url}", flush=True)
        stop = asyncio.Event()
        for s in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(s, stop.set)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6443))
