"""The manifests that follow from the contracts are up to date: a topic added to
parcours_contracts.topics, or an event type a service starts consuming, changes them."""

from __future__ import annotations

import importlib

from parcours_contracts import topics


def test_committed_files_equal_the_generated_ones(k8s):
    generator = k8s.load_generator()
    for path, text in generator.outputs().items():
        relative = path.relative_to(k8s.REPO)
        assert path.is_file(), f"{relative} is missing: run .venv/bin/python deploy/k8s/generate.py"
        assert path.read_text() == text, f"{relative} is stale: run .venv/bin/python deploy/k8s/generate.py"


def test_every_topic_and_its_dead_letter_topic_exist(overlay):
    rendered = {t["spec"]["topicName"]: t["spec"] for t in overlay.of("KafkaTopic")}
    assert set(rendered) == set(topics.ALL_WITH_DLQ)
    for name in topics.ALL:
        assert rendered[topics.dlq(name)]["config"]["retention.ms"] > rendered[name]["config"]["retention.ms"] > 0 \
            or rendered[name]["config"]["retention.ms"] == -1
    assert rendered[topics.TENANT_EVENTS]["config"]["retention.ms"] == -1, \
        "a new consumer group rebuilds its API keys from the start of tenant.events"


def test_scaled_objects_follow_the_consumer_groups(prod, k8s):
    generator = k8s.load_generator()
    by_service = {o["metadata"]["labels"]["app.kubernetes.io/name"]: o for o in prod.of("ScaledObject")}
    for service in k8s.SERVICES:
        subscribed, consumes = generator.consumed_topics(service)
        assert importlib.import_module(f"parcours_{service}.app").definition().name == service, \
            "the consumer group id is the definition's name"
        if not consumes:
            assert service not in by_service
            continue
        triggers = by_service[service]["spec"]["triggers"]
        assert sorted(t["metadata"]["topic"] for t in triggers if t["type"] == "kafka") == subscribed
