"""Nothing fails silently, as policies: failed S3-invoked work is kept and alarmed, the
functions that must answer keep their concurrency, versioned buckets stay bounded, the
alarms watch metrics that exist and notify someone, each region runs its own extension
layer, and S3 replication is trusted as AWS documents it and watched."""

from __future__ import annotations

import re

from .edge import walk
from .model import Stack, as_list, statements, violation
from .types import (
    ALARM,
    BUCKET,
    FUNCTION,
    QUEUE,
    REPLICATION_GROUP,
    ROLE,
    edge_functions,
    inline_documents,
    purpose_of,
)

#: AWS's arm64 Parameters and Secrets extension layer, as AWS publishes it in each region.
EXTENSION_LAYER = re.compile(
    r"arn:aws:lambda:(?P<region>[a-z0-9-]+):\d{12}:layer:"
    r"AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:\d+"
)
#: The trust policy AWS documents for an S3 replication role (no aws:SourceAccount: S3
#: does not send it when it assumes the role).
S3_REPLICATION_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def alarmed_dimensions(d: Stack, namespace: str, metric: str) -> list[dict]:
    """The dimensions of every alarm (or alarm metric query) on a metric."""
    found = []
    for alarm in d.of_type(ALARM):
        if (alarm["namespace"], alarm["metric_name"]) == (namespace, metric):
            found.append(dict(alarm["dimensions"] or {}))
        for query in alarm["metric_queries"] or []:
            stat = query.get("metric") or {}
            if (stat.get("namespace"), stat.get("metric_name")) == (namespace, metric):
                found.append(dict(stat.get("dimensions") or {}))
    return found


