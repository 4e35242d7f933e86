"""The container bundle: docker-compose.yml valid against the Compose specification's JSON schema,
every file it (and each Dockerfile) refers to present in the repository and not hidden by
.dockerignore, the services wired the way the DevTools pitfalls require, and the Kubernetes
sidecar example consistent with the same rules. No Docker engine is needed: nothing is run.

The schema is ``$GOWASM_COMPOSE_SCHEMA`` or ``<repo>/../shared/reference/compose-spec.schema.json``
(the layout CI clones into); without it the schema test skips, saying where it looked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
SIDECAR = REPO / "deploy" / "kubernetes" / "sidecar.yaml"
SCHEMA_DEFAULT = REPO.parent / "shared" / "reference" / "compose-spec.schema.json"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def schema_path() -> Path:
    return Path(os.environ.get("GOWASM_COMPOSE_SCHEMA") or SCHEMA_DEFAULT)


# -- Dockerfile and .dockerignore, read the way Docker reads them (the subset these files use) ----


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def copy_sources(dockerfile: Path) -> list[str]:
    """Sources of COPY/ADD instructions that read the build context (not --from another stage)."""
    sources: list[str] = []
    for word, args in dockerfile_instructions(dockerfile):
        if word not in {"COPY", "ADD"}:
            continue
        parts = json.loads(args) if args.startswith("[") else shlex.split(args)
        flags = [p for p in parts if p.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        sources.extend(p for p in parts[:-1] if not p.startswith("--"))
    return sources


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(context: Path, relative: str) -> bool:
    """Whether .dockerignore keeps ``relative`` out of the build context: the last pattern that matches
    the path or one of its parent directories decides, ``!`` patterns re-include."""
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return False
    candidates = [str(PurePosixPath(relative))]
    candidates += [str(p) for p in PurePosixPath(relative).parents if str(p) != "."]
    excluded = False
    for line in ignore.read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        regex = _glob_regex(str(PurePosixPath(pattern.lstrip("!").strip("/"))))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def builds() -> list[tuple[str, Path, Path]]:
    """(service, build context, Dockerfile) of every service built from this repository."""
    out = []
    for name, service in services().items():
        build = service.get("build")
        if build is None:
            continue
        build = {"context": build} if isinstance(build, str) else build
        context = (COMPOSE.parent / build["context"]).resolve()
        out.append((name, context, context / build.get("dockerfile", "Dockerfile")))
    return out


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host source, container target) of a service's bind mounts, short or long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            if source.startswith((".", "/")):
                mounts.append((source, rest.split(":")[0]))
        elif volume.get("type") == "bind":
            mounts.append((volume["source"], volume["target"]))
    return mounts


def flag(command: list[str], name: str) -> list[str]:
    """Values of a repeatable ``--name VALUE`` / ``--name=VALUE`` flag."""
    values = [a.split("=", 1)[1] for a in command if a.startswith(name + "=")]
    values += [command[i + 1] for i, a in enumerate(command[:-1]) if a == name]
    return values


# -- tests ----------------------------------------------------------------------------------------


def test_compose_file_matches_the_compose_spec() -> None:
    """docker-compose.yml validates against the Compose specification's JSON schema (draft-07)."""
    path = schema_path()
    if not path.is_file():
        pytest.skip(f"Compose schema not found at {path} (set GOWASM_COMPOSE_SCHEMA)")
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_every_referenced_file_exists() -> None:
    """Build contexts, Dockerfiles, bind-mount sources, env files and config files exist in the repo."""
    for name, context, dockerfile in builds():
        assert context.is_dir(), f"{name}: build context {context}"
        assert dockerfile.is_file(), f"{name}: {dockerfile}"
    for name, service in services().items():
        for source, _ in bind_mounts(service):
            assert (COMPOSE.parent / source).exists(), f"{name}: bind mount source {source}"
        env_files = service.get("env_file", [])
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            env_path = env_file if isinstance(env_file, str) else env_file["path"]
            assert (COMPOSE.parent / env_path).is_file(), f"{name}: env_file {env_path}"
    for section in ("configs", "secrets"):
        for name, item in (compose().get(section) or {}).items():
            if "file" in item:
                assert (COMPOSE.parent / item["file"]).exists(), f"{section}.{name}: {item['file']}"


def test_dockerfiles_copy_only_what_the_context_sends() -> None:
    """Every COPY source of every built image exists in its context and is not excluded by .dockerignore."""
    for name, context, dockerfile in builds():
        for source in copy_sources(dockerfile):
            matches = sorted(context.glob(source.rstrip("/"))) if source != "." else [context]
            assert matches, f"{name}: COPY {source}: nothing in {context}"
            for match in matches:
                files = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
                files = [f for f in files if "__pycache__" not in f.parts]
                assert files, f"{name}: COPY {source}: empty"
                hidden = [f for f in files if dockerignored(context, f.relative_to(context).as_posix())]
                assert not hidden, f"{name}: COPY {source}: .dockerignore excludes {hidden[:3]}"


def test_exporter_image_holds_the_package_sources() -> None:
    """The exporter image copies what pyproject's wheel is built from: daemon/, the shim and its manifest."""
    (dockerfile,) = [d for name, _, d in builds() if name == "exporter"]
    sources = {s.rstrip("/") for s in copy_sources(dockerfile)}
    assert {"pyproject.toml", "README.md", "daemon", "instrument/manifest.json", "instrument/src"} <= sources
    instructions = dockerfile_instructions(dockerfile)
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert ("EXPOSE", "9464") in instructions
    assert any(word == "ENTRYPOINT" and "gowasm-exporter" in args for word, args in instructions)


