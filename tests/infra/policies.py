"""The policy pack's policies, run on a mocked deployment exactly as the engine runs them.

The harness's records become the resources the Pulumi engine hands a policy
pack (wire property names, the provider with its region, dependencies as
resources), the pack's own `StackValidationPolicy` objects validate them, and
what they report comes back as "URN: message" lines.
"""

from __future__ import annotations

from golinks_policy import VALIDATORS, Stack, StackFacts, policy_name, stack_policies
from golinks_policy.engine import stack_from_engine
from golinks_policy.types import (
    ALARM,
    BUCKET,
    DISTRIBUTION,
    FUNCTION,
    GLOBAL_GROUP,
    IP_SET,
    PERMISSION,
    QUEUE,
    REPLICATION_GROUP,
    ROLE,
    ROLE_POLICY,
    RULESET,
    WEB_ACL,
)
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from .harness import Deployment, camel_keys

ALL_POLICIES = VALIDATORS
__all__ = [
    "ALARM",
    "ALL_POLICIES",
    "BUCKET",
    "DISTRIBUTION",
    "FUNCTION",
    "GLOBAL_GROUP",
    "IP_SET",
    "PERMISSION",
    "QUEUE",
    "REPLICATION_GROUP",
    "ROLE",
    "ROLE_POLICY",
    "RULESET",
    "WEB_ACL",
    "assert_caught",
    "assert_satisfied",
    "check",
    "report",
    "variants",
]


def facts_of(d: Deployment) -> StackFacts:
    config = d.program["config"]
    return StackFacts(
        stack=d.stack,
        account_id=d.account_id,
        primary_region=config.primary_region,
        public_hostname=config.domain,
        github_repository=config.github_repository,
        disposable=config.disposable,
        traffic_router=config.traffic_router,
        link_store=getattr(config, "link_store", "elasticache"),
    )


def engine_resources(d: Deployment) -> list[PolicyResource]:
    """What `pulumi up` would hand the pack for this deployment."""
    resources = {}
    for record in d.resources:
        options = PolicyResourceOptions(
            protect=record.protect,
            ignore_changes=list(camel_keys(dict.fromkeys(record.ignore_changes))),
            delete_before_replace=record.delete_before_replace,
            aliases=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=[],
        )
        provider = None
        if record.provider_region:
            provider = PolicyProviderResource(
                "pulumi:providers:aws",
                unknown_checking_proxy({"region": record.provider_region}),
                f"urn:pulumi:{d.stack}::golinks::pulumi:providers:aws::aws-{record.provider_region}",
                f"aws-{record.provider_region}",
            )
        props = camel_keys({**record.outputs, **record.inputs})
        resources[record.urn] = PolicyResource(
            record.type,
            unknown_checking_proxy(props),
            record.urn,
            record.name,
            options,
            provider,
            None,
            [],
            {},
        )
    for record in d.resources:
        resources[record.urn].dependencies.extend(
            resources[urn] for urn in record.dependencies if urn in resources
        )
    return list(resources.values())


def stack_of(d: Deployment) -> Stack:
    """The deployment as the pack's validators see it."""
    return stack_from_engine(engine_resources(d), facts_of(d))


def check(validator, d: Deployment) -> list[str]:
    """Run the pack's policy for `validator` on `d`: its violations, "URN: message" each."""
    (policy,) = [p for p in stack_policies(lambda: facts_of(d)) if p.name == policy_name(validator)]
    found: list[str] = []

    def report_violation(message: str, urn: str | None = None) -> None:
        found.append(f"{urn}: {message}" if urn else message)

    policy.validate(StackValidationArgs(engine_resources(d)), report_violation)
    return found


def report(d: Deployment) -> dict[str, list[str]]:
    return {v.__name__: found for v in ALL_POLICIES if (found := check(v, d))}


def assert_satisfied(validator, d: Deployment) -> None:
    violations = check(validator, d)
    assert violations == [], "\n".join(violations)


def variants(breakages: dict[str, list]) -> list[tuple[str, int]]:
    """(policy name, index) of every broken variant, to parametrize over."""
    return [(name, i) for name, broken in breakages.items() for i in range(len(broken))]


def assert_caught(name: str, broken: Deployment) -> None:
    """The policy `name` reports `broken`, naming a resource of its stack (or the stack)."""
    (validator,) = [v for v in ALL_POLICIES if v.__name__ == name]
    violations = check(validator, broken)
    assert violations, f"{name} missed it"
    stack = broken.stack
    assert all(v.startswith((f"urn:pulumi:{stack}::golinks::", f"{stack}:")) for v in violations)
