"""Invariants of the rendered overlays, asserted directly (the policy scanner is a second net):
hardened pods, no secret values, and every service complete (Service, PDB, NetworkPolicy,
migration Job, autoscaler) with the configuration its Settings class accepts."""

from __future__ import annotations

import importlib
import re

SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|DATABASE_URL|USERNAME)", re.I)
CLUSTER_SCOPED = {"Namespace"}


def pods(manifests):
    """(workload, pod spec) of every Deployment and Job."""
    return [(w, w["spec"]["template"]["spec"]) for w in manifests.workloads]


def test_every_namespaced_resource_says_where_it_goes(overlay):
    for doc in overlay.docs:
        if doc["kind"] in CLUSTER_SCOPED:
            continue
        expected = "kafka" if doc["kind"] == "KafkaTopic" else "parcours"
        assert doc["metadata"].get("namespace") == expected, f"{doc['kind']}/{doc['metadata']['name']}"


def test_no_secret_is_shipped(overlay):
    assert not overlay.of("Secret"), "Secrets are created by the operator, never rendered from the repository"
    for config_map in overlay.of("ConfigMap"):
        leaked = [k for k in config_map["data"] if SECRET_NAME.search(k)]
        assert not leaked, f"{config_map['metadata']['name']} holds secret settings: {leaked}"


def test_pods_are_hardened(overlay):
    for workload, pod in pods(overlay):
        what = f"{workload['kind']}/{workload['metadata']['name']}"
        assert pod["automountServiceAccountToken"] is False, what
        assert pod["serviceAccountName"] == workload["metadata"]["name"].removesuffix("-migrate"), what
        assert overlay.named("ServiceAccount", pod["serviceAccountName"]) is not None, what
        assert pod["terminationGracePeriodSeconds"] == 30, what
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), what
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001 and ctx["runAsGroup"] == 10001, what
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, what
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert not pod.get("initContainers"), what
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, what
            assert sc["readOnlyRootFilesystem"] is True, what
            assert sc["allowPrivilegeEscalation"] is False and sc.get("privileged") is False, what
            assert sc["capabilities"] == {"drop": ["ALL"]}, what
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, what
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{what}: {bound}"
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{what}: writable /tmp"
            image, _, tag = container["image"].rpartition(":")
            assert re.fullmatch(r"(.+/)?parcours/(ingest|router|channels|tracker|dunning|portal)", image), what
            assert tag and tag != "latest", f"{what}: image {container['image']}"


def test_servers_have_probes(overlay, k8s, service):
    container = overlay.deployment(service)["spec"]["template"]["spec"]["containers"][0]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port == {"http": k8s.HTTP_PORTS[service]}
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    assert container["readinessProbe"]["timeoutSeconds"] >= 5, "/readyz waits up to 2 s for each of DB and broker"


