"""deploy/ checked as far as this machine allows (no container engine, no cluster): YAML lint, the
Kubernetes manifests against the API schemas (strict: unknown fields fail), the compose file parsed, and
every command and setting the deploy files give longhaul checked against the CLI and settings it has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner
from yamllint import linter
from yamllint.config import YamlLintConfig

from longhaul.cli import command_line
from longhaul.config import Settings
from workflows.catalog import CATALOG

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
KUBERNETES_VERSION = "1.31.0"
# What the Temporal SDK reads from the environment (temporalio.envconfig; the temporal CLI reads the same).
TEMPORAL_VARIABLES = {
    "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_TLS", "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_CLIENT_KEY_DATA", "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA", "TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
}  # fmt: skip
LINT = YamlLintConfig("extends: default\nrules:\n  line-length: {max: 130}\n  document-start: disable\n")


def manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            for document in yaml.safe_load_all(path.read_text()):
                yield str(path.relative_to(K8S)), document


def longhaul_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, document in manifests():
        spec = document.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            if container["image"].startswith("longhaul"):
                yield f"{name}:{container['name']}", container


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def longhaul_services() -> dict[str, dict[str, Any]]:
    return {
        name: s for name, s in compose()["services"].items() if "deploy/Dockerfile" in str(s.get("build"))
    }


def assert_cli_accepts(args: list[str]) -> None:
    """``longhaul ARGS`` names a real command with real options: parsed by the CLI itself, with --help
    appended so nothing runs (an unknown command or option is a usage error, exit 2)."""
    result = CliRunner().invoke(command_line(Settings()), [*args, "--help"])
    assert result.exit_code == 0, (args, result.output)


def setting_names() -> set[str]:
    """The variables of longhaul's settings and of the application's pipelines' own (``ORDERS_…``)."""
    names = {f"LONGHAUL_{name.upper()}" for name in Settings.model_fields}
    for pipeline in CATALOG.pipelines:
        if pipeline.settings is not None:
            prefix = pipeline.settings.model_config.get("env_prefix", "")
            names |= {f"{prefix}{name.upper()}" for name in pipeline.settings.model_fields}
    return names


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_yaml_is_lint_free(path: Path) -> None:
    problems = [f"{p.line}:{p.column} {p.message}" for p in linter.run(path.read_text(), LINT)]
    assert problems == []


@pytest.mark.parametrize(
    ("name", "document"), list(manifests()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_kubernetes_manifests_match_the_api_schemas_strictly(name: str, document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("args", [["wroker"], ["db", "upgrade", "--sqll"], ["api", "--hots", "0.0.0.0"]])
def test_the_command_check_refuses_what_the_cli_would(args: list[str]) -> None:
    with pytest.raises(AssertionError):
        assert_cli_accepts(args)


@pytest.mark.parametrize("folder", [K8S, K8S / "release"], ids=["k8s", "k8s/release"])
def test_each_kustomization_applies_every_manifest_in_its_folder(folder: Path) -> None:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    assert kustomization["images"] == [{"name": "longhaul", "newTag": "latest"}]


def test_kubernetes_containers_run_real_commands_with_real_settings() -> None:
    containers = dict(longhaul_containers())
    assert {c["args"][0] for c in containers.values()} == {"api", "worker", "db", "schedules", "versions"}
    for container in containers.values():
        assert_cli_accepts(container["args"])
        assert [source for source in container["envFrom"]] == [
            {"configMapRef": {"name": "longhaul"}},
            {"secretRef": {"name": "longhaul"}},
        ]
    variables = set()
    for _, document in manifests():
        if document["kind"] in ("ConfigMap", "Secret"):
            variables |= set(document.get("data", {})) | set(document.get("stringData", {}))
    assert variables - setting_names() - TEMPORAL_VARIABLES == set()
    config = Settings.model_validate(
        {k.removeprefix("LONGHAUL_").lower(): v for k, v in variables_of("ConfigMap").items()}
    )
    assert config.migrate_on_start is False and config.metrics_bind == "0.0.0.0:9464"


def variables_of(kind: str) -> dict[str, str]:
    [document] = [d for _, d in manifests() if d["kind"] == kind]
    data: dict[str, str] = document.get("data") or document["stringData"]
    return {k: v for k, v in data.items() if k.startswith("LONGHAUL_")}


def test_compose_services_run_real_commands_with_real_settings() -> None:
    stack = compose()
    services = longhaul_services()
    assert set(services) == {"migrate", "schedules", "api", "worker", "payments"}
    for name, service in services.items():
        assert_cli_accepts(service["command"])
        environment = service["environment"]
        assert set(environment) - setting_names() - TEMPORAL_VARIABLES == set(), name
        for dependency in service.get("depends_on", {}):
            assert dependency in stack["services"], (name, dependency)
    assert services["api"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["worker"]["environment"]["LONGHAUL_MIGRATE_ON_START"] == "false"
    for service in stack["services"].values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in stack["volumes"]


def test_the_image_installs_the_engine_and_carries_the_whole_application() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    included = pyproject.split("include = [", 1)[1].split("]", 1)[0]
    packages = {name.strip().strip('"').rstrip("*") for name in included.split(",")}
    copied = {line.split()[1].rstrip("/") for line in dockerfile.splitlines() if line.startswith("COPY ")}
    assert packages <= copied  # the engine, installed
    application = (
        {p.name for p in DEPLOY.parent.iterdir() if (p / "__init__.py").is_file()}
        - packages
        - {"tests", "bench"}
    )
    assert application == {"workflows", "activities", "starters", "providers"}
    assert application | {"migrations"} <= copied and "LONGHAUL_APP_DIR=/app" in dockerfile  # beside it
    assert 'ENTRYPOINT ["longhaul"]' in dockerfile and "USER 10001" in dockerfile
