"""The compose deployment: no Docker engine runs here, so check what the code expects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from aerovision.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"proxy", "api", "worker", "notifier", "redis", "postgres", "minio"}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_seven_services_each_with_a_health_check() -> None:
    services = _compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["proxy"]["ports"] == ["8888:80"]


def test_every_aerovision_variable_is_a_setting_and_the_scale_out_ones_are_set() -> None:
    compose = _compose()
    fields = {f"AEROVISION_{name.upper()}" for name in Settings.model_fields}
    for role in ("api", "worker", "notifier"):
        env = compose["services"][role]["environment"]
        assert set(env) <= fields, set(env) - fields
        for needed in (
            "AEROVISION_DATABASE_URL", "AEROVISION_QUEUE_URL", "AEROVISION_STORAGE_URL",
            "AEROVISION_S3_ENDPOINT_URL", "AEROVISION_S3_ACCESS_KEY_ID",
            "AEROVISION_S3_SECRET_ACCESS_KEY",
        ):
            assert needed in env, (role, needed)
        settings = Settings(**{
            k[len("AEROVISION_"):].lower(): re.sub(r"\$\{[^}:]+:-([^}]*)\}", r"\1", str(v))
            for k, v in env.items()
        })
        assert settings.db_url.startswith("postgresql+psycopg://")
        assert settings.effective_queue_url == "redis://redis:6379/0"
        assert settings.storage_url == "s3://aerovision/files"


def test_roles_run_the_real_commands() -> None:
    services = _compose()["services"]
    assert "aerovision migrate" in " ".join(services["api"]["command"])
    assert "aerovision api" in " ".join(services["api"]["command"])
    assert services["worker"]["command"][:2] == ["aerovision", "worker"]
    assert services["notifier"]["command"] == ["aerovision", "notifier"]
    assert "--appendonly" in services["redis"]["command"]
    from click.testing import CliRunner

    from aerovision.cli import main

    for command in ("api", "worker", "notifier", "migrate", "check"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_proxy_fronts_api_ui_and_files_with_room_for_uploads() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server api:8888" in conf
    for path in ("/api/", "(uploads|thumbnails|results)", "location / "):
        assert path in conf
    size = int(re.search(r"client_max_body_size (\d+)m;", conf).group(1))  # type: ignore[union-attr]
    assert size >= 2 * Settings().max_upload_mb + 1


def test_dockerfile_is_slim_non_root_with_a_health_check() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"AEROVISION_{name.upper()}" for name in Settings.model_fields
        if f"AEROVISION_{name.upper()}" not in readme
    ]
    assert missing == []
