"""IPython magics: the model-management loop from notebook cells (``%load_ext mlmanage_jupyter``).

=====================================  ===================================================
magic                                  core call
=====================================  ===================================================
``%mlmanage``                          this list, one line each
``%mlmanage_workspace [PATH]``         ``Workspace(PATH)`` becomes the default
``%register_model NAME PATH``          ``Model.register`` (``--object VAR``: ``register_object``)
``%models [NAME]``                     ``Model.list(...).to_dataframe()`` (``--browse``: RegistryBrowser)
``%%score_script NAME``                ``check_entry_script`` (``--test``: init()+run() in a subprocess)
``%deploy SERVICE``                    ``services.deploy`` + ``wait_for_deployment``
``%services``                          ``Webservice.list(...).to_dataframe()``
``%update SERVICE``                    ``Webservice.update``
``%logs SERVICE``                      ``Webservice.get_logs`` (``--follow``: LiveLogs)
``%test_endpoint SERVICE [JSON]``      ``Webservice.run`` (no JSON: EndpointConsole)
``%profile SERVICE --samples VAR``     ``Webservice.profile`` + ProfileChart
``%monitor SERVICE``                   ``Webservice.get_telemetry`` per minute in a MonitorPanel, live
``%undeploy SERVICE``                  ``Webservice.delete``
=====================================  ===================================================

Every magic returns what it shows, so ``df = %models`` or ``svc = %deploy ...`` work. Errors a
user can fix (bad arguments, any :class:`~mlmanage_jupyter.core.errors.MlManageError`)
raise IPython's ``UsageError``: one message, no traceback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import HTML, display
from IPython.utils.process import arg_split

from mlmanage_jupyter._display import compact_json, failure_report
from mlmanage_jupyter.core.entities.parsing import parse_filter, parse_kv, parse_model_ref
from mlmanage_jupyter.core.errors import DeploymentFailedError, MlManageError, ValidationError

#: model registrations at least this big (bytes) show a progress bar
PROGRESS_MIN_BYTES = 16 * 1024 * 1024
#: how long ``%%score_script --test`` lets init()+run() take (seconds)
SCRIPT_TEST_TIMEOUT_S = 300
#: how long ``%deploy`` / ``%update`` wait for Healthy (seconds)
DEPLOY_TIMEOUT_S = 600

_TARGET_FLAGS = {
    "local": {"port", "workers", "auth"},
    "docker": {"port", "workers", "auth", "cpu", "memory"},
    "aci": {"port", "auth", "cpu", "memory"},
    "kubernetes": {"auth", "cpu", "memory", "replicas"},
}

# runs in a fresh interpreter for %%score_script --test: the scoring engine's own loader,
# so the script is called exactly as a deployment calls it
_SCRIPT_RUNNER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mlmanage_jupyter.server.entry import EntryScript
    from mlmanage_jupyter.server.jsonio import json_dumps as dumps
    script = Path(sys.argv[1])
    es = EntryScript(script.parent, script.name)
    es.init()
    out = es.call(sys.stdin.buffer.read(), {})
    sys.stdout.flush()
    print("\\n__MLMANAGE_RESULT__" + dumps(out).decode())
    """
)