def s3_events_are_never_lost(d: Stack) -> list[str]:
    """A function S3 invokes sends the events it still fails after Lambda's retries to an
    encrypted SQS queue it may write to; its errors and the queue's depth are alarmed."""
    functions = {f["arn"]: f for f in d.of_type(FUNCTION)}
    invoke_configs = {
        c["function_name"]: c
        for c in d.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    }
    queues = {q["arn"]: q for q in d.of_type(QUEUE)}
    documents = inline_documents(d)
    violations = []
    for notification in d.of_type("aws:s3/bucketNotification:BucketNotification"):
        for target in notification["lambda_functions"] or []:
            function = functions.get(target["lambda_function_arn"])
            if function is None:
                continue
            config = invoke_configs.get(function["name"])
            on_failure = ((config["destination_config"] if config else None) or {}).get(
                "on_failure"
            )
            destination = (on_failure or {}).get("destination")
            queue = queues.get(destination)
            if queue is None:
                violations.append(violation(function, "has no SQS on-failure destination"))
                continue
            if not (queue["sqs_managed_sse_enabled"] or queue["kms_master_key_id"]):
                violations.append(violation(queue, "is not encrypted"))
            role = function["role"].rsplit("/", 1)[-1]
            if not any(
                s.get("Effect") == "Allow"
                and "sqs:SendMessage" in as_list(s.get("Action"))
                and destination in as_list(s.get("Resource"))
                for s in statements(documents.get(role, {}))
            ):
                violations.append(violation(function, "its role cannot send to its failure queue"))
            queued = alarmed_dimensions(d, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
            if {"QueueName": queue["name"]} not in queued:
                violations.append(violation(queue, "its depth is not alarmed"))
            if {"FunctionName": function["name"]} not in alarmed_dimensions(
                d, "AWS/Lambda", "Errors"
            ):
                violations.append(violation(function, "its failed invocations are not alarmed"))
    return violations


def health_and_sync_keep_concurrency(d: Stack) -> list[str]:
    """A redirect surge cannot take every execution: health and sync reserve their own."""
    return [
        violation(function, "has no reserved concurrency")
        for function in d.of_type(FUNCTION)
        if purpose_of(function) in ("health", "sync")
        and not (function["reserved_concurrent_executions"] or 0) >= 1
    ]


def versioned_buckets_expire_replaced_versions(d: Stack) -> list[str]:
    """Versioning keeps every replaced object forever unless a lifecycle rule expires it."""
    rules: dict[str, list] = {}
    for lifecycle in d.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        rules.setdefault(lifecycle["bucket"], []).extend(lifecycle["rules"] or [])
    violations = []
    for bucket in d.of_type(BUCKET):
        expiring = [
            rule
            for rule in rules.get(bucket["bucket"], [])
            if rule["status"] == "Enabled"
            and not (rule.get("filter") or {})
            and ((rule.get("noncurrent_version_expiration") or {}).get("noncurrent_days") or 0) >= 1
        ]
        if not expiring:
            violations.append(violation(bucket, "never expires replaced versions"))
    return violations


def cache_node_ids(member_id: str, node_count: int) -> list[str]:
    """The nodes ElastiCache names in a cluster-mode-disabled replication group."""
    return [f"{member_id}-{index:03d}" for index in range(1, node_count + 1)]


def replication_lag_is_watched_per_node(d: Stack) -> list[str]:
    """ElastiCache engine metrics exist per node (CacheClusterId), never per replication
    group: every node of every member outside the primary region is in a lag alarm."""
    watched = {
        dims.get("CacheClusterId")
        for dims in alarmed_dimensions(d, "AWS/ElastiCache", "GlobalDatastoreReplicationLag")
    }
    violations = [
        violation(alarm, "an ElastiCache engine metric has no ReplicationGroupId dimension")
        for alarm in d.of_type(ALARM)
        if alarm["namespace"] == "AWS/ElastiCache"
        or any(
            (q.get("metric") or {}).get("namespace") == "AWS/ElastiCache"
            for q in alarm["metric_queries"] or []
        )
        if any(
            "ReplicationGroupId" in node
            for node in walk([alarm["dimensions"], alarm["metric_queries"]])
        )
    ]
    for group in d.of_type(REPLICATION_GROUP):
        if group.region == d.facts.primary_region:
            continue  # the member taking writes: lag is measured where they replicate to
        for node in cache_node_ids(group["replication_group_id"], int(group["num_cache_clusters"])):
            if node not in watched:
                violations.append(violation(group, f"node {node} has no replication-lag alarm"))
    return violations


def functions_use_their_regions_extension_layer(d: Stack) -> list[str]:
    """The extension layer is published per region (its version differs): a function runs
    AWS's arm64 layer of its own region."""
    violations = []
    at_edge = {f.urn for f in edge_functions(d)}  # Lambda@Edge takes no layers
    for function in d.of_type(FUNCTION):
        if function.urn in at_edge:
            continue
        regions = []
        for arn in function["layers"] or []:
            match = EXTENSION_LAYER.fullmatch(str(arn))
            if match is None:
                violations.append(violation(function, f"{arn} is not AWS's arm64 extension layer"))
            else:
                regions.append(match["region"])
        if regions != [function.region]:
            violations.append(
                violation(function, f"extension layer of {regions}, runs in {function.region}")
            )
    return violations


def replication_trusted_as_documented_and_watched(d: Stack) -> list[str]:
    """S3 assumes the replication role with AWS's documented trust (no aws:SourceAccount,
    which S3 does not send); every rule publishes metrics and its failures are alarmed."""
    roles = {r["arn"]: r for r in d.of_type(ROLE)}
    failures = alarmed_dimensions(d, "AWS/S3", "OperationsFailedReplication")
    violations = []
    for config in d.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig"):
        role = roles.get(config["role"])
        if role is None or role.policy_document("assume_role_policy") != S3_REPLICATION_TRUST:
            violations.append(violation(config, "its role's trust is not AWS's documented one"))
        for rule in config["rules"] or []:
            if (rule["destination"].get("metrics") or {}).get("status") != "Enabled":
                violations.append(violation(config, f"rule {rule['id']} publishes no metrics"))
            if not any(dims.get("RuleId") == rule["id"] for dims in failures):
                violations.append(
                    violation(config, f"rule {rule['id']}'s failures are not alarmed")
                )
    return violations


def every_alarm_notifies(d: Stack) -> list[str]:
    """An alarm nobody hears is silence: each notifies an SNS topic of its own region."""
    topics = {t["arn"]: t for t in d.of_type("aws:sns/topic:Topic")}
    violations = []
    for alarm in d.of_type(ALARM):
        actions = list(alarm["alarm_actions"] or [])
        if not actions or any(a not in topics or topics[a].region != alarm.region for a in actions):
            violations.append(violation(alarm, f"notifies {actions}, not its region's alarm topic"))
    return violations
