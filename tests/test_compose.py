"""compose.yaml validates, alone and with the "scale" profile, with whichever Compose this machine has."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCALE = {"postgres", "replica-1", "replica-2", "worker-1", "worker-2", "caddy", "prometheus"}


def _compose() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what compose.yaml refers to, with .env made from .env.example as a user would."""
    for name in ("compose.yaml", "Dockerfile", "deploy"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    return tmp_path


@pytest.mark.parametrize("profile", [[], ["--profile", "scale"]], ids=["default", "scale"])
def test_compose_config_validates(project: Path, profile: list[str]) -> None:
    compose = _compose()
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    checked = subprocess.run([*compose, *profile, "config"], cwd=project, capture_output=True, text=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stderr
    services = subprocess.run([*compose, *profile, "config", "--services"], cwd=project, capture_output=True,
                              text=True, timeout=60).stdout.split()
    assert "imagine-bot" in services
    if profile:
        assert SCALE <= set(services)
    assert "/healthz" in checked.stdout


def test_the_scale_profile_refers_to_committed_configs() -> None:
    compose = (ROOT / "compose.yaml").read_text()
    for config in ("deploy/Caddyfile", "deploy/prometheus.yml"):
        assert f"./{config}:" in compose and (ROOT / config).is_file()
    targets = (ROOT / "deploy/prometheus.yml").read_text()
    assert all(f"{name}:8080" in targets for name in ("replica-1", "replica-2", "worker-1", "worker-2"))
    assert "replica-1:8080 replica-2:8080" in (ROOT / "deploy/Caddyfile").read_text()