def _user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors a user can fix into ``UsageError`` (shown without a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeploymentFailedError as e:  # the traceback once, the log of this attempt only
            raise UsageError(failure_report(str(e), e.logs or "").as_text()) from None
        except MlManageError as e:
            raise UsageError(str(e)) from None

    return wrapper


def _widget(name: str, *args: Any, **kwargs: Any) -> Any:
    try:
        from mlmanage_jupyter import widgets
    except ImportError as e:
        raise UsageError(f"the widgets are not available: {e}") from None
    klass = getattr(widgets, name, None)
    if klass is None:
        raise UsageError(f"mlmanage_jupyter.widgets.{name} is not available in this version")
    return klass(*args, **kwargs)


def parse_argstring(magic: Any, line: str) -> Any:
    """Parse a magic's arguments with shell quoting (``--description 'two words'``, JSON in
    single quotes); IPython's own ``parse_argstring`` keeps the quotes. Raises UsageError."""
    try:
        argv = arg_split(line, posix=True)
    except ValueError as e:
        raise UsageError(f"cannot parse {line!r}: {e}") from None
    return magic.parser.parse_args(argv)


_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")


class Progress:
    """Progress of long work in one updating output (never on the stderr background):
    the current stage (Docker build ``Step N/M`` as a bar), the latest line, and the number
    of lines so far. Pass it as ``progress=`` to ``deploy``/``Webservice.update``; outside a
    notebook front-end each line is printed to stdout. ``done(text)`` leaves a summary line;
    ``lines`` keeps every line received."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.lines: list[str] = []
        self.stage = ""
        self.step: tuple[int, int] | None = None
        self._handle: Any = None
        self._rich = _in_notebook()
        if self._rich:
            self._handle = display(HTML(self._html()), display_id=True)

    def __call__(self, msg: str) -> None:
        self.lines.append(msg)
        m = _STEP.match(msg.strip())
        if m:
            self.step = (int(m.group(1)), int(m.group(2)))
            self.stage = m.group(3)
        elif not msg.startswith(" ") and not self.step:
            self.stage = msg
        if self._rich:
            self._handle.update(HTML(self._html()))
        else:
            print(msg, flush=True)

    def _html(self, final: str = "") -> str:
        from html import escape

        bar = ""
        if self.step:
            n, total = self.step
            bar = f"<progress value='{n}' max='{total}' style='width:160px;vertical-align:middle'></progress> step {n}/{total} "
        last = self.lines[-1] if self.lines else "starting…"
        return (
            f"<div class='mlmanage-progress' style='font-family:monospace;font-size:12px'>"
            f"<b>{escape(self.title)}</b> {bar}{escape(final or self.stage)}"
            f"<div style='color:#57606a;white-space:pre;overflow:hidden;text-overflow:ellipsis'>{escape(last[:200])}</div>"
            f"<div style='color:#57606a'>{len(self.lines)} lines of output</div></div>"
        )

    def done(self, final: str) -> None:
        if self._rich:
            self._handle.update(HTML(self._html(final)))
        else:
            print(final, flush=True)


def _in_notebook() -> bool:
    """True in a kernel with a notebook front-end (ZMQ), False in a terminal or a test shell."""
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except ImportError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _print_progress(msg: str) -> None:
    print(msg, flush=True)


@magics_class
class MlManageMagics(Magics):
    """The mlmanage magics; the workspace is ``Workspace.get_default()`` unless switched with
    ``%mlmanage_workspace``."""

    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        self._ws: Any = None

    # ------------------------------------------------------------------ helpers
    @property
    def workspace(self) -> Any:
        from mlmanage_jupyter.core.workspace import Workspace

        if self._ws is not None:
            return self._ws
        return Workspace.get_default()

    def _user_value(self, name: str, flag: str) -> Any:
        ns = self.shell.user_ns if self.shell is not None else {}
        if name not in ns:
            raise UsageError(f"{flag} {name}: no variable named {name!r} in the notebook")
        return ns[name]

    def _model(self, ref: str) -> Any:
        from mlmanage_jupyter.core.model import Model

        name, version = parse_model_ref(ref)
        return Model(self.workspace, name, version)

    def _script_path(self, name_or_path: str) -> Path:
        """A path to an existing file, or a name saved with ``%%score_script``."""
        p = Path(name_or_path).expanduser()
        if p.is_file():
            return p.resolve()
        saved = self.workspace.path / "scripts" / (name_or_path if name_or_path.endswith(".py") else f"{name_or_path}.py")
        if saved.is_file():
            return saved
        raise ValidationError(
            f"entry script {name_or_path!r} not found: give a file path or a name saved with %%score_script "
            f"(looked in {saved.parent})"
        )

    def _service(self, name: str) -> Any:
        from mlmanage_jupyter.core.webservice import Webservice

        return Webservice(self.workspace, name)

    # ------------------------------------------------------------------ overview
    @line_magic
    def mlmanage(self, line: str) -> PlainText:
        """List the mlmanage magics, one line each (``%magic?`` gives a magic's options)."""
        rows = []
        for kind, prefix in (("line", "%"), ("cell", "%%")):
            for name in sorted(self.magics[kind]):
                fn = getattr(self, name)
                parser = getattr(fn, "parser", None)  # magic_arguments replaces __doc__ by the usage
                doc = ((parser.description if parser is not None else None) or fn.__doc__ or "").strip()
                first = " ".join(doc.split("\n\n")[0].split())
                rows.append((f"{prefix}{name}", re.split(r"(?<=[.;])\s", first)[0].rstrip(";.")))
        width = max(len(n) for n, _ in rows)
        return PlainText("\n".join(f"{n:<{width}}  {d}" for n, d in rows) + "\n\n%MAGIC? shows a magic's options.")

    # ------------------------------------------------------------------ workspace
    @magic_arguments()
    @argument("path", nargs="?", help="workspace folder (created when missing); none: show the current one")
    @line_magic
    @_user_errors
    def mlmanage_workspace(self, line: str) -> Any:
        """Show the workspace, or switch to the one at PATH (also for code in this kernel,
        through ``MLMANAGE_WORKSPACE``)."""
        from mlmanage_jupyter.core.workspace import Workspace

        args = parse_argstring(self.mlmanage_workspace, line)
        if args.path:
            ws = Workspace(args.path)
            os.environ["MLMANAGE_WORKSPACE"] = str(ws.path)
            Workspace.set_default(ws)
            self._ws = ws
        return self.workspace

    # ------------------------------------------------------------------ models
    @magic_arguments()
    @argument("name", help="model name")
    @argument("path", nargs="?", help="a file or a folder")
    @argument("--object", dest="obj", metavar="VAR", help="register the notebook variable VAR (serialized with joblib)")
    @argument("--file-name", metavar="NAME", help="with --object: the file's name (default: the previous version's, else VAR.pkl)")
    @argument("--tag", action="append", default=[], metavar="K=V", help="a tag (repeatable)")
    @argument("--property", action="append", default=[], metavar="K=V", help="a property (repeatable)")
    @argument("--description", help="a description (quote it)")
    @argument("--framework", help="ScikitLearn, Onnx, TensorFlow, PyTorch, ...")
    @argument("--framework-version", help="the framework's version")
    @line_magic
    @_user_errors
    def register_model(self, line: str) -> Any:
        """Register a file, a folder or a notebook variable as the next version of NAME."""
        from mlmanage_jupyter.core.model import Model

        args = parse_argstring(self.register_model, line)
        common = dict(
            tags=parse_kv(args.tag, "tag"),
            properties=parse_kv(args.property, "property"),
            description=args.description,
            model_framework=args.framework,
            model_framework_version=args.framework_version,
        )
        if args.obj:
            if args.path:
                raise UsageError("give either PATH or --object VAR, not both")
            obj = self._user_value(args.obj, "--object")
            file_name = args.file_name or self._object_file_name(args.name, args.obj)
            return Model.register_object(self.workspace, obj, args.name, file_name=file_name, **common)
        if args.file_name:
            raise UsageError("--file-name is for --object VAR (a file or folder keeps its own name)")
        if not args.path:
            raise UsageError("give the model's PATH (a file or a folder), or --object VAR")
        bar: list[Any] = []

        def progress(done: int, total: int) -> None:
            if not bar and total >= PROGRESS_MIN_BYTES:
                from tqdm.auto import tqdm

                bar.append(tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"registering {args.name}"))
            if bar:
                bar[0].update(done - bar[0].n)

        try:
            return Model.register(self.workspace, args.path, args.name, progress=progress, **common)
        finally:
            if bar:
                bar[0].close()

    def _object_file_name(self, model_name: str, var: str) -> str:
        """The file name for ``--object VAR``: the latest version's file when it is one file
        (so an entry script that loads ``x.pkl`` keeps working for version 2), else ``VAR.pkl``."""
        from mlmanage_jupyter.core.model import Model

        latest = Model.list(self.workspace, name=model_name, latest=True)
        if latest and not latest[0].is_folder:
            files = latest[0].get_files()
            if len(files) == 1:
                return Path(files[0]["path"]).name
        return f"{var}.pkl"

    @magic_arguments()
    @argument("name", nargs="?", help="only this model name")
    @argument("--latest", action="store_true", help="only the latest version of each name")
    @argument("--tag", action="append", default=[], metavar="K[=V]", help="has this tag (repeatable)")
    @argument("--property", action="append", default=[], metavar="K[=V]", help="has this property (repeatable)")
    @argument("--browse", action="store_true", help="open the RegistryBrowser widget")
    @line_magic
    @_user_errors
    def models(self, line: str) -> Any:
        """The registered models as a DataFrame (name, version, tags, ..., newest first)."""
        from mlmanage_jupyter.core.model import Model

        args = parse_argstring(self.models, line)
        if args.browse:
            return _widget("RegistryBrowser", self.workspace)
        return Model.list(
            self.workspace,
            name=args.name,
            tags=parse_filter(args.tag),
            properties=parse_filter(args.property),
            latest=args.latest,
        ).to_dataframe()

    # ------------------------------------------------------------------ entry scripts
    @magic_arguments()
    @argument("name", help="script name: saved as <workspace>/scripts/NAME.py")
    @argument("--test", metavar="SAMPLE_JSON", help="run init() and run(SAMPLE) once: a JSON text or a variable")
    @argument("--model", action="append", default=[], metavar="NAME[:VERSION]", help="model(s) for --test")
    @cell_magic
    @_user_errors
    def score_script(self, line: str, cell: str) -> Any:
        """Save the cell as an entry script and check it defines init() and run(data);
        with ``--test`` run it once in a fresh Python, as a deployment would."""
        from mlmanage_jupyter.core.environment import check_entry_script

        args = parse_argstring(self.score_script, line)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.name):
            raise UsageError(f"script name {args.name!r}: use letters, digits and '_' (it becomes NAME.py)")
        path = self.workspace.subdir("scripts") / f"{args.name}.py"
        path.write_text(cell)
        check_entry_script(path)
        if args.test is None:
            print(f"saved {path}: defines init() and run()")
            return path
        return self._test_script(path, args.test, args.model)

    def _test_script(self, path: Path, sample: str, model_refs: list[str]) -> Any:
        from mlmanage_jupyter.core.model import Model

        ns = self.shell.user_ns if self.shell is not None else {}
        if sample in ns:
            value = ns[sample]
            body = value if isinstance(value, (str, bytes)) else json.dumps(value, default=_json_default)
        else:
            try:
                json.loads(sample)
            except json.JSONDecodeError as e:
                raise UsageError(f"--test: {sample!r} is neither valid JSON ({e}) nor a notebook variable") from None
            body = sample
        env = dict(os.environ)
        models = [self._model(r) for r in model_refs]
        if models:
            paths = [Model.get_model_path(m.name, m.version, _workspace=self.workspace) for m in models]
            # Azure's layout: one model -> the folder holding its files; several -> <name>/<version>/
            model_dir = str(Path(paths[0]).parent) if len(models) == 1 else str(self.workspace.path / "models")
            env.update(
                AZUREML_MODEL_DIR=model_dir,
                MLMANAGE_MODEL_DIR=model_dir,
                MLMANAGE_MODELS=",".join(m.id for m in models),
            )
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _SCRIPT_RUNNER, str(path)],
                input=body.encode() if isinstance(body, str) else body,
                capture_output=True,
                env=env,
                cwd=path.parent,
                timeout=SCRIPT_TEST_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise UsageError(f"{path.name}: init()+run() did not finish in {SCRIPT_TEST_TIMEOUT_S} s") from None
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        printed, marker, result = out.rpartition("\n__MLMANAGE_RESULT__")
        if proc.returncode != 0 or not marker:
            raise UsageError(f"{path.name} failed (exit code {proc.returncode}):\n{(out + err).strip()[-6000:]}")
        if printed.strip() or err.strip():
            print((printed + err).strip())
        return json.loads(result)

    # ------------------------------------------------------------------ deploy
    @magic_arguments()
    @argument("service", help="service name (3-32 lowercase letters, digits, '-')")
    @argument("--model", action="append", default=[], metavar="NAME[:VERSION]", help="model to serve (repeatable)")
    @argument("--script", metavar="NAME_OR_PATH", help="entry script: a %%score_script name or a file")
    @argument("--target", choices=sorted(_TARGET_FLAGS), default=None, help="where to run it (default local)")
    @argument("--port", type=int, help="port (local/docker; default: a free one)")
    @argument("--workers", type=int, help="scoring worker processes")
    @argument("--auth", action="store_true", default=None, help="require a key on /score")
    @argument("--cpu", type=float, help="CPU cores (docker/aci/kubernetes)")
    @argument("--memory", type=float, help="memory in GiB (docker/aci/kubernetes)")
    @argument("--replicas", type=int, help="replica count (kubernetes)")
    @argument("--ic", metavar="FILE", help="Azure's inferenceconfig.json (instead of --script)")
    @argument("--dc", metavar="FILE", help="Azure's deploymentconfig.json (instead of --target and its flags)")
    @argument("--overwrite", action="store_true", help="replace a service of that name")
    @argument("--dry-run", action="store_true", help="show what would be deployed (kubernetes: the manifests)")
    @argument("--form", action="store_true", help="open the DeploymentForm widget instead")
    @argument("--fuzz", nargs="?", type=int, const=200, default=None, metavar="N",
              help="then fuzz /score from its swagger with N generated requests (default 200) and show the report")
    @line_magic
    @_user_errors
    def deploy(self, line: str) -> Any:
        """Build an image from the models and the entry script and deploy it; waits until
        it is Healthy and returns the Webservice. ``--fuzz [N]`` then runs ``service.fuzz(N)``
        and displays its FuzzReport (the service stays deployed whatever it finds)."""
        from mlmanage_jupyter.core.deployment import dry_run_text
        from mlmanage_jupyter.core.webservice import deploy

        if line.strip() == "--form":
            return _widget("DeploymentForm", self.workspace)
        args = parse_argstring(self.deploy, line)
        if args.form:
            return _widget("DeploymentForm", self.workspace)
        if not args.model:
            raise UsageError("give at least one --model NAME[:VERSION]")
        inference_config = self._inference_config(args.script, args.ic)
        cfg = self._deploy_config(args)
        models = [self._model(r) for r in args.model]
        if args.dry_run:
            return PlainText(dry_run_text(self.workspace, args.service, [m.record for m in models], inference_config, cfg))
        progress = Progress(f"deploying {args.service}")
        svc = deploy(self.workspace, args.service, models, inference_config, cfg, overwrite=args.overwrite, progress=progress)
        progress("waiting for the service to become Healthy")
        try:
            svc.wait_for_deployment(timeout_sec=DEPLOY_TIMEOUT_S)
        except DeploymentFailedError:
            progress.done("failed (see below)")
            raise
        progress.done(f"{args.service} is Healthy at {svc.scoring_uri}")
        if args.fuzz is not None:
            if args.fuzz < 0:
                raise UsageError(f"--fuzz N: N must be >= 0, got {args.fuzz}")
            display(svc.fuzz(max_examples=args.fuzz))
        return svc

    def _inference_config(self, script: str | None, ic: str | None) -> Any:
        from mlmanage_jupyter.core.environment import InferenceConfig

        if ic:
            if script:
                raise UsageError("give either --script or --ic, not both")
            return InferenceConfig.from_json(ic)
        if not script:
            raise UsageError("give the entry script: --script NAME_OR_PATH (or --ic inferenceconfig.json)")
        return InferenceConfig(entry_script=str(self._script_path(script)))

    def _deploy_config(self, args: Any) -> Any:
        from mlmanage_jupyter.core.targets.base import config_from_json
        from mlmanage_jupyter.core.webservice import (
            AciWebservice,
            AksWebservice,
            DockerWebservice,
            LocalWebservice,
        )

        given = {f for f in ("port", "workers", "auth", "cpu", "memory", "replicas") if getattr(args, f) is not None}
        if args.dc:
            if given or args.target:
                raise UsageError(f"--dc sets the target and its settings: drop --target/--{', --'.join(sorted(given))}")
            return config_from_json(args.dc)
        target = args.target or "local"
        bad = sorted(given - _TARGET_FLAGS[target])
        if bad:
            raise UsageError(f"--{', --'.join(bad)} do(es) not apply to --target {target}")
        if target == "local":
            kw = dict(port=args.port, workers=args.workers, auth_enabled=args.auth)
            factory: Callable[..., Any] = LocalWebservice.deploy_configuration
        elif target == "docker":
            kw = dict(port=args.port, workers=args.workers, auth_enabled=args.auth, cpu_cores=args.cpu, memory_gb=args.memory)
            factory = DockerWebservice.deploy_configuration
        elif target == "aci":
            kw = dict(port=args.port, auth_enabled=args.auth, cpu_cores=args.cpu, memory_gb=args.memory)
            factory = AciWebservice.deploy_configuration
        else:
            kw = dict(auth_enabled=args.auth, cpu_cores=args.cpu, memory_gb=args.memory, num_replicas=args.replicas)
            factory = AksWebservice.deploy_configuration
        return factory(**{k: v for k, v in kw.items() if v is not None})

    # ------------------------------------------------------------------ services
    @magic_arguments()
    @argument("--target", dest="compute_type", help="only this target (local, docker, aci, kubernetes)")
    @argument("--model", dest="model_name", help="only services serving this model name")
    @line_magic
    @_user_errors
    def services(self, line: str) -> Any:
        """The services as a DataFrame, with their live state."""
        from mlmanage_jupyter.core.webservice import Webservice

        args = parse_argstring(self.services, line)
        return Webservice.list(self.workspace, compute_type=args.compute_type, model_name=args.model_name).to_dataframe()

    @magic_arguments()
    @argument("service", help="service name")
    @argument("--model", action="append", default=[], metavar="NAME:VERSION", help="the new model list (repeatable)")
    @argument("--script", metavar="NAME_OR_PATH", help="a new entry script")
    @line_magic
    @_user_errors
    def update(self, line: str) -> Any:
        """Rolling update of SERVICE to new models and/or a new entry script."""
        from mlmanage_jupyter.core.environment import InferenceConfig

        args = parse_argstring(self.update, line)
        if not args.model and not args.script:
            raise UsageError("nothing to update: give --model NAME:VERSION and/or --script NAME_OR_PATH")
        svc = self._service(args.service)
        models = [self._model(r) for r in args.model] or None
        ic = InferenceConfig(entry_script=str(self._script_path(args.script))) if args.script else None
        progress = Progress(f"updating {args.service}")
        try:
            svc.update(models=models, inference_config=ic, progress=progress)
        except MlManageError:
            progress.done("failed (see below)")
            raise
        progress.done(f"{args.service} now serves {', '.join(svc.models)}")
        return svc

    @magic_arguments()
    @argument("service", help="service name")
    @argument("--tail", type=int, default=100, help="last N lines (default 100)")
    @argument("--follow", action="store_true", help="open the LiveLogs widget")
    @line_magic
    @_user_errors
    def logs(self, line: str) -> Any:
        """Print the last lines the service wrote (init tracebacks included)."""
        args = parse_argstring(self.logs, line)
        svc = self._service(args.service)
        if args.follow:
            return _widget("LiveLogs", svc)
        print(svc.get_logs(num_lines=args.tail), end="")
        return None

    @magic_arguments()
    @argument("service", help="service name")
    @argument("data", nargs="*", help="JSON body (or a notebook variable); none: open the EndpointConsole widget")
    @line_magic
    @_user_errors
    def test_endpoint(self, line: str) -> Any:
        """Call the service once; shows and returns status, latency (ms) and the response."""
        service, _, raw = line.strip().partition(" ")
        if not service or service.startswith("-"):
            parse_argstring(self.test_endpoint, line)  # prints usage / raises UsageError
        svc = self._service(service)
        raw = raw.strip()
        if not raw:
            return _widget("EndpointConsole", svc)
        ns = self.shell.user_ns if self.shell is not None else {}
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", raw) and raw in ns:
            value = ns[raw]
            body = value if isinstance(value, (str, bytes)) else json.dumps(value, default=_json_default)
        else:
            body = _json_argument(raw)
        res = svc.call(body)
        return EndpointResult(res.status_code or None, res.latency_ms, res.body)

    @magic_arguments()
    @argument("service", help="service name")
    @argument("--samples", required=True, metavar="VAR", help="notebook variable: a list of request bodies")
    @argument("--concurrency", default="1,2,4", help="concurrency levels, comma-separated (default 1,2,4)")
    @argument("--duration", type=float, default=5.0, help="seconds per level (default 5)")
    @line_magic
    @_user_errors
    def profile(self, line: str) -> Any:
        """Load-test SERVICE at each concurrency; returns the ModelProfile (shows a ProfileChart)."""
        args = parse_argstring(self.profile, line)
        try:
            levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
        except ValueError:
            raise UsageError(f"--concurrency {args.concurrency!r}: give integers like 1,2,4") from None
        if not levels or min(levels) < 1:
            raise UsageError("--concurrency needs positive integers like 1,2,4")
        samples = self._user_value(args.samples, "--samples")
        svc = self._service(args.service)
        progress = Progress(f"profiling {args.service}")
        box: dict[str, Any] = {}

        def job() -> None:
            try:
                box["profile"] = svc.profile(samples, concurrency=levels, duration_s=args.duration)
            except BaseException as e:  # noqa: BLE001 - re-raised in the kernel's thread below
                box["error"] = e

        t = threading.Thread(target=job, name=f"profile-{args.service}", daemon=True)
        t0 = time.monotonic()
        t.start()
        shown = -1
        while t.is_alive():  # the levels run one after the other, each args.duration seconds
            i = min(len(levels) - 1, int((time.monotonic() - t0) / args.duration))
            if i != shown:
                progress(f"Step {i + 1}/{len(levels)} : concurrency {levels[i]} for {args.duration:g} s")
                shown = i
            t.join(0.25)
        if "error" in box:
            progress.done("failed")
            raise box["error"]
        prof = box["profile"]
        progress.done(f"{prof.requests_sent} requests at concurrency {', '.join(map(str, levels))}")
        return ProfileResult(prof)

    @magic_arguments()
    @argument("service", help="service name")
    @argument("--window", type=int, default=30, help="minutes shown (default 30)")
    @argument("--refresh", type=float, default=5.0, help="seconds between live refreshes (default 5; 0: no live refresh)")
    @line_magic
    @_user_errors
    def monitor(self, line: str) -> Any:
        """Open the MonitorPanel: request rate, p50/p95/p99 latency and error rate per minute, live."""
        args = parse_argstring(self.monitor, line)
        if args.window < 1:
            raise UsageError("--window needs a positive number of minutes")
        if args.refresh < 0:
            raise UsageError("--refresh needs 0 (off) or a positive number of seconds")
        return _widget("MonitorPanel", self._service(args.service), window_min=args.window, refresh_s=args.refresh or None)

    @magic_arguments()
    @argument("service", help="service name")
    @line_magic
    @_user_errors
    def undeploy(self, line: str) -> None:
        """Stop SERVICE and forget it."""
        args = parse_argstring(self.undeploy, line)
        self._service(args.service).delete()
        print(f"deleted service {args.service}")


