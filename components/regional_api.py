"""RegionalApi: one region's functions behind an HTTP API, with logs, alarms and least privilege.

- `redirect` answers `$default`, `health` answers `GET /healthz`; in the primary
  region `sync` is notified by the index bucket. All three run the shared
  archive on arm64 and read the service secret through the Parameters and
  Secrets extension; redirect and health run in the region's VPC, and so does
  the sync unless the link store is reached from outside (components/link_store.py).
- Each function reaches the link store as its `store` says: its environment,
  and for DynamoDB the table access its role's policy adds (readers: their own
  region's replica; the primary's sync: the writes).
- The HTTP API has access logs and throttling; it carries no WAF (HTTP APIs
  cannot), so CloudFront's WAF plus the origin-verify check in the function
  guard it.
- Nothing fails silently: `health` and `sync` have reserved concurrency (a
  redirect surge cannot starve them); an S3 event that `sync` still fails
  after Lambda's two asynchronous retries lands in an encrypted SQS queue;
  alarms on sync errors, queued failures, undeliverable failures, and (with
  the cache) the Datastore replication lag of every node of this region's member.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.link_store import CacheAccess, LinkStoreAccess
from components.planning import HEALTH_ROUTE, function_policy, service_trust_policy
from lambda_package import LAMBDA_RUNTIME

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "time": "$context.requestTimeEpoch",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


@dataclass
class RegionalApiArgs:
    stack: str
    region: str
    primary_region: str
    account_id: str
    name: str
    """Physical name prefix, e.g. golinks-prod-euw1."""
    archive: pulumi.Archive
    """The shared function archive (lambda_package)."""
    subnet_ids: list[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    store: LinkStoreAccess
    """How this region's functions reach the link store; it writes in the primary region only."""
    secret_arn: pulumi.Input[str]
    index_bucket_name: pulumi.Input[str]
    index_bucket_arn: pulumi.Input[str]
    index_key: str
    secrets_extension_layer_arn: str
    """This region's arm64 Parameters and Secrets extension layer, whole."""
    alarm_topic_arn: pulumi.Input[str]
    """SNS topic every alarm here notifies (AlarmTopics)."""
    permissions_boundary: pulumi.Input[str]
    """The stack's role boundary (RoleBoundary), carried by every function's role."""
    memory_mb: int = 512
    log_retention_days: int = 30
    redirect_cache_seconds: int = 300
    throttle_burst: int = 2000
    """API Gateway burst limit (requests)."""
    throttle_rate: float = 5000
    """API Gateway steady-state limit (requests per second)."""
    latency_alarm_ms: float = 50
    """p99 function duration that raises the latency alarm."""
    links_repository_url: str = ""
    """The link files' repository on GitHub (web URL); the 404 page offers to create a
    missing link there. Empty: no such offer."""
    health_reserved_concurrency: int = 10
    """Executions kept for `health` whatever `redirect` does (Cloudflare and CI probe it)."""
    sync_reserved_concurrency: int = 2
    """Executions kept for (and allowed to) `sync`: publishes are rare and serial."""
    failed_event_max_age_seconds: int = 6 * 3600
    """How long Lambda keeps retrying a throttled S3 event before it goes to the queue."""


