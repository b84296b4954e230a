"""The policy pack runs as the Pulumi CLI runs it: its own process, from its own directory,
speaking the analyzer protocol, with no access to the program's modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest
import yaml
from golinks_policy import VALIDATORS, cloud, policy_name
from golinks_policy.engine import CONFIG_KEYS
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from components import planning

from .conftest import DYNAMODB, STACKS
from .harness import REPO, Deployment, camel_keys, stack_config
from .policies import DISTRIBUTION

MANDATORY = 1  # analyzer.proto EnforcementLevel


def start_analyzer(directory, config: dict):
    """`python -m pulumi.policy ENGINE policy/`, as the CLI's analyzer plugin starts it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        PULUMI_CONFIG=json.dumps(config),
        PULUMI_PROJECT="golinks",
        PULUMI_STACK="prod",
        PULUMI_DRY_RUN="true",
    )
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(REPO / "policy")],
        cwd=directory,  # the program's modules are not importable
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    yield from start_analyzer(tmp_path_factory.mktemp("elsewhere"), stack_config("prod"))


@pytest.fixture(scope="module")
def dynamodb_analyzer(tmp_path_factory):
    """The pack for prod with `golinks:linkStore: dynamodb` in its config."""
    config = {**stack_config("prod"), **DYNAMODB}
    yield from start_analyzer(tmp_path_factory.mktemp("elsewhere"), config)


def request(d: Deployment, unknown: dict[str, dict] | None = None):
    """The engine's AnalyzeStack request for a deployment (`unknown`: URN -> props not known)."""
    resources = []
    for record in d.resources:
        props = struct_pb2.Struct()
        props.update(
            camel_keys({**record.outputs, **record.inputs, **(unknown or {}).get(record.urn, {})})
        )
        provider = None
        if record.provider_region:
            provider_props = struct_pb2.Struct()
            provider_props.update({"region": record.provider_region})
            provider = analyzer_pb2.AnalyzerProviderResource(
                type="pulumi:providers:aws",
                properties=provider_props,
                urn=f"urn:pulumi:{d.stack}::golinks::pulumi:providers:aws::aws-{record.provider_region}",
                name=f"aws-{record.provider_region}",
            )
        resources.append(
            analyzer_pb2.AnalyzerResource(
                type=record.type,
                properties=props,
                urn=record.urn,
                name=record.name,
                provider=provider,
                parent=record.parent,
                dependencies=record.dependencies,
                options=analyzer_pb2.AnalyzerResourceOptions(
                    protect=record.protect,
                    ignoreChanges=list(camel_keys(dict.fromkeys(record.ignore_changes))),
                    deleteBeforeReplace=record.delete_before_replace,
                ),
            )
        )
    return analyzer_pb2.AnalyzeStackRequest(resources=resources)


def test_the_pack_declares_every_validator_as_a_mandatory_policy(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "golinks"
    assert {p.name: p.enforcementLevel for p in info.policies} == {
        policy_name(v): MANDATORY for v in VALIDATORS
    }


def test_the_pack_passes_prod_and_names_a_broken_resource(analyzer, deployments):
    healthy = analyzer.AnalyzeStack(request(deployments["prod"]))
    assert [(d.policyName, d.message) for d in healthy.diagnostics] == []

    def any_audience(d):
        provider = d.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")[0]
        provider.inputs["client_id_lists"] = ["sts.amazonaws.com", "any"]

    broken = analyzer.AnalyzeStack(request(deployments["prod"].broken(any_audience)))
    assert [(d.policyName, d.enforcementLevel) for d in broken.diagnostics] == [
        ("github-oidc-subjects-pinned", MANDATORY)
    ]
    assert broken.diagnostics[0].urn.endswith("::github-github")


def test_the_pack_reads_the_link_store_from_the_stack_s_config(
    analyzer, dynamodb_analyzer, deployments, dynamodb_deployments
):
    d = dynamodb_deployments["prod"]
    assert list(dynamodb_analyzer.AnalyzeStack(request(d)).diagnostics) == []
    # Judged as the other store, each stack is reported (not crashed on) as the wrong one.
    for pack, stack in ((analyzer, d), (dynamodb_analyzer, deployments["prod"])):
        judged = pack.AnalyzeStack(request(stack)).diagnostics
        assert "one-link-store" in {x.policyName for x in judged}


def test_a_value_unknown_during_preview_defers_the_policy_instead_of_failing_it(
    analyzer, deployments
):
    d = deployments["prod"]
    dist = d.of_type(DISTRIBUTION)[0]
    response = analyzer.AnalyzeStack(request(d, {dist.urn: {"web_acl_id": UNKNOWN_STRING_VALUE}}))
    assert {(x.policyName, x.enforcementLevel) for x in response.diagnostics} == {
        ("api-only-through-cloudfront", 0),
        ("cloudfront-https-tls-waf", 0),
    }
    assert all("during preview" in x.message for x in response.diagnostics)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_sets_what_the_pack_reads(stack):
    config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert set(CONFIG_KEYS.values()) <= set(config)


def test_the_pack_knows_the_program_s_constants():
    assert cloud.EDGE_REGION == planning.EDGE_REGION
    assert cloud.GITHUB_AUDIENCE == planning.GITHUB_AUDIENCE
    assert cloud.GITHUB_OIDC_HOST == planning.GITHUB_OIDC_HOST
    assert cloud.github_subject("o/r", "prod") == planning.github_subject("o/r", "prod")
