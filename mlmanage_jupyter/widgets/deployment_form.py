"""``DeploymentForm``: deploy a registered model as a web service from a form."""

from __future__ import annotations

import html
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W

from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import MlManageError, ValidationError
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.targets.base import DeploymentConfig
from mlmanage_jupyter.core.webservice import (
    AksWebservice,
    DockerWebservice,
    LocalWebservice,
    ServiceNotFoundError,
    Webservice,
    deploy,
    validate_service_name,
)
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace
from mlmanage_jupyter.widgets._common import (
    COLORS,
    Worker,
    error_text,
    failure_html,
    link,
    masked_key,
    pre,
    status_html,
    target_usable,
    workspace_label,
)

_STYLE = {"description_width": "120px"}
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")
#: the fields each target takes (names of this form's widgets)
TARGET_FIELDS: dict[str, tuple[str, ...]] = {
    "local": ("port", "workers", "auth_enabled"),
    "docker": ("port", "workers", "cpu_cores", "memory_gb", "auth_enabled"),
    "kubernetes": ("workers", "cpu_cores", "memory_gb", "replicas", "auth_enabled"),
}


class DeploymentForm(W.VBox):
    """Deploy a model version as a web service (``Model.deploy`` + ``wait_for_deployment``).

    Args:
        workspace: a Workspace, a path, or None for the default workspace.
        model: preselect this :class:`Model` (name and version).
        entry_script: preset the entry script: a file path, or the name of a script saved
            by ``%%score_script`` (``<workspace>/scripts/<name>.py``).
        service_name: preset the service name.
        targets: the compute types to offer; default ``local`` plus ``docker`` and
            ``kubernetes`` when usable here (see ``_common.target_usable``).
        timeout_s: how long to wait for the service to become Healthy (seconds).

    Widgets: ``service_name``, ``model_name``, ``model_version``, ``entry_script`` (a
    Combobox of saved scripts that also takes a path), ``target``, ``port`` (0 = any free
    port), ``workers``, ``cpu_cores`` (cores), ``memory_gb`` (GiB), ``replicas``,
    ``auth_enabled``, ``overwrite``, ``deploy_button`` (enabled only when :meth:`validate`
    passes), ``message`` (why the button is disabled), ``progress`` (log of the deployment),
    ``result`` (the service's state, URIs and keys).

    Attributes:
        service: the deployed :class:`Webservice` once the deploy button was used.
        error: the error text of the last failed deployment, or None.
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        *,
        model: Model | None = None,
        entry_script: str | None = None,
        service_name: str | None = None,
        targets: list[str] | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        self.workspace = resolve_workspace(workspace)
        self.timeout_s = timeout_s
        self.service: Webservice | None = None
        self.error: str | None = None
        self._worker = Worker(self._on_worker_error, after=self.validate)
        self._callbacks: list[Callable[[Webservice], None]] = []
        self._progress_lines: list[str] = []
        self._stage = ""
        self._lock = threading.Lock()
        self._touched = False
        self._deployed_name: str | None = None  # the service this form deployed last  # problems show in red only once the user changed a field
        if targets is None:
            targets = ["local"] + [t for t in ("docker", "kubernetes") if target_usable(t)[0]]
        self.targets = targets

        self.service_name = W.Text(value=service_name or "", placeholder="e.g. diabetes-svc", description="Service name", style=_STYLE)
        self.model_name = W.Dropdown(options=[], description="Model", style=_STYLE)
        self.model_version = W.Dropdown(options=[], description="Version", style=_STYLE)
        scripts = self._script_names()
        if entry_script is None and len(scripts) == 1:
            entry_script = scripts[0]  # the only script saved with %%score_script
        self.entry_script = W.Combobox(
            value=entry_script or "", options=scripts, placeholder="path/to/score.py or a %%score_script name",
            description="Entry script", ensure_option=False, style=_STYLE, layout=W.Layout(width="480px"),
        )  # fmt: skip
        self.entry_hint = W.HTML()
        self.target = W.ToggleButtons(options=targets, value=targets[0], description="Target", style=_STYLE)
        self.port = W.BoundedIntText(value=0, min=0, max=65535, description="Port (0 = free)", style=_STYLE)
        self.workers = W.BoundedIntText(value=1, min=1, max=64, description="Workers", style=_STYLE)
        self.cpu_cores = W.BoundedFloatText(value=0.5, min=0.0, max=256, step=0.1, description="CPU (cores)", style=_STYLE)
        self.memory_gb = W.BoundedFloatText(value=1.0, min=0.0, max=1024, step=0.25, description="Memory (GiB)", style=_STYLE)
        self.replicas = W.BoundedIntText(value=1, min=1, max=100, description="Replicas", style=_STYLE)
        # indent=False + width auto: the description is the whole label, never cut off
        self.auth_enabled = W.Checkbox(value=False, description="Require a key (auth)", indent=False, layout=W.Layout(width="auto"))
        self.overwrite = W.Checkbox(value=False, description="Replace an existing service of that name", indent=False,
                                    layout=W.Layout(width="auto"))
        self.deploy_button = W.Button(description="Deploy", icon="rocket", button_style="primary", disabled=True)
        self.message = W.HTML()
        self.progress = W.HTML()
        self.result = W.HTML()
        self.fields = W.VBox()

        self._load_models(model)
        self.model_name.observe(self._on_model_name, "value")
        for w in (self.service_name, self.model_version, self.entry_script, self.port, self.workers, self.cpu_cores,
                  self.memory_gb, self.replicas, self.auth_enabled, self.overwrite):
            w.observe(self._on_change, "value")
        self.target.observe(self._on_target, "value")
        self.deploy_button.on_click(self._on_deploy)
        self._on_target(None)
        super().__init__(
            [
                W.HTML(f"<b>Deploy a model</b> in workspace {workspace_label(self.workspace)}"),
                self.service_name,
                W.HBox([self.model_name, self.model_version]),
                self.entry_script,
                self.entry_hint,
                self.target,
                self.fields,
                self.overwrite,
                W.HBox([self.deploy_button, self.message]),
                self.progress,
                self.result,
            ]
        )

    def _on_change(self, _c: Any) -> None:
        self._touched = True
        self.validate()

    # ------------------------------------------------------------------ choices
    def _scripts_dir(self) -> Path:
        return self.workspace.path / "scripts"

    def _script_names(self) -> list[str]:
        d = self._scripts_dir()
        return sorted(p.stem for p in d.glob("*.py")) if d.is_dir() else []

    def _load_models(self, model: Model | None) -> None:
        self._models = Model.list(self.workspace)
        names = sorted({m.name for m in self._models})
        self.model_name.options = names
        if model is not None and model.name in names:
            self.model_name.value = model.name
        elif names:
            self.model_name.value = names[0]
        self._on_model_name(None)
        if model is not None and model.version in self.model_version.options:
            self.model_version.value = model.version

    def _on_model_name(self, _c: Any) -> None:
        versions = [m.version for m in self._models if m.name == self.model_name.value]  # newest first
        self.model_version.options = versions
        self.model_version.value = versions[0] if versions else None
        self.validate()

    def _on_target(self, _c: Any) -> None:
        wanted = TARGET_FIELDS.get(self.target.value, TARGET_FIELDS["local"])
        self.fields.children = [getattr(self, f) for f in wanted]
        if self.target.value == "kubernetes" and not self.auth_enabled.value:
            self.auth_enabled.value = True  # Azure's AKS default
        self.validate()

    def refresh_choices(self) -> None:
        """Re-read the models and the saved entry scripts (after registering a new one)."""
        keep = self.model_version.value, self.model_name.value
        self.entry_script.options = self._script_names()
        current = next((m for m in Model.list(self.workspace) if (m.version, m.name) == keep), None)
        self._load_models(current)

    # ------------------------------------------------------------------ building
    def resolve_entry_script(self) -> Path:
        """The entry script file: a ``%%score_script`` name or a path. Raises ValidationError."""
        v = self.entry_script.value.strip()
        if not v:
            raise ValidationError("choose an entry script: a file path or a script saved with %%score_script")
        saved = self._scripts_dir() / f"{v}.py"
        if "/" not in v and os.sep not in v and saved.is_file():
            return saved
        p = Path(v).expanduser()
        if not p.is_file():
            raise ValidationError(f"entry script not found: {p.resolve()} (and no saved script named {v!r} in {self._scripts_dir()})")
        return p.resolve()

    def inference_config(self) -> InferenceConfig:
        """The :class:`InferenceConfig` the form describes (validated)."""
        ic = InferenceConfig(entry_script=str(self.resolve_entry_script()))
        ic.validate()
        return ic

    def deployment_config(self) -> DeploymentConfig:
        """The deployment configuration for the chosen target (validated)."""
        t = self.target.value
        auth = bool(self.auth_enabled.value)
        port = int(self.port.value) or None
        if t == "local":
            return LocalWebservice.deploy_configuration(port=port, workers=int(self.workers.value), auth_enabled=auth)
        if t == "docker":
            return DockerWebservice.deploy_configuration(
                port=port, workers=int(self.workers.value), cpu_cores=float(self.cpu_cores.value) or None,
                memory_gb=float(self.memory_gb.value) or None, auth_enabled=auth,
            )  # fmt: skip
        if t == "kubernetes":
            return AksWebservice.deploy_configuration(
                cpu_cores=float(self.cpu_cores.value), memory_gb=float(self.memory_gb.value),
                num_replicas=int(self.replicas.value), workers=int(self.workers.value), auth_enabled=auth,
            )  # fmt: skip
        raise ValidationError(f"unknown target {t!r}")

    def selected_model(self) -> Model:
        if not self.model_name.value or self.model_version.value is None:
            raise ValidationError("choose a model and a version (register one with Model.register or %register_model)")
        return Model(self.workspace, self.model_name.value, int(self.model_version.value))

    def validate(self) -> str | None:
        """Check every field; enable the deploy button when all pass. Returns the first
        problem or None.

        ``message`` says it: in grey as a hint on a form nobody has touched yet, in red once a
        field was changed; "deploying…" while this form deploys (never "ready"); after this
        form's own deployment, that the service is deployed (not that the name is taken).
        """
        problem: str | None = None
        ours = False
        try:
            name = validate_service_name(self.service_name.value.strip())
            self.selected_model()
            try:
                path = self.resolve_entry_script()
                self.entry_hint.value = f"<small>script: <code>{html.escape(str(path))}</code></small>"
            except ValidationError:
                self.entry_hint.value = ""
                raise
            self.inference_config()
            self.deployment_config()
            if not self.overwrite.value:
                try:
                    Webservice(self.workspace, name)
                    ours = name == self._deployed_name
                    if ours and self.error is None:
                        problem = f"{name} is deployed (below); tick 'Replace' to deploy it again, or choose another name"
                    elif ours:
                        problem = f"{name} failed (below); fix the cause, then tick 'Replace' to deploy it again"
                    else:
                        problem = f"service {name!r} already exists: choose another name or tick 'Replace'"
                except ServiceNotFoundError:
                    pass
        except ValidationError as e:
            problem = str(e)
        except Exception as e:  # noqa: BLE001 - e.g. the kubernetes module missing a dependency
            problem = error_text(e)
        busy = self._worker.busy
        self.deploy_button.disabled = problem is not None or busy
        if busy:
            self.message.value = status_html("deploying…", "busy")
        elif problem is None:
            self.message.value = status_html("ready to deploy", "ok")
        else:
            self.message.value = status_html(problem, "error" if self._touched and not ours else "info")
        return problem

    # ------------------------------------------------------------------ deploying
    def on_deployed(self, callback: Callable[[Webservice], None]) -> None:
        """Call ``callback(service)`` when a deployment from this form becomes Healthy."""
        self._callbacks.append(callback)

    def _log(self, msg: str) -> None:
        with self._lock:
            self._progress_lines.append(msg)
            m = _STEP.match(msg.strip())
            if m:
                self._stage = f"build step {m.group(1)}/{m.group(2)}: {m.group(3)[:80]}"
            elif not msg.startswith(" ") and not self._stage.startswith("build step"):
                self._stage = msg[:100]
            self._paint_progress()

    def _paint_progress(self, final: str | None = None) -> None:
        stage = final or self._stage
        head = (
            f"<div class='mlmanage-stage' style='font-size:12px;color:#57606a'>{html.escape(stage)}"
            f" · {len(self._progress_lines)} lines</div>"
        )
        self.progress.value = head + pre("\n".join(self._progress_lines[-500:]), height="160px", bottom=True)

    def _on_worker_error(self, e: BaseException) -> None:
        self.error = error_text(e)
        logs = getattr(e, "logs", "") or ""
        with self._lock:
            self._paint_progress("failed (see below)")
        self.result.value = failure_html(str(e) if isinstance(e, MlManageError) else self.error, logs)
        self.validate()

    def _on_deploy(self, _b: Any) -> None:
        if self._worker.busy or self.validate() is not None:
            return
        name = self.service_name.value.strip()
        model = self.selected_model()
        ic = self.inference_config()
        cfg = self.deployment_config()
        overwrite = bool(self.overwrite.value)
        self.error = None
        self.service = None
        self._progress_lines = []
        self._stage = "starting"
        self._deployed_name = name
        self.result.value = status_html(f"deploying {name}…", "busy")
        self.deploy_button.disabled = True
        self.message.value = status_html("deploying…", "busy")

        def job() -> None:
            self._log(f"deploying {model.id} as {name} on the {cfg.compute_type} target")
            svc = deploy(self.workspace, name, [model], ic, cfg, overwrite=overwrite, progress=self._log)
            self.service = svc
            self._log("waiting for the service to become Healthy")
            svc.wait_for_deployment(timeout_sec=self.timeout_s)
            self._log(f"{name} is {svc.state}")
            with self._lock:
                self._paint_progress(f"done: {name} is {svc.state}")
            self._show_service(svc)
            for cb in self._callbacks:
                cb(svc)
            self.validate()

        self._worker.start(job, f"DeploymentForm-{name}")

    def _show_service(self, svc: Webservice) -> None:
        esc = html.escape
        state = svc.state
        rows = [
            ("service", f"<code>{esc(svc.name)}</code> ({esc(svc.compute_type)})"),
            ("state", f"<b style='color:{COLORS.get(state, '#57606a')}'>{esc(state)}</b>"),
            ("models", esc(", ".join(svc.models))),
            ("scoring_uri", link(svc.scoring_uri)),
            ("swagger_uri", link(svc.swagger_uri)),
        ]
        if svc.auth_enabled:
            primary, secondary = svc.get_keys()
            rows += [("primary key", masked_key(primary)), ("secondary key", masked_key(secondary))]
        else:
            rows.append(("auth", "none"))
        body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows)
        self.result.value = f"<div class='mlmanage-service'><table>{body}</table></div>"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) for a deployment started by the button to end
        (Healthy or failed). True when it ended."""
        return self._worker.wait(timeout)

    def close(self) -> None:
        """Close the form; a deployment in progress goes on (the service is not touched)."""
        super().close()