class RegionalApi(pulumi.ComponentResource):
    api_endpoint: pulumi.Output[str]
    api_id: pulumi.Output[str]
    function_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RegionalApiArgs, opts: pulumi.ResourceOptions):
        super().__init__("golinks:api:RegionalApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        is_primary = args.region == args.primary_region
        store = args.store
        if is_primary != store.writes:
            raise ValueError(
                "the store's write access is for the primary region, and required there"
            )

        # Readers do not depend on where writes go: a failover changes nothing
        # about them, so it needs nothing from a region that is down.
        common_env = {
            "SERVICE_SECRET_ARN": args.secret_arn,
            "LINK_INDEX_BUCKET": args.index_bucket_name,
            "LINK_INDEX_KEY": args.index_key,
        }
        functions = {
            "redirect": self._function(
                name,
                args,
                "redirect",
                "functions.redirect.handler",
                timeout=5,
                store_policy=store.reader_policy,
                env={
                    **common_env,
                    **store.reader_env(),
                    "REDIRECT_CACHE_SECONDS": str(args.redirect_cache_seconds),
                    **(
                        {"LINKS_REPOSITORY_URL": args.links_repository_url}
                        if args.links_repository_url
                        else {}
                    ),
                },
            ),
            "health": self._function(
                name,
                args,
                "health",
                "functions.health.handler",
                timeout=5,
                env={**common_env, **store.reader_env()},
                store_policy=store.reader_policy,
                reserved_concurrency=args.health_reserved_concurrency,
            ),
        }
        failures = None
        if is_primary:
            failures = aws.sqs.Queue(
                f"{name}-sync-failures",
                name=f"{args.name}-sync-failures",
                sqs_managed_sse_enabled=True,
                message_retention_seconds=14 * 24 * 3600,  # SQS's longest
                opts=child,
            )
            functions["sync"] = self._function(
                name,
                args,
                "sync",
                "functions.sync.handler",
                timeout=300,
                env={**common_env, **store.writer_env(), "PRIMARY_REGION": args.primary_region},
                store_policy=store.writer_policy,
                in_vpc=store.sync_in_vpc,
                memory_mb=max(args.memory_mb, 1024),
                reserved_concurrency=args.sync_reserved_concurrency,
                failure_queue_arn=failures.arn,
            )
            aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-sync-async",
                function_name=functions["sync"].name,
                maximum_retry_attempts=2,
                maximum_event_age_in_seconds=args.failed_event_max_age_seconds,
                destination_config={"on_failure": {"destination": failures.arn}},
                opts=child,
            )

        api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=args.name,
            protocol_type="HTTP",
            description="Short-link redirects (behind CloudFront)",
            opts=child,
        )
        for function_name, route_key in (("redirect", "$default"), ("health", HEALTH_ROUTE)):
            function = functions[function_name]
            integration = aws.apigatewayv2.Integration(
                f"{name}-{function_name}",
                api_id=api.id,
                integration_type="AWS_PROXY",
                integration_uri=function.invoke_arn,
                payload_format_version="2.0",
                timeout_milliseconds=6000,
                opts=child,
            )
            aws.apigatewayv2.Route(
                f"{name}-{function_name}",
                api_id=api.id,
                route_key=route_key,
                target=pulumi.Output.concat("integrations/", integration.id),
                opts=child,
            )
            aws.lambda_.Permission(
                f"{name}-{function_name}-from-api",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="apigateway.amazonaws.com",
                source_arn=pulumi.Output.concat(api.execution_arn, "/*/*"),
                opts=child,
            )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-api-access",
            name=f"/golinks/{args.stack}/{args.region}/api-access",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        aws.apigatewayv2.Stage(
            f"{name}-default",
            api_id=api.id,
            name="$default",
            auto_deploy=True,
            access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
            default_route_settings={
                "throttling_burst_limit": args.throttle_burst,
                "throttling_rate_limit": args.throttle_rate,
            },
            opts=child,
        )
        if is_primary:
            self._notify_sync(name, args, functions["sync"])
        self._alarms(name, args, api, functions, failures)

        self.api_endpoint = api.api_endpoint
        self.api_id = api.id
        self.function_names = {key: function.name for key, function in functions.items()}
        self.register_outputs({"api_endpoint": api.api_endpoint, "functions": self.function_names})

    def _function(
        self,
        name: str,
        args: RegionalApiArgs,
        purpose: str,
        handler: str,
        *,
        timeout: int,
        env: dict,
        store_policy: str | None = None,
        in_vpc: bool = True,
        memory_mb: int | None = None,
        reserved_concurrency: int | None = None,
        failure_queue_arn: pulumi.Input[str] | None = None,
    ) -> aws.lambda_.Function:
        child = pulumi.ResourceOptions(parent=self)
        function_name = f"{args.name}-{purpose}"
        store_statements = json.loads(store_policy)["Statement"] if store_policy else []
        logs = aws.cloudwatch.LogGroup(
            f"{name}-{purpose}",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-{purpose}",
            name=function_name,
            assume_role_policy=json.dumps(service_trust_policy("lambda.amazonaws.com")),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-{purpose}",
            role=role.id,
            policy=pulumi.Output.all(
                logs.arn, args.secret_arn, args.index_bucket_arn, failure_queue_arn
            ).apply(
                lambda arns: json.dumps(
                    function_policy(
                        log_group_arn=arns[0],
                        secret_arn=arns[1],
                        index_bucket_arn=arns[2],
                        index_key=args.index_key,
                        failure_queue_arn=arns[3],
                        in_vpc=in_vpc,
                        store_statements=store_statements,
                    )
                )
            ),
            opts=child,
        )
        return aws.lambda_.Function(
            f"{name}-{purpose}",
            name=function_name,
            role=role.arn,
            runtime=LAMBDA_RUNTIME,
            architectures=["arm64"],
            handler=handler,
            code=args.archive,
            memory_size=memory_mb or args.memory_mb,
            timeout=timeout,
            reserved_concurrent_executions=reserved_concurrency,
            layers=[args.secrets_extension_layer_arn],
            environment={"variables": env},
            vpc_config=(
                {"subnet_ids": args.subnet_ids, "security_group_ids": [args.security_group_id]}
                if in_vpc
                else None
            ),
            tracing_config={"mode": "Active"},
            logging_config={"log_format": "Text", "log_group": logs.name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, logs]),
        )

    def _notify_sync(self, name: str, args: RegionalApiArgs, sync: aws.lambda_.Function) -> None:
        child = pulumi.ResourceOptions(parent=self)
        permission = aws.lambda_.Permission(
            f"{name}-sync-from-s3",
            action="lambda:InvokeFunction",
            function=sync.name,
            principal="s3.amazonaws.com",
            source_arn=args.index_bucket_arn,
            source_account=args.account_id,
            opts=child,
        )
        aws.s3.BucketNotification(
            f"{name}-index-published",
            bucket=args.index_bucket_name,
            lambda_functions=[
                {
                    "lambda_function_arn": sync.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": args.index_key,
                }
            ],
            # S3 validates the destination when the notification is saved.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )

    def _alarms(self, name: str, args: RegionalApiArgs, api, functions: dict, failures) -> None:
        child = pulumi.ResourceOptions(parent=self)
        actions = [args.alarm_topic_arn]

        def alarm(suffix: str, description: str, **settings) -> None:
            if "metric_queries" not in settings:
                settings.setdefault("period", 60)
            aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                name=f"{args.name}-{suffix}",
                alarm_description=description,
                evaluation_periods=settings.pop("evaluation_periods", 3),
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
                opts=child,
                **settings,
            )

        alarm(
            "api-5xx",
            "The regional API answers with server errors",
            namespace="AWS/ApiGateway",
            metric_name="5xx",
            statistic="Sum",
            dimensions={"ApiId": api.id, "Stage": "$default"},
            comparison_operator="GreaterThanThreshold",
            threshold=5,
        )
        alarm(
            "redirect-p99",
            f"Redirect p99 above {args.latency_alarm_ms} ms",
            namespace="AWS/Lambda",
            metric_name="Duration",
            extended_statistic="p99",
            dimensions={"FunctionName": functions["redirect"].name},
            comparison_operator="GreaterThanThreshold",
            threshold=args.latency_alarm_ms,
        )
        for purpose, function in functions.items():
            alarm(
                f"{purpose}-throttles",
                f"The {purpose} function is being throttled",
                namespace="AWS/Lambda",
                metric_name="Throttles",
                statistic="Sum",
                dimensions={"FunctionName": function.name},
                evaluation_periods=1,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
            )
        if failures is not None:
            sync = {"FunctionName": functions["sync"].name}
            once = {"evaluation_periods": 1, "comparison_operator": "GreaterThanThreshold"}
            alarm(
                "sync-errors",
                "A sync of the published index failed (Lambda retries it twice)",
                namespace="AWS/Lambda",
                metric_name="Errors",
                statistic="Sum",
                dimensions=sync,
                threshold=0,
                **once,
            )
            alarm(
                "sync-failures-queued",
                "A published index was never synced: its S3 event is in the failure queue",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                statistic="Maximum",
                dimensions={"QueueName": failures.name},
                threshold=0,
                **once,
            )
            alarm(
                "sync-failures-undeliverable",
                "A failed sync event could not be put in the failure queue: it is lost",
                namespace="AWS/Lambda",
                metric_name="DestinationDeliveryFailures",
                statistic="Sum",
                dimensions=sync,
                threshold=0,
                **once,
            )
        if isinstance(args.store, CacheAccess) and args.region != args.primary_region:
            # Engine metrics exist per node (CacheClusterId), never per replication
            # group; the worst node of this region's member is the lag that matters.
            nodes = [
                {
                    "id": f"node{index}",
                    "return_data": False,
                    "metric": {
                        "namespace": "AWS/ElastiCache",
                        "metric_name": "GlobalDatastoreReplicationLag",
                        "dimensions": {"CacheClusterId": node},
                        "period": 60,
                        "stat": "Maximum",
                    },
                }
                for index, node in enumerate(args.store.node_ids, 1)
            ]
            worst = ", ".join(query["id"] for query in nodes)
            alarm(
                "replication-lag",
                "Global Datastore replication to this region lags > 2 s",
                metric_queries=[
                    *nodes,
                    {
                        "id": "lag",
                        "expression": f"MAX([{worst}])",
                        "label": "Worst node's replication lag (s)",
                        "return_data": True,
                    },
                ],
                comparison_operator="GreaterThanThreshold",
                threshold=2,
            )