def test_every_service_is_complete(overlay, service):
    deployment = overlay.deployment(service)
    name = deployment["metadata"]["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels["app.kubernetes.io/component"] == "server"

    svc = overlay.named("Service", name)
    assert svc is not None and svc["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]

    pdbs = [p for p in overlay.of("PodDisruptionBudget") if _selects(p["spec"]["selector"], labels)]
    assert len(pdbs) == 1, f"{name}: {len(pdbs)} PodDisruptionBudgets"
    assert pdbs[0]["spec"].get("maxUnavailable") == 1, "a single replica can still be drained"

    own = [n for n in overlay.of("NetworkPolicy") if n["spec"]["podSelector"] and
           _selects(n["spec"]["podSelector"], labels)]
    assert len(own) == 1, f"{name}: {len(own)} NetworkPolicies of its own"

    jobs = [j for j in overlay.of("Job")
            if j["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == service]
    assert len(jobs) == 1, f"{name}: {len(jobs)} migration Jobs"
    job, server = jobs[0]["spec"], deployment["spec"]["template"]["spec"]["containers"][0]
    (migrate,) = job["template"]["spec"]["containers"]
    assert job["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "migration"
    assert not _selects(deployment["spec"]["selector"], job["template"]["metadata"]["labels"])
    assert migrate["image"] == server["image"] and migrate["args"] == ["migrate"] and "command" not in migrate
    assert migrate["env"] == server["env"] and migrate["envFrom"] == server["envFrom"], "same settings"
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert 0 < job["backoffLimit"] <= 6 and job["ttlSecondsAfterFinished"] > 0 and job["activeDeadlineSeconds"] > 0

    scalers = [h for h in overlay.of("HorizontalPodAutoscaler") + overlay.of("ScaledObject")
               if h["spec"]["scaleTargetRef"]["name"] == name]
    if overlay.name == "dev":
        assert not scalers and deployment["spec"]["replicas"] == 1
    else:
        assert len(scalers) == 1, f"{name}: {len(scalers)} autoscalers (a ScaledObject replaces the HPA)"
        scaler = scalers[0]["spec"]
        assert "replicas" not in deployment["spec"], "the autoscaler owns replicas; apply would reset them"
        assert scaler.get("minReplicas", scaler.get("minReplicaCount")) >= 2
        assert scaler.get("maxReplicas", scaler.get("maxReplicaCount")) <= 12, "at most one consumer per partition"


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_settings_are_the_services_own(overlay, service):
    """Every PARCOURS_* variable is a field of the service's Settings (a typo would be ignored
    silently: extra="ignore"); secrets come from Secret parcours-<service> only."""
    settings = importlib.import_module(f"parcours_{service}.config").Settings
    prefix = f"PARCOURS_{service.upper()}_"
    container = overlay.deployment(service)["spec"]["template"]["spec"]["containers"][0]
    (source,) = container["envFrom"]
    config = overlay.config_map(source["configMapRef"]["name"].rsplit("-", 1)[0])
    names = list(config["data"]) + [e["name"] for e in container["env"]]
    for name in names:
        assert name.startswith(prefix) and name.removeprefix(prefix).lower() in settings.model_fields, name
    for env in container["env"]:
        assert set(env) == {"name", "valueFrom"}, f"{env['name']}: a literal value belongs in the ConfigMap"
        assert env["valueFrom"]["secretKeyRef"]["name"] == f"parcours-{service}"
    assert config["data"][f"{prefix}HTTP_HOST"] == "0.0.0.0"
    assert int(config["data"][f"{prefix}HTTP_PORT"]) == settings.model_fields["http_port"].default
    expected = "development" if overlay.name == "dev" else "production"
    assert config["data"][f"{prefix}ENVIRONMENT"] == expected


def test_prod_settings_are_accepted(prod, service, monkeypatch):
    """The prod ConfigMap plus non-default secrets builds the Settings: production refuses dev
    secrets, and every non-secret value parses."""
    settings = importlib.import_module(f"parcours_{service}.config").Settings
    container = prod.deployment(service)["spec"]["template"]["spec"]["containers"][0]
    config = prod.config_map(container["envFrom"][0]["configMapRef"]["name"].rsplit("-", 1)[0])
    placeholders = {"DATABASE_URL": "postgresql+asyncpg://parcours:pw@db:5432/parcours", "SMTP_PORT": "587",
                    "LINK_SECRETS": '["a-real-secret"]', "ACK_SECRETS": '{"edi": ["a-real-secret"]}'}
    for key, value in config["data"].items():
        monkeypatch.setenv(key, value)
    for env in container["env"]:
        if not env["valueFrom"]["secretKeyRef"].get("optional"):
            monkeypatch.setenv(env["name"], placeholders.get(env["name"].split("_", 2)[2], "a-real-secret"))
    parsed = settings()
    assert parsed.is_production


def test_network_is_default_deny(overlay):
    policies = {p["metadata"]["name"]: p["spec"] for p in overlay.of("NetworkPolicy")}
    assert policies["default-deny-all"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies["allow-dns"]
    assert dns["podSelector"] == {} and dns["policyTypes"] == ["Egress"] and "ingress" not in dns
    assert {(p["protocol"], p["port"]) for r in dns["egress"] for p in r["ports"]} == {("UDP", 53), ("TCP", 53)}
    for name, spec in policies.items():
        for rule in spec.get("egress", []):
            assert rule.get("ports"), f"{name}: an egress rule without ports opens everything"
        for rule in spec.get("ingress", []):
            assert rule.get("from") and rule.get("ports"), f"{name}: an ingress rule open to all"


def test_each_service_reaches_only_what_it_needs(overlay, service):
    deployment = overlay.deployment(service)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (policy,) = [n["spec"] for n in overlay.of("NetworkPolicy")
                 if n["spec"]["podSelector"] and _selects(n["spec"]["podSelector"], labels)]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    extra_egress = {"channels": {25, 587, 465, 8101, 443}, "portal": {8101, 8105, 25, 587, 443},
                    "ingest": {443}}.get(service, set())  # ingest: its S3-compatible document store
    assert egress_ports == {5432, 9092} | extra_egress
    sources = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               if "namespaceSelector" in peer else "pod:" + peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
               for rule in policy["ingress"] for peer in rule["from"]}
    sources -= {"pod:portal", "pod:channels"} if service == "ingest" else set()  # they read documents from ingest
    sources -= {"pod:portal"} if service == "dunning" else set()  # the console's agenda, holds and strategies
    backends = {path["backend"]["service"]["name"] for ing in overlay.of("Ingress")
                for rule in ing["spec"]["rules"] for path in rule["http"]["paths"]}
    public = deployment["metadata"]["name"] in backends
    assert sources == ({"ingress-nginx", "monitoring"} if public else {"monitoring"}), service


def test_ingress_exposes_the_public_routes_only(overlay):
    services = {s["metadata"]["name"]: s for s in overlay.of("Service")}
    routes = {}
    for ingress in overlay.of("Ingress"):
        spec = ingress["spec"]
        assert spec["ingressClassName"] == "nginx"
        hosts = {h for tls in spec["tls"] for h in tls["hosts"]}
        assert all(tls["secretName"] == "parcours-tls" for tls in spec["tls"])
        for rule in spec["rules"]:
            assert rule["host"] in hosts, f"{rule['host']} has no TLS"
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services and backend["port"] == {"name": "http"}
                routes[(rule["host"].split(".")[0], path["path"])] = backend["name"].removeprefix("parcours-")
    assert routes == {
        ("api", "/v1/invoices/[^/]+/reminders"): "dunning",
        ("api", "/v1/invoices/[^/]+/journey"): "tracker",
        ("api", "/v1/invoices"): "ingest",
        ("api", "/v1/customers"): "router",
        ("track", "/l"): "tracker",
        ("track", "/v"): "tracker",
        ("track", "/v1/acks"): "tracker",
        ("track", "/v1/peppol/events"): "channels",
        ("track", "/v1/as2/mdn"): "channels",
        ("track", "/v1/invoices"): "tracker",
        **{("portal", path): "portal" for path in ("/console", "/login", "/logout", "/lang", "/p/", "/portal",
                                                   "/static")},
    }
    assert not any("/tenants" in path or "/admin" in path for _, path in routes), "admin APIs stay internal"


def test_ingress_accepts_the_largest_invoice(overlay):
    settings = importlib.import_module("parcours_ingest.config").Settings
    limit = settings.model_fields["max_body_bytes"].default
    api = overlay.named("Ingress", "parcours-api")
    size = api["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert int(size.removesuffix("m")) * 1024 * 1024 > limit