class ProfileResult:
    """What ``%profile`` returns: the ``ModelProfile`` (every attribute is the profile's:
    ``levels``, ``requests_sent``, ``to_dataframe()``, ...), shown once as a ProfileChart
    (chart and one results table), or as the profile's own table without ipywidgets."""

    def __init__(self, profile: Any) -> None:
        self.profile = profile

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("_repr_", "_ipython_", "__")):  # shown once, by _ipython_display_
            raise AttributeError(name)
        return getattr(self.profile, name)

    def __repr__(self) -> str:
        return repr(self.profile)

    def _ipython_display_(self) -> None:
        try:
            display(_widget("ProfileChart", self.profile))
        except UsageError:
            display(self.profile)


class PlainText(str):
    """A string shown as is in a notebook (not as a quoted repr): ``--dry-run``'s YAML or JSON."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


class EndpointResult:
    """What ``%test_endpoint`` got: ``status`` (HTTP code, None when unreachable),
    ``latency_ms`` (client-side round trip, ms) and ``response`` (decoded JSON or text)."""

    def __init__(self, status: int | None, latency_ms: float, response: Any) -> None:
        self.status = status
        self.latency_ms = latency_ms
        self.response = response

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def __repr__(self) -> str:
        return f"status {self.status} in {self.latency_ms:.1f} ms\n{compact_json(self.response)[:20000]}"

    def _header_html(self) -> str:
        color = "#1a7f37" if self.ok else "#cf222e"
        return f"<div><b style='color:{color}'>status {self.status}</b> in {self.latency_ms:.1f} ms</div>"

    def _repr_html_(self) -> str:
        from html import escape

        body = compact_json(self.response)
        return f"{self._header_html()}<pre style='max-height:24em;overflow:auto'>{escape(body[:20000])}</pre>"

    def _ipython_display_(self) -> None:
        """Status and latency, then the answer in JupyterLab's collapsible JSON view
        (``application/json``; a text answer as text)."""
        if not isinstance(self.response, (dict, list)):
            display({"text/html": self._repr_html_(), "text/plain": repr(self)}, raw=True)
            return
        display({"text/html": self._header_html(), "text/plain": f"status {self.status} in {self.latency_ms:.1f} ms"}, raw=True)
        display(
            {"application/json": self.response, "text/plain": compact_json(self.response)},
            metadata={"application/json": {"expanded": True, "root": "response"}},
            raw=True,
        )


def _json_argument(raw: str) -> str:
    """A JSON text given on a magic's line, bare (``{"data": [[1, 2]]}``) or shell-quoted as
    the README writes it (``'{"data": [[1, 2]]}'``). Raises UsageError naming the problem."""
    try:
        json.loads(raw)
        return raw
    except json.JSONDecodeError as e:
        first = e
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        try:
            parts = arg_split(raw, posix=True)
        except ValueError:
            parts = []
        if len(parts) == 1:
            try:
                json.loads(parts[0])
                return parts[0]
            except json.JSONDecodeError as e:
                first = e
    raise UsageError(f"{raw[:80]!r} is neither valid JSON ({first}) nor a notebook variable")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if hasattr(obj, "to_dict"):  # pandas
        return obj.to_dict(orient="list") if hasattr(obj, "columns") else obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext mlmanage_jupyter``)."""
    ipython.register_magics(MlManageMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Nothing to release: the magics stay until the kernel restarts (IPython can't unregister them)."""
