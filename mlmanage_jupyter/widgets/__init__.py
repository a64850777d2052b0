"""ipywidgets panels over the core API: each is a composed ``ipywidgets.VBox`` usable on its
own, testable from Python by setting ``.value``s and calling ``button.click()``.

- :class:`RegistryBrowser` (``%models --browse``): a sortable table of model versions (name,
  version, framework, tags, files, created, used by), detail, version comparison, download,
  add tag, deploy.
- :class:`DeploymentForm` (``%deploy --form``): deploy a model version as a web service.
- :class:`LiveLogs` (``%logs SERVICE --follow``): a service's logs, streamed.
- :class:`EndpointConsole` (``%test_endpoint SERVICE``): send requests, read answers (a
  collapsible JSON view), masked keys, and a Consume tab of ready-to-paste clients.
- :class:`ProfileChart` (``%profile SERVICE``): latency/throughput/CPU/memory by concurrency.
- :class:`MonitorPanel` (``%monitor SERVICE``): request rate, latency percentiles and error
  rate per minute from telemetry, refreshed live, with the last errors.

Background work (deploying, log streaming, profiling, the registry's auto-refresh) runs in
daemon threads so the kernel stays free; ``close()`` stops it.
"""

from mlmanage_jupyter.widgets.deployment_form import DeploymentForm
from mlmanage_jupyter.widgets.endpoint_console import Call, EndpointConsole
from mlmanage_jupyter.widgets.live_logs import LiveLogs
from mlmanage_jupyter.widgets.monitor import MonitorPanel
from mlmanage_jupyter.widgets.profile_chart import ProfileChart
from mlmanage_jupyter.widgets.registry_browser import RegistryBrowser

__all__ = ["Call", "DeploymentForm", "EndpointConsole", "LiveLogs", "MonitorPanel", "ProfileChart", "RegistryBrowser"]
