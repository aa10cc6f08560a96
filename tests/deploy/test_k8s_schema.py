"""Every object the kustomizations render is valid against the Kubernetes OpenAPI schema (kubernetes-validate,
PyPI, Apache-2.0: it ships the schemas; strict = unknown fields are errors), like kubeconform would check."""

from __future__ import annotations

import copy

import pytest
from deploy_helpers import DEPLOY
from test_k8s_sharded import needs_kubectl, render

kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate not installed (test extra)")
K8S_VERSION = "1.30"


def _errors(docs: list[dict]) -> list[str]:
    errors = []
    for doc in docs:
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except (kv.ValidationError, kv.SchemaNotFoundError, kv.InvalidSchemaError) as exc:
            errors.append(f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {str(exc).splitlines()[0]}")
    return errors


@needs_kubectl
@pytest.mark.parametrize("overlay", ["", "sharded"])
def test_rendered_manifests_are_valid_kubernetes_objects(overlay):
    docs = render(DEPLOY / "k8s" / overlay)
    assert len(docs) >= 5
    assert _errors(docs) == []


@needs_kubectl
def test_the_validator_refuses_a_broken_object():
    docs = render(DEPLOY / "k8s" / "sharded")
    shard = copy.deepcopy(next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "facestream-shard"))
    shard["spec"]["replicas"] = "two"
    container = shard["spec"]["template"]["spec"]["containers"][0]
    container["imagePullPolicyy"] = "Always"
    assert len(_errors([shard])) == 1
