"""Local port forward of the kubernetes target (``kubectl port-forward`` through the
client's portforward stream): a 127.0.0.1 listener relaying to a ready pod's port 5001."""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from typing import Any

from mlmanage_jupyter.core.targets.k8s_client import Clients
from mlmanage_jupyter.core.targets.k8s_diagnostics import pod_ready
from mlmanage_jupyter.core.targets.k8s_manifests import (
    CONTAINER_PORT,
    LABEL_MANAGED_BY,
    LABEL_SERVICE,
    MANAGED_BY,
    is_ours,
)

_FORWARDS: dict[tuple[str, str], tuple[socket.socket, threading.Event, int]] = {}
_FORWARDS_LOCK = threading.Lock()


def start_forward(cl: Clients, name: str, ns: str, want_port: int | None) -> int:
    """Listen on 127.0.0.1 and relay each connection to a ready pod's port 5001 through the
    API server's portforward subresource. Lives as long as this process; returns the port."""
    from kubernetes.stream import portforward

    key = (ns, name)
    with _FORWARDS_LOCK:
        if key in _FORWARDS:
            return _FORWARDS[key][2]
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind(("127.0.0.1", want_port or 0))
        except OSError:
            srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        port = srv.getsockname()[1]
        stop = threading.Event()
        _FORWARDS[key] = (srv, stop, port)

    def pick_pod() -> str | None:
        sel = f"{LABEL_SERVICE}={name},{LABEL_MANAGED_BY}={MANAGED_BY}"
        pods = [p for p in cl.core.list_namespaced_pod(ns, label_selector=sel).items if is_ours(p.to_dict(), name)]
        ready = [p for p in pods if pod_ready(p)]
        return ready[0].metadata.name if ready else None

    def relay(conn: socket.socket) -> None:
        try:
            pod = pick_pod()
            if pod is None:
                return
            pf = portforward(cl.core.connect_get_namespaced_pod_portforward, pod, ns, ports=str(CONTAINER_PORT))
            remote = pf.socket(CONTAINER_PORT)
            remote.settimeout(None)

            def pump(a: socket.socket, b: socket.socket) -> None:
                try:
                    while True:
                        data = a.recv(65536)
                        if not data:
                            break
                        b.sendall(data)
                except OSError:
                    pass
                finally:
                    for s in (a, b):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

            t = threading.Thread(target=pump, args=(remote, conn), daemon=True)
            t.start()
            pump(conn, remote)
            t.join(timeout=60)
            pf.close()
        except Exception:
            pass
        finally:
            conn.close()

    def accept_loop() -> None:
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            threading.Thread(target=relay, args=(conn,), daemon=True).start()
        srv.close()

    threading.Thread(target=accept_loop, name=f"mlmanage-forward-{name}", daemon=True).start()
    return port


def stop_forward(name: str, runtime: Mapping[str, Any]) -> None:
    with _FORWARDS_LOCK:
        entry = _FORWARDS.pop((runtime.get("namespace", "default"), name), None)
    if entry:
        entry[1].set()


