"""``deploy(..., overwrite=True)`` on the docker target checks before it stops the old service:
a port another process holds and an image that does not build leave the old container
serving, its record as it was."""

from __future__ import annotations

import socket
from typing import Any

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_overwrite_that_cannot_run_leaves_the_old_container_serving(
    workspace: Any, quickstart: Any, sklearn_model: Any, services: list[Any], containers_of: Any
) -> None:
    from mlmanage_jupyter.core.environment import Environment
    from mlmanage_jupyter.core.errors import ValidationError
    from mlmanage_jupyter.core.targets.docker import ImageBuildError
    from mlmanage_jupyter.core.webservice import DockerWebservice, Webservice, deploy

    model, make_config = quickstart
    svc = deploy(workspace, "dk-ow", [model], make_config(1), DockerWebservice.deploy_configuration())
    services.append(svc)
    svc.wait_for_deployment(timeout_sec=300)
    before = sorted(c.id for c in containers_of("dk-ow"))
    rows = sklearn_model.X.tolist()

    def assert_old_serving() -> None:
        again = Webservice(workspace, "dk-ow")
        assert again.state == "Healthy" and again.scoring_uri == svc.scoring_uri
        assert again.run({"data": rows})["version"] == 1
        assert sorted(c.id for c in containers_of("dk-ow")) == before

    # a port some other process holds
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        with pytest.raises(ValidationError, match=f"port {port} is already in use on the Docker host"):
            deploy(workspace, "dk-ow", [model], make_config(2), DockerWebservice.deploy_configuration(port=port), overwrite=True)
    assert_old_serving()
    # an image that does not build
    ic = make_config(3)
    ic.environment = Environment("bad")
    ic.environment.pip_requirements = ["joblib", "scikit-learn", "numpy"]
    ic.environment.docker.extra_docker_file_steps = "RUN echo this-step-fails-on-purpose && exit 3"
    with pytest.raises(ImageBuildError, match="this-step-fails-on-purpose"):
        deploy(workspace, "dk-ow", [model], ic, DockerWebservice.deploy_configuration(), overwrite=True)
    assert_old_serving()
    assert [e["kind"] for e in workspace.get_events()].count("service.delete") == 0
