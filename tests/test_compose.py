"""compose.yaml validates, alone and with the "scale" profile: always against the Compose Specification's own JSON
schema (tests/fixtures/compose-spec.json, from github.com/compose-spec/compose-spec, Apache-2.0) with `.env`
interpolated as Compose does; and with `docker compose config` too where this machine has Compose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCALE = {"postgres", "replica-1", "replica-2", "worker-1", "worker-2", "caddy", "prometheus"}
SCHEMA = json.loads((ROOT / "tests/fixtures/compose-spec.json").read_text())
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, and $$ for a literal dollar
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))")


def _compose() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _interpolate(node: object, env: dict[str, str]) -> object:
    """Compose's variable substitution over every string of the file; a missing required variable fails."""
    if isinstance(node, dict):
        return {key: _interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        value, op, arg = env.get(name), match.group("op"), match.group("arg")
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-") and unset:
            return arg or ""
        if op in (":?", "?") and unset:
            raise AssertionError(f"required variable {name} is not set: {arg}")
        return value or ""

    return _VARIABLE.sub(substitute, node)


def _config(project: Path, profiles: list[str]) -> dict:
    """What `docker compose config` checks and prints, as far as these tests need it: the file valid under the
    specification after interpolation, and the services the active profiles enable."""
    document = _interpolate(yaml.safe_load((project / "compose.yaml").read_text()), _dotenv(project / ".env"))
    jsonschema.Draft7Validator(SCHEMA).validate(document)  # the draft its $schema names
    services = {
        name: service
        for name, service in document["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on {needed}, which these profiles do not start"
        for env_file in (
            service.get("env_file", [])
            if isinstance(service.get("env_file"), list)
            else [service.get("env_file")]
            if service.get("env_file")
            else []
        ):
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert (project / path).is_file(), f"{name}: env_file {path} is missing"
    return {**document, "services": services}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what compose.yaml refers to, with .env made from .env.example as a user would."""
    for name in ("compose.yaml", "Dockerfile", "deploy"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    return tmp_path


@pytest.mark.parametrize("profile", [[], ["scale"]], ids=["default", "scale"])
def test_compose_file_follows_the_specification(project: Path, profile: list[str]) -> None:
    config = _config(project, profile)
    assert "imagine-bot" in config["services"]
    if profile:
        assert SCALE <= set(config["services"])
    bots = [
        name
        for name, service in config["services"].items()
        if "build" in service or ("image" in service and "imagine" in str(service.get("image")))
    ]
    for name in bots:
        assert "/healthz" in str(config["services"][name].get("healthcheck")), name
    compose = _compose()
    if compose is not None:  # where Compose itself is installed, it must agree
        flags = [arg for name in profile for arg in ("--profile", name)]
        checked = subprocess.run(
            [*compose, *flags, "config", "--services"], cwd=project, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stderr
        assert set(checked.stdout.split()) == set(config["services"])


def test_the_specification_check_catches_a_broken_file(project: Path) -> None:
    compose = project / "compose.yaml"
    compose.write_text(compose.read_text().replace("services:", "servics:", 1))
    with pytest.raises(jsonschema.ValidationError):
        _config(project, [])


def test_the_scale_profile_refers_to_committed_configs() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    for config in ("deploy/Caddyfile", "deploy/prometheus.yml"):
        assert f"./{config}:" in compose and (ROOT / config).is_file()
    targets = (ROOT / "deploy/prometheus.yml").read_text()
    assert all(f"{name}:8080" in targets for name in ("replica-1", "replica-2", "worker-1", "worker-2"))
    assert "replica-1:8080 replica-2:8080" in (ROOT / "deploy/Caddyfile").read_text()
