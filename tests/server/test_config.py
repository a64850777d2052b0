"""server/config.Settings: the one definition of the scoring engine's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmanage_jupyter.server.config import ConfigError, Settings

FULL = Settings(
    app_root=Path("/var/azureml-app/app"),
    entry_script="src/score.py",
    source_directory="src",
    model_dir="/var/azureml-app/azureml-models/m/3",
    models=("m:3", "other:1"),
    service_name="svc-1",
    host="0.0.0.0",
    port=5001,
    workers=3,
    auth_enabled=True,
    keys_file=Path("/keys/keys.json"),
    primary_key="pk",
    secondary_key="sk",
    scoring_timeout_ms=1234,
    max_request_bytes=4321,
    run_dir=Path("/run/mlm"),
    collect_model_data=True,
    data_collection_dir="/data",
    storage_connection_string="UseDevelopmentStorage=true",
    data_collection_container="c1",
    data_collection_prefix="p/",
    data_collection_flush_ms=50,
    data_collection_batch=7,
    data_collection_max_buffer=70,
    reuse_port=True,
    init_timeout_s=12.5,
    exit_on_failure=True,
    limit_request_fields=50,
    limit_request_field_size=1000,
    limit_request_line=2000,
    environment_variables={"GREETING": "hello, world", "EMPTY": "", "JSON": '{"a": [1, 2]}'},
)


@pytest.mark.parametrize(
    "settings",
    [
        FULL,
        Settings(app_root=Path("/app"), run_dir=Path("/tmp/run")),
        FULL.replace(environment_variables={}, keys_file=None, model_dir=None, models=()),
        FULL.replace(auth_enabled=False, token_auth_enabled=True),
    ],
    ids=["every-field", "defaults", "no-extras", "token-auth"],
)
def test_to_env_is_the_exact_inverse_of_from_env(settings: Settings) -> None:
    env = settings.to_env()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    assert Settings.from_env(env) == settings
    assert Settings.from_env(env).to_env() == env


def test_environment_variables_reach_the_env_verbatim_and_come_back_alone() -> None:
    env = FULL.to_env()
    assert env["GREETING"] == "hello, world" and env["EMPTY"] == "" and env["JSON"] == '{"a": [1, 2]}'
    # variables of the surrounding process are not mistaken for Azure's environment_variables
    parsed = Settings.from_env({**env, "HOME": "/root", "PATH": "/bin"})
    assert dict(parsed.environment_variables) == {"GREETING": "hello, world", "EMPTY": "", "JSON": '{"a": [1, 2]}'}


def test_built_from_values_without_reading_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMANAGE_WORKERS", "9")
    monkeypatch.setenv("MLMANAGE_SERVICE_NAME", "from-os-environ")
    s = Settings(app_root=Path("/app"))
    assert s.workers == 1 and s.service_name == "local" and s.run_dir is None
    assert "MLMANAGE_RUN_DIR" not in s.to_env()


def test_update_from_env_applies_only_the_given_variables() -> None:
    base = Settings(app_root=Path("/app"), service_name="svc", workers=2)
    s = base.update_from_env({"MLMANAGE_DATA_COLLECTION_DIR": "/x/modeldata"})
    assert s == base.replace(data_collection_dir="/x/modeldata")
    assert s.run_dir is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"environment_variables": {"MLMANAGE_PORT": "1"}}, "environment_variables['MLMANAGE_PORT']"),
        ({"environment_variables": {"AZUREML_MODEL_DIR": "/m"}}, "engine's own variable"),
        ({"environment_variables": {"N": 3}}, "must be a string"),
        ({"environment_variables": {"A=B": "x"}}, "not a valid variable name"),
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"scoring_timeout_ms": "60"}, "scoring_timeout_ms"),
        ({"models": ("a:1,b:2",)}, "without commas"),
        ({"init_timeout_s": 0}, "init_timeout_s"),
        ({"auth_enabled": True, "token_auth_enabled": True}, "auth_enabled and token_auth_enabled cannot both be true"),
    ],
)
def test_bad_values_name_the_field(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Settings(app_root=Path("/app"), **changes)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLMANAGE_WORKERS": "two"}, "MLMANAGE_WORKERS must be an integer"),
        ({"MLMANAGE_PORT": "-1"}, "MLMANAGE_PORT must be >= 0"),
        ({"MLMANAGE_INIT_TIMEOUT_S": "soon"}, "MLMANAGE_INIT_TIMEOUT_S must be a number"),
        ({"MLMANAGE_ENVIRONMENT_VARIABLES": "GREETING"}, "must be a JSON list"),
    ],
)
def test_bad_variables_name_the_variable(env: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"MLMANAGE_RUN_DIR": str(tmp_path), **env})


def test_exit_on_failure_renders_as_a_flag_and_defaults_off() -> None:
    assert FULL.to_env()["MLMANAGE_EXIT_ON_FAILURE"] == "1"
    assert Settings(app_root=Path("/app")).to_env()["MLMANAGE_EXIT_ON_FAILURE"] == "0"
    assert Settings.from_env({"MLMANAGE_RUN_DIR": "/r"}).exit_on_failure is False
    with pytest.raises(ConfigError, match="MLMANAGE_EXIT_ON_FAILURE"):
        Settings(app_root=Path("/app"), environment_variables={"MLMANAGE_EXIT_ON_FAILURE": "1"})
