"""Jupyter Server extension: a REST API over the core under ``<base_url>mlmanage/api/``
(routes in :mod:`mlmanage_jupyter.serverext.handlers`), used by the JupyterLab sidebar.

Enabled on install by ``etc/jupyter/jupyter_server_config.d/mlmanage_jupyter.json`` (shipped
in the wheel), or by hand: ``jupyter server extension enable mlmanage_jupyter.serverext``.
The workspace is the server process's default one (``$MLMANAGE_WORKSPACE``, else
``./.mlmanage`` of the directory the server was started in).
"""

from __future__ import annotations

from typing import Any

from mlmanage_jupyter.serverext.handlers import handlers


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlmanage_jupyter.serverext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("mlmanage_jupyter: REST API at %smlmanage/api/", web_app.settings["base_url"])
