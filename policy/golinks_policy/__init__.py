"""golinks' policies: pure validators over a stack's resources, and the CrossGuard policies
that run them on the engine's values (`pulumi preview|up --policy-pack policy`)."""

from __future__ import annotations

from collections.abc import Callable

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from . import access, cloud, edge, lifecycle, operations, preview, review, routing, store
from .engine import facts_from_config, stack_from_engine
from .model import Resource, Stack, StackFacts, split_violation

Validator = Callable[[Stack], list[str]]

#: What AWS or Cloudflare would reject at `pulumi up` (DESIGN.md section 7).
CLOUD_CONSTRAINTS: list[Validator] = [
    cloud.one_distribution_per_alias,
    cloud.api_only_through_cloudfront,
    cloud.edge_resources_in_us_east_1,
    store.only_with_store("elasticache", cloud.global_datastore_membership),
    cloud.only_the_primary_region_writes,
    store.one_link_store,
    store.only_with_store(
        "dynamodb", store.every_vpc_region_reaches_the_table_through_its_endpoint
    ),
    cloud.functions_in_vpc_with_endpoints,
    cloud.permissions_name_their_source,
    cloud.notifications_after_permissions,
    cloud.static_sites_through_oac,
    cloud.cloudflare_latency_steering,
    cloud.github_oidc_subjects_pinned,
    routing.only_with("cloudflare", edge.edge_admits_only_cloudflare),
    routing.only_with("cloudflare", edge.client_rules_judge_the_forwarded_address),
    routing.only_with("cloudflare", edge.cloudflare_zone_full_strict),
    operations.replication_lag_is_watched_per_node,
    operations.functions_use_their_regions_extension_layer,
    operations.replication_trusted_as_documented_and_watched,
    routing.lambda_at_edge_constraints,
    routing.every_region_has_a_checked_latency_record,
    routing.one_traffic_router,
]
#: What a security review (Checkov's AWS rules) would flag.
REVIEW_CHECKS: list[Validator] = [
    review.cache_encrypted_and_authenticated,
    store.link_table_is_durable_and_everywhere,
    review.cloudfront_https_tls_waf,
    review.buckets_private_encrypted_versioned,
    review.functions_hold_no_secrets,
    review.api_access_logged_and_throttled,
    review.iam_least_privilege,
    edge.waf_blocks_are_logged,
    operations.s3_events_are_never_lost,
    operations.health_and_sync_keep_concurrency,
    operations.versioned_buckets_expire_replaced_versions,
    operations.every_alarm_notifies,
]
#: What breaks on the second day: refresh, resize, teardown, a failover during an outage.
SECOND_DAY: list[Validator] = [
    lifecycle.datastore_survives_refresh_and_resize,
    lifecycle.lasting_stacks_protect_their_data,
    lifecycle.disposable_stacks_tear_down_cleanly,
    lifecycle.failover_needs_only_reachable_regions,
    store.link_table_has_no_ttl,
]
#: Who may do what: the deploy role can deploy, and cannot make itself an administrator.
ACCESS_CHECKS: list[Validator] = [
    access.roles_carry_the_boundary,
    access.roles_stay_within_the_boundary,
    access.deploy_role_cannot_escalate,
    access.deploy_role_can_deploy_the_stack,
    access.deploy_role_keeps_the_link_table,
    store.only_with_store("dynamodb", store.readers_read_only_their_own_replica),
    preview.preview_role_reads_only_configuration,
]
VALIDATORS: list[Validator] = CLOUD_CONSTRAINTS + REVIEW_CHECKS + SECOND_DAY + ACCESS_CHECKS


def policy_name(validator: Validator) -> str:
    return validator.__name__.replace("_", "-")


def stack_policy(
    validator: Validator, facts: Callable[[], StackFacts] = facts_from_config
) -> StackValidationPolicy:
    """`validator` as a mandatory stack policy; `facts` says what the stack's config holds."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stack = stack_from_engine(list(args.resources), facts())
        for message in validator(stack):
            urn, text = split_violation(message)
            report_violation(text, urn)

    return StackValidationPolicy(
        name=policy_name(validator),
        description=(validator.__doc__ or validator.__name__).strip().splitlines()[0],
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def stack_policies(facts: Callable[[], StackFacts] = facts_from_config) -> list:
    return [stack_policy(validator, facts) for validator in VALIDATORS]


__all__ = [
    "VALIDATORS",
    "Resource",
    "Stack",
    "StackFacts",
    "policy_name",
    "stack_policies",
]