def test_exporter_attaches_over_loopback_in_the_browser_namespace() -> None:
    """The exporter shares chromium's network namespace and attaches to DevTools on 127.0.0.1, never by name."""
    exporter, chromium = services()["exporter"], services()["chromium"]
    assert exporter["network_mode"] == "service:chromium"
    command = exporter["command"]
    (cdp,) = flag(command, "--cdp")
    assert urlsplit(cdp).hostname in {"127.0.0.1", "localhost"}, "DevTools rejects Host headers that are names"
    assert flag(command, "--listen") == ["0.0.0.0:9464"]
    assert flag(command, "--open"), "no page to watch"
    (_, _, chrome_dockerfile) = next(b for b in builds() if b[0] == "chromium")
    entrypoint = " ".join(args for word, args in dockerfile_instructions(chrome_dockerfile) if word == "ENTRYPOINT")
    for required in ("--headless", "--no-sandbox", "--remote-debugging-port=9222", "--user-data-dir="):
        assert required in entrypoint, required
    assert "shm_size" in chromium or "--disable-dev-shm-usage" in entrypoint, "renderers crash on a 64 MB /dev/shm"
    for name, service in services().items():
        assert not any("9222" in str(port) for port in service.get("ports", [])), f"{name} publishes DevTools"


def _service_hosts() -> dict[str, str]:
    """Host name on the compose network -> the service whose network namespace answers it."""
    hosts = {}
    for name, service in services().items():
        if "network_mode" in service:
            continue  # reachable only through the namespace it joins
        hosts[name] = name
        networks = service.get("networks") or {}
        for network in networks.values() if isinstance(networks, dict) else []:
            for alias in (network or {}).get("aliases", []):
                hosts[alias] = name
    return hosts


def test_prometheus_alertmanager_and_grafana_reach_each_other() -> None:
    """Every host:port in the Prometheus and Grafana configs resolves to the compose service listening there."""
    hosts = _service_hosts()
    prometheus = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "gowasm-exporter")
    (target,) = [t for sc in job["static_configs"] for t in sc["targets"]]
    host, _, port = target.partition(":")
    # The exporter listens in chromium's namespace: its port is reached through chromium's names.
    assert hosts.get(host) == services()["exporter"]["network_mode"].removeprefix("service:")
    assert flag(services()["exporter"]["command"], "--listen") == [f"0.0.0.0:{port}"]
    (alertmanager,) = [
        t for am in prometheus["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]
    ]
    assert hosts.get(alertmanager.partition(":")[0]) == "alertmanager"
    datasources = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )
    url = urlsplit(datasources["datasources"][0]["url"])
    assert (hosts.get(url.hostname or ""), url.port) == ("prometheus", 9090)


def test_mounts_put_the_configs_where_the_services_read_them() -> None:
    """Prometheus, Alertmanager and Grafana get the repo's configs at the paths their flags and provisioning name."""
    mounts = {name: dict(bind_mounts(service)) for name, service in services().items()}
    assert mounts["prometheus"]["./prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services()["prometheus"]["command"]
    assert mounts["alertmanager"]["./prometheus/alertmanager.yml"] == "/etc/alertmanager/alertmanager.yml"
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in services()["alertmanager"]["command"]
    assert mounts["grafana"]["./grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/gowasm.yml").read_text(encoding="utf-8"))
    assert mounts["grafana"]["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]


def test_demo_image_takes_wasm_exec_from_its_go_toolchain() -> None:
    """The demo image copies wasm_exec.js from the Go image's GOROOT at build time; the repo holds none."""
    (_, context, dockerfile) = next(b for b in builds() if b[0] == "demo")
    assert not list(REPO.glob("examples/**/wasm_exec.js"))
    text = dockerfile.read_text(encoding="utf-8")
    assert '"$(go env GOROOT)"' in text and "lib/wasm/wasm_exec.js" in text
    assert "GOOS=js GOARCH=wasm go build" in text
    assert (context / "main.go").is_file() and (context / "index.html").is_file()


def test_kubernetes_sidecar_follows_the_same_rules() -> None:
    """The sidecar example attaches over the pod's loopback, exposes metrics, not DevTools, and is discoverable."""
    docs = [d for d in yaml.safe_load_all(SIDECAR.read_text(encoding="utf-8")) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    exporter = containers["gowasm-exporter"]
    (cdp,) = flag(exporter["args"], "--cdp")
    assert urlsplit(cdp).hostname == "127.0.0.1"
    (metrics,) = [p for p in exporter["ports"] if p["name"] == "metrics"]
    assert flag(exporter["args"], "--listen") == [f"0.0.0.0:{metrics['containerPort']}"]
    for container in containers.values():
        assert all(p["containerPort"] != 9222 for p in container.get("ports", [])), container["name"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(metrics["containerPort"])
    (monitor,) = [d for d in docs if d["kind"] == "PodMonitor"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    relabel = [r for r in endpoint["relabelings"] if r.get("targetLabel") == "job"]
    assert relabel and relabel[0]["replacement"] == "gowasm-exporter", "the alert rules select job=gowasm-exporter"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    shm = next(m for m in containers["chromium"]["volumeMounts"] if m["mountPath"] == "/dev/shm")
    assert volumes[shm["name"]]["emptyDir"]["medium"] == "Memory"
