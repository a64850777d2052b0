"""kmock's in-memory Kubernetes API emulator as a standalone HTTP server.

Usage: python kmock_server.py PORT  (prints "kmock listening on <url>" once it serves; stops
on SIGTERM/SIGINT). See tests/infra/test_components.py for what it can and cannot do.
"""

import asyncio
import signal
import sys

import kmock


async def main(port: int) -> None:
    async with kmock.KubernetesEmulator() as k8s, kmock.Server(k8s, host="127.0.0.1", port=port) as srv:
        k8s.resources.load_bundled()  # core/v1, apps/v1, ... discovery from a bundled snapshot
        print(f"kmock listening on {srv.url}", flush=True)
        stop = asyncio.Event()
        for s in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(s, stop.set)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 6443))
