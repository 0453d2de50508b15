"""The deployment files: docker-compose.yml, deploy/*, Dockerfile, .dockerignore.

Two validations. A compose CLI (`docker compose` or `docker-compose`), when one is installed,
runs `config --quiet` with the variables of deploy/env.example and must refuse the file without
a secret. The structural checks below always run, CLI or not: they parse the files and assert
what the deployment relies on. Which validation ran is reported (printed with `-s`, and a
warning when the CLI part could not run).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
NGINX = ROOT / "deploy" / "nginx.conf"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"

SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD", "MALL_JWT_SECRET",
           "MALL_DATA_KEY", "GRAFANA_ADMIN_PASSWORD")
INFRA = ("postgres", "redis", "rabbitmq")
MALL_PROCESSES = ("api", "writer")
NEEDS_HEALTHCHECK = (*INFRA, *MALL_PROCESSES, "nginx", "prometheus", "grafana")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASS|DATA_KEY|AUTH)$")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[?\-][^}]*)?\}")
REQUIRED_INTERPOLATION = re.compile(r"\$\{(\w+):\?[^}]+\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(compose_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def compose_cli() -> list[str] | None:
    """`docker compose` (the plugin) if it answers, else `docker-compose`, else None."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cli in candidates:
        try:
            probe = subprocess.run([*cli, "version"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return cli
    return None


def compose_text() -> str:
    """docker-compose.yml without its comment lines (they may quote ${...} as examples)."""
    return "\n".join(line for line in COMPOSE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))


def run_config(cli: list[str], env: dict[str, str],
               empty_env_file: Path) -> subprocess.CompletedProcess[str]:
    # Only PATH, HOME and the variables given, and an empty env file: neither a real .env nor
    # the caller's shell can supply a missing secret.
    base = {k: os.environ[k] for k in ("PATH", "HOME", "DOCKER_HOST") if k in os.environ}
    empty_env_file.write_text("")
    return subprocess.run(
        [*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE),
         "--env-file", str(empty_env_file), "config", "--quiet"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env={**base, **env},
    )


# --- the compose CLI, when installed ------------------------------------------------------


def test_compose_cli_config(tmp_path: Path) -> None:
    cli = compose_cli()
    if cli is None:
        warnings.warn("no compose CLI (`docker compose` or `docker-compose`) is installed: "
                      "only the structural checks of this module validated docker-compose.yml",
                      stacklevel=1)
        return
    ran = run_config(cli, env_example(), tmp_path / "empty.env")
    assert ran.returncode == 0, ran.stderr
    print(f"validated docker-compose.yml with `{' '.join(cli)} config --quiet` "
          "and the structural checks")


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_cli_refuses_a_missing_secret(secret: str, tmp_path: Path) -> None:
    cli = compose_cli()
    if cli is None:  # the structural test_secrets_are_required checks the same ${X:?...}
        warnings.warn(f"no compose CLI: a missing {secret} checked structurally only",
                      stacklevel=1)
        return
    env = env_example()
    del env[secret]
    ran = run_config(cli, env, tmp_path / "empty.env")
    assert ran.returncode != 0
    assert "set it in .env" in ran.stderr + ran.stdout


# --- structural checks, always --------------------------------------------------------------


def test_the_whole_stack_is_there(services: dict[str, dict[str, Any]]) -> None:
    expected = {*INFRA, "migrate", *MALL_PROCESSES, "nginx", "prometheus", "grafana"}
    assert expected <= set(services)
    assert services["postgres"]["image"].split(":")[1].startswith("15")
    assert services["redis"]["image"].split(":")[1].startswith("7")
    assert services["rabbitmq"]["image"].split(":")[1].startswith("3")
    assert "management" not in services["rabbitmq"]["image"]


def test_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in NEEDS_HEALTHCHECK:
        check = services[name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), name


def test_redis_keeps_an_append_only_file(services: dict[str, dict[str, Any]]) -> None:
    command = services["redis"]["command"]
    text = " ".join(command) if isinstance(command, list) else command
    assert "--appendonly yes" in text
    assert "--appendfsync everysec" in text


def test_mall_processes_wait_for_the_migration(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate.get("restart", "no") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in MALL_PROCESSES:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["rabbitmq"]["condition"] == "service_healthy", name
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_one_image_for_every_mall_process(services: dict[str, dict[str, Any]]) -> None:
    images = {services[name]["image"] for name in ("migrate", *MALL_PROCESSES)}
    assert len(images) == 1
    for name in ("migrate", *MALL_PROCESSES):
        assert services[name]["build"]["dockerfile"] == "Dockerfile", name


def test_api_and_writer_run_several_replicas(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert api["deploy"]["replicas"] >= 3
    assert api["command"][:1] == ["serve"]
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert int(api["command"][api["command"].index("--workers") + 1]) >= 2
    assert "ports" not in api, "replicas are reached through nginx only"
    assert "container_name" not in api
    writer = services["writer"]
    assert writer["deploy"]["replicas"] >= 2
    assert writer["command"] == ["writer"]
    assert "ports" not in writer and "container_name" not in writer


def test_secrets_are_required(services: dict[str, dict[str, Any]]) -> None:
    text = compose_text()
    required = set(REQUIRED_INTERPOLATION.findall(text))
    assert set(SECRETS) <= required
    # Every reference to a secret refuses to start without it (no silent empty default).
    for match in INTERPOLATION.finditer(text):
        if match.group(1) in SECRETS:
            assert match.group(0).startswith(f"${{{match.group(1)}:?"), match.group(0)


def test_no_secret_values_in_the_file(services: dict[str, dict[str, Any]]) -> None:
    text = compose_text()
    for name, value in env_example().items():
        if name in SECRETS:
            assert value not in text, f"the example value of {name} is in docker-compose.yml"
    for service_name, service in services.items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_INTERPOLATION.fullmatch(value), (service_name, key)
            if "://" in value and "@" in value:  # a DSN with credentials
                password = value.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
                assert REQUIRED_INTERPOLATION.fullmatch(password), (service_name, key)


def test_env_example_lists_every_variable_the_file_reads() -> None:
    names = {m.group(1) for m in INTERPOLATION.finditer(compose_text())}
    assert names <= set(env_example()), names - set(env_example())


def test_env_file_is_ignored_by_git() -> None:
    patterns = (ROOT / ".gitignore").read_text().split()
    assert {".env", "/.env", ".env*"} & set(patterns), ".env must be listed in .gitignore"
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_body_limit_matches_nginx(services: dict[str, dict[str, Any]]) -> None:
    limit = int(env_of(services["api"])["MALL_MAX_BODY_BYTES"])
    match = re.search(r"^\s*client_max_body_size\s+(\d+)([kKmM]?);", NGINX.read_text(), re.M)
    assert match, "client_max_body_size missing from deploy/nginx.conf"
    scale = {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    assert int(match.group(1)) * scale == limit


def test_nginx_proxies_to_the_api_replicas(services: dict[str, dict[str, Any]]) -> None:
    conf = NGINX.read_text()
    port = services["api"]["command"][services["api"]["command"].index("--port") + 1]
    assert re.search(rf"^\s*server\s+api:{port}\b", conf, re.M)
    assert re.search(r"^\s*keepalive\s+\d+;", conf, re.M)
    assert re.search(r'^\s*proxy_set_header\s+Connection\s+\S+;', conf, re.M)
    assert "proxy_http_version 1.1;" in conf
    assert re.search(r"^\s*proxy_set_header\s+X-Request-Id\s", conf, re.M)
    mounts = services["nginx"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in mounts
    assert services["nginx"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_prometheus_scrapes_api_and_writer_replicas(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    discovered: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                assert name in services, f"{job['job_name']} discovers unknown service {name}"
                discovered[name] = int(sd["port"])
    api_cmd = services["api"]["command"]
    assert discovered["api"] == int(api_cmd[api_cmd.index("--port") + 1])
    assert discovered["writer"] == int(env_of(services["writer"])["MALL_WRITER_METRICS_PORT"])
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in \
        services["prometheus"]["volumes"]
    promtool = shutil.which("promtool")
    if promtool:
        checked = subprocess.run([promtool, "check", "config", str(PROMETHEUS)],
                                 capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_grafana_is_provisioned_from_the_repository(services: dict[str, dict[str, Any]]) -> None:
    mounts = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    providers = yaml.safe_load(
        (ROOT / "grafana" / "provisioning" / "dashboards" / "mall.yml").read_text())
    dashboards_path = providers["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{dashboards_path}:ro" in mounts
    sources = yaml.safe_load(
        (ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    url = sources["datasources"][0]["url"]
    assert url == "http://prometheus:9090" and "prometheus" in services


def test_dockerfile_builds_one_slim_non_root_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"^RUN pip install \.", dockerfile, re.M)
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert user and user[-1] not in {"root", "0"}
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in ("tests", "bench", ".venv", ".git", ".env"):
        assert path in ignored, path
    # What the image copies exists, so the build context is complete.
    for source in re.findall(r"^COPY\s+(\S+)\s", dockerfile, re.M):
        assert (ROOT / source).exists(), source
