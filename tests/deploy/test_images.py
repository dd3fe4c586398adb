"""The Dockerfiles, read (no Docker engine here to build them): two stages on the same slim
base, the pinned install in the first, only the virtualenv and a non-root user in the
second, and an entrypoint that the Deployment and the migration Job both use."""

from __future__ import annotations

import fnmatch
import importlib
import re


def instructions(path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    rows = [line.strip() for line in text.splitlines()]
    return [(row.split(None, 1)[0].upper(), row.split(None, 1)[1]) for row in rows if row and not row.startswith("#")]


def stages(path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for op, arg in instructions(path):
        if op == "FROM":
            result.append([])
        result[-1].append((op, arg))
    return result


def test_two_stages_on_the_same_slim_base(k8s, service):
    builder, runtime = stages(k8s.REPO / "services" / service / "Dockerfile")
    assert builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert runtime[0] == ("FROM", "python:3.11-slim"), "the venv's interpreter links into the base image"


def test_builder_installs_the_pinned_service(k8s, service):
    builder, _ = stages(k8s.REPO / "services" / service / "Dockerfile")
    runs = [arg for op, arg in builder if op == "RUN"]
    assert f"/opt/venv/bin/pip install -c constraints.txt ./libs/contracts ./libs/runtime ./services/{service}" in runs
    copied = [arg.split()[0] for op, arg in builder if op == "COPY"]
    assert copied == ["constraints.txt", "libs/contracts", "libs/runtime", f"services/{service}"]


def test_runtime_is_minimal_and_unprivileged(k8s, service):
    _, runtime = stages(k8s.REPO / "services" / service / "Dockerfile")
    ops = dict((op, arg) for op, arg in runtime)
    assert ops["USER"] == "10001:10001"
    assert [arg for op, arg in runtime if op == "COPY"] == ["--from=builder /opt/venv /opt/venv"]
    runs = " ".join(arg for op, arg in runtime if op == "RUN")
    assert not re.search(r"apt-get|pip install|gcc|build-essential", runs), "no build tools in the final stage"
    assert f'ENTRYPOINT ["python", "-m", "parcours_{service}"]' in [f"{op} {arg}" for op, arg in runtime]
    port = importlib.import_module(f"parcours_{service}.config").Settings.model_fields["http_port"].default
    assert ops["EXPOSE"] == str(port) and f"PARCOURS_{service.upper()}_HTTP_HOST=0.0.0.0" in ops["ENV"]


def test_dockerignore_keeps_the_context_small_and_clean(k8s):
    patterns = [line.strip() for line in (k8s.REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        """Whether the path or one of its folders matches a pattern (enough for these patterns)."""
        parts = path.split("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(fnmatch.fnmatch(c, p) or fnmatch.fnmatch(c.rsplit("/", 1)[-1], p.removeprefix("**/"))
                   for c in candidates for p in patterns)

    for path in (".git/config", ".venv/bin/python", ".parcours/stack.json", "tests/conftest.py",
                 "libs/runtime/parcours_runtime.egg-info/PKG-INFO", "libs/runtime/parcours_runtime/__pycache__/x.pyc"):
        assert ignored(path), f"{path} should stay out of the build context"
    for path in ("constraints.txt", "libs/contracts/pyproject.toml", "libs/runtime/parcours_runtime/service.py",
                 "services/ingest/parcours_ingest/store/migrations/env.py",
                 "services/channels/parcours_channels/adapters/mail/templates"):
        assert not ignored(path), f"{path} is needed by the build"
