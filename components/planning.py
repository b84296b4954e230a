"""Pure planning for the topology: names, address plans, region facts, IAM documents.

No Pulumi here: every function takes plain values and returns plain values,
so each is tested on its own (tests/unit/test_planning.py) and the components
stay declarative.
"""

from __future__ import annotations

import ipaddress
import re

from functions.links.model import DIRECTORY_FILES, HEALTH_PATH, ROOT_FILES, STATIC_PREFIX

PROJECT = "golinks"
#: CloudFront's WAF web ACLs and ACM certificates live here, whatever the regions.
EDGE_REGION = "us-east-1"
GLOBAL_DATASTORE_MAX_SECONDARIES = 2
CACHE_PORT = 6379
HTTPS_PORT = 443
AVAILABILITY_ZONES = ("a", "b")
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

#: AWS accounts publishing the arm64 "AWS Parameters and Secrets Lambda Extension"
#: layer, per region (AWS Systems Manager user guide, "AWS Parameters and Secrets
#: Lambda Extension ARNs"). The regions where it exists for arm64 are the
#: regions this service supports.
SECRETS_EXTENSION_ACCOUNTS = {
    "us-east-1": "177933569100",
    "us-east-2": "590474943231",
    "us-west-2": "345057560386",
    "eu-west-1": "015030872274",
    "eu-west-2": "133256977650",
    "eu-central-1": "187925254637",
    "ap-southeast-1": "044395824272",
    "ap-southeast-2": "665172237481",
    "ap-northeast-1": "133490724326",
    "ap-south-1": "176022468876",
}
SUPPORTED_REGIONS = tuple(SECRETS_EXTENSION_ACCOUNTS)


_DIRECTIONS = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "central": "c",
    "northeast": "ne",
    "southeast": "se",
    "northwest": "nw",
    "southwest": "sw",
}


def short_region(region: str) -> str:
    """eu-west-1 -> euw1, ap-southeast-1 -> apse1: short and unique, for ElastiCache ids."""
    area, direction, number = region.split("-")
    return f"{area}{_DIRECTIONS[direction]}{number}"


def resource_name(stack: str, *parts: str) -> str:
    """golinks-<stack>-<parts...>, the prefix of every physical name."""
    return "-".join((PROJECT, stack, *parts))


def bucket_name(stack: str, purpose: str, region: str, account_id: str) -> str:
    """S3 names are global: the account id keeps three stacks' buckets apart."""
    name = f"{PROJECT}-{stack}-{purpose}-{region}-{account_id}"
    if len(name) > 63:
        raise ValueError(f"bucket name {name!r} is longer than S3's 63 characters")
    return name


def vpc_cidr(base: str, region_index: int) -> str:
    """Each region's VPC takes the next /16 after `base`, so they could be peered later."""
    network = ipaddress.ip_network(base)
    return str(ipaddress.ip_network((int(network.network_address) + (region_index << 16), 16)))


def subnet_plan(region: str, cidr: str) -> list[tuple[str, str]]:
    """Private subnets (availability zone, /20 block), one per zone in AVAILABILITY_ZONES."""
    blocks = ipaddress.ip_network(cidr).subnets(new_prefix=20)
    return [(f"{region}{zone}", str(next(blocks))) for zone in AVAILABILITY_ZONES]


def primary_first(regions: tuple[str, ...] | list[str], primary: str) -> list[str]:
    """The regions with the primary first, the others in their configured order.

    The order a router fails over in, and the order the link table's sync
    flips regions in.
    """
    if primary not in regions:
        raise ValueError(f"the primary region {primary} is not one of {list(regions)}")
    return [primary, *(region for region in regions if region != primary)]


def regional_hostname(region: str, domain: str) -> str:
    """The one alias of a region's CloudFront distribution (an alias can belong to one only)."""
    return f"{region}.{domain}"


SECRETS_EXTENSION_LAYER = "AWS-Parameters-and-Secrets-Lambda-Extension-Arm64"
_LAYER_ARN_RE = re.compile(
    rf"arn:aws:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):layer:"
    rf"{SECRETS_EXTENSION_LAYER}:(?P<version>[1-9]\d*)"
)


def secrets_extension_layer_region(arn: str) -> str:
    """The region of an arm64 extension layer ARN published by AWS, or ValueError saying why not.

    AWS publishes the layer per region from its own account, and the version
    numbers differ between regions, so each region's ARN is configured whole.
    """
    match = _LAYER_ARN_RE.fullmatch(str(arn))
    if not match:
        raise ValueError(f"{arn!r} is not an ARN of the {SECRETS_EXTENSION_LAYER} layer")
    region, account = match["region"], match["account"]
    if SECRETS_EXTENSION_ACCOUNTS.get(region) != account:
        raise ValueError(
            f"{arn!r}: AWS publishes the layer in {region} from account "
            f"{SECRETS_EXTENSION_ACCOUNTS.get(region, '(none: region not supported)')}"
        )
    return region


def cache_member_id(stack: str, region: str) -> str:
    """A region's Global Datastore member (replication group) id."""
    return f"{PROJECT}-{stack}-{short_region(region)}"


def cache_node_ids(member_id: str, node_count: int) -> list[str]:
    """The cache clusters (nodes) ElastiCache creates in a cluster-mode-disabled member.

    Engine metrics such as GlobalDatastoreReplicationLag are published per node
    under the CacheClusterId dimension, named <member>-001, <member>-002, ...
    """
    return [f"{member_id}-{index:03d}" for index in range(1, node_count + 1)]


def static_path_patterns() -> list[str]:
    """CloudFront path patterns served from the static-site bucket; the rest is the API.

    The link directory (`/_links`, `/_links.json`) is written there by publishing.
    """
    root = [f"/{name}" for name in (*sorted(ROOT_FILES), *DIRECTORY_FILES)]
    return ["/", "/index.html", f"/{STATIC_PREFIX}/*", *root]


HEALTH_ROUTE = f"GET /{HEALTH_PATH}"


# -- IAM documents -------------------------------------------------------------------


def _document(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def service_trust_policy(service: str) -> dict:
    """The trust policy AWS documents for a service role (Lambda, S3 replication).

    No aws:SourceAccount condition: S3 replication does not send that key when
    it assumes the role, so such a condition would silently stop replication.
    """
    return _document(
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    )


#: A function in a VPC manages its network interfaces (no resource-level permissions).
VPC_NETWORK_INTERFACE_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
#: X-Ray's trace ingestion (no resource ARN either).
TRACING_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def function_policy(
    *,
    log_group_arn: str,
    secret_arn: str,
    index_bucket_arn: str,
    index_key: str,
    failure_queue_arn: str | None = None,
    in_vpc: bool = True,
    store_statements: list[dict] | None = None,
) -> dict:
    """What a function may do: log, read its secret, read the link index, and reach the
    link store as `store_statements` allow (DynamoDB; none for Redis). Nothing else.

    An asynchronously invoked function (sync) also sends its failed events to
    its on-failure queue: Lambda delivers them with the function's own role.
    Only a function in a VPC (the default) manages network interfaces.
    """
    failures = (
        [
            {
                "Sid": "OnFailureQueue",
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": failure_queue_arn,
            }
        ]
        if failure_queue_arn
        else []
    )
    return _document(
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        },
        {
            "Sid": "ServiceSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": secret_arn,
        },
        {
            "Sid": "LinkIndex",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{index_bucket_arn}/{index_key}",
        },
        *(
            [
                {
                    # A function in a VPC manages its network interfaces; AWS defines no
                    # resource-level permissions for these actions, so Resource must be "*".
                    "Sid": "VpcNetworkInterfaces",
                    "Effect": "Allow",
                    "Action": VPC_NETWORK_INTERFACE_ACTIONS,
                    "Resource": "*",
                }
            ]
            if in_vpc
            else []
        ),
        {
            # X-Ray's trace-ingestion actions take no resource ARN either.
            "Sid": "Tracing",
            "Effect": "Allow",
            "Action": TRACING_ACTIONS,
            "Resource": "*",
        },
        *failures,
        *(store_statements or []),
    )


def static_site_bucket_policy(bucket_arn: str, distribution_arn: str) -> dict:
    """Only this distribution may read (and list, so a missing page is a 404, not a 403)."""
    condition = {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    principal = {"Service": "cloudfront.amazonaws.com"}
    return _document(
        {
            "Sid": "CloudFrontReadsObjects",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/*",
            "Condition": condition,
        },
        {
            "Sid": "CloudFrontListsForNotFound",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": condition,
        },
    )


def replication_policy(source_bucket_arn: str, destination_bucket_arns: list[str]) -> dict:
    """S3 replication of the index bucket: read versions here, replicate there."""
    return _document(
        {
            "Effect": "Allow",
            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            "Resource": source_bucket_arn,
        },
        {
            "Effect": "Allow",
            "Action": [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            "Resource": f"{source_bucket_arn}/*",
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            "Resource": [f"{arn}/*" for arn in destination_bucket_arns],
        },
    )


GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "sts.amazonaws.com"


#: golinks:githubRepository: `owner/repository`, or the immutable
#: `owner@OWNER_ID/repository@REPOSITORY_ID` that GitHub puts into the OIDC subject of
#: repositories created, renamed or transferred since 2026-07-15, and of opted-in ones.
GITHUB_REPOSITORY_RE = re.compile(
    r"(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})(?:@(?P<owner_id>[1-9][0-9]*))?"
    r"/(?P<name>[A-Za-z0-9_.-]{1,100})(?:@(?P<repository_id>[1-9][0-9]*))?"
)


def github_repository_problem(repository: str) -> str | None:
    """Why `repository` is not a form GitHub's OIDC subject can take (None: it is)."""
    match = GITHUB_REPOSITORY_RE.fullmatch(repository)
    if match is None:
        return (
            "is neither owner/repository nor the immutable form "
            "owner@OWNER_ID/repository@REPOSITORY_ID (docs/delivery.md: which subject "
            "GitHub sends)"
        )
    if bool(match["owner_id"]) != bool(match["repository_id"]):
        return (
            "has a numeric id on one side only: the immutable form carries both, "
            "owner@OWNER_ID/repository@REPOSITORY_ID"
        )
    return None


def github_subject(repository: str, environment: str) -> str:
    """The `sub` claim of a job bound to a GitHub environment."""
    return f"repo:{repository}:environment:{environment}"


def repository_web_url(repository: str) -> str:
    """The repository's page on GitHub, for `owner/repo` or the immutable form
    `owner@OWNER_ID/repo@REPO_ID` (the IDs are not part of the web address)."""
    owner, _, name = repository.partition("/")
    return f"https://github.com/{owner.split('@')[0]}/{name.split('@')[0]}"


def preview_environment(stack: str) -> str:
    """Pull-request previews run in their own GitHub environment, without approvals."""
    return f"{stack}-preview"


def github_trust_policy(provider_arn: str, repository: str, environment: str) -> dict:
    """Only jobs of this repository running in the given GitHub environment."""
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": GITHUB_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": github_subject(repository, environment),
                }
            },
        }
    )


def directory_object_arns(static_bucket_arns: list[str]) -> list[str]:
    """The link directory's objects in every region's static-site bucket."""
    return [f"{bucket}/{key}" for bucket in static_bucket_arns for key in DIRECTORY_FILES]


def publisher_policy(
    index_bucket_arn: str,
    index_key: str,
    distribution_arns: list[str] | None = None,
    directory_objects: list[str] | None = None,
) -> dict:
    """Link publishing: write (and read back) the index object, write the link directory's
    objects (`directory_object_arns`), then invalidate what changed on the stack's own
    CloudFront distributions; nothing else."""
    invalidate = (
        [
            {
                "Effect": "Allow",
                "Action": ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
                "Resource": sorted(distribution_arns),
            }
        ]
        if distribution_arns
        else []
    )
    directory = (
        [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": directory_objects}]
        if directory_objects
        else []
    )
    return _document(
        {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{index_bucket_arn}/{index_key}",
        },
        {
            "Effect": "Allow",
            "Action": ["s3:GetBucketVersioning", "s3:ListBucket", "s3:ListBucketVersions"],
            "Resource": index_bucket_arn,
        },
        *directory,
        *invalidate,
    )


#: Reads of configuration, scoped to nothing narrower by AWS (or by this policy).
PREVIEW_CONFIGURATION_READS = [
    "sts:GetCallerIdentity",
    "acm:DescribeCertificate",
    "acm:ListTagsForCertificate",
    "apigateway:GET",
    "cloudfront:GetCachePolicy",
    "cloudfront:GetDistribution",
    "cloudfront:GetDistributionConfig",
    "cloudfront:GetOriginAccessControl",
    "cloudfront:ListTagsForResource",
    "cloudwatch:DescribeAlarms",
    "cloudwatch:ListTagsForResource",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeTable",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:ListTagsOfResource",
    "ec2:DescribePrefixLists",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
    "elasticache:DescribeCacheClusters",
    "elasticache:DescribeCacheSubnetGroups",
    "elasticache:DescribeGlobalReplicationGroups",
    "elasticache:DescribeReplicationGroups",
    "elasticache:ListTagsForResource",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "lambda:GetFunction",
    "lambda:GetFunctionCodeSigningConfig",
    "lambda:GetFunctionEventInvokeConfig",
    "lambda:GetPolicy",
    "lambda:GetRuntimeManagementConfig",
    "lambda:ListVersionsByFunction",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:ListTagsForResource",
    "route53:GetHealthCheck",
    "route53:GetHostedZone",
    "route53:ListResourceRecordSets",
    "route53:ListTagsForResource",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "sns:GetSubscriptionAttributes",
    "sns:GetTopicAttributes",
    "sns:ListTagsForResource",
    "sqs:GetQueueAttributes",
    "sqs:ListQueueTags",
    "wafv2:GetIPSet",
    "wafv2:GetLoggingConfiguration",
    "wafv2:GetWebACL",
    "wafv2:ListTagsForResource",
]
#: A bucket's configuration (never its objects).
PREVIEW_BUCKET_READS = [
    "s3:ListBucket",
    "s3:GetBucket*",
    "s3:GetAccelerateConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
]


def preview_policy(account_id: str, stack: str, index_key: str) -> dict:
    """What `pulumi preview` (and `--refresh`) and the link diff read, and nothing else.

    Configuration of the stack's resources, never their data: no object of any
    bucket but the published index (the link diff compares against it) and the
    static site's public pages, no secret value, no decryption, no table item,
    no log event, no sampled request.
    """
    own = resource_name(stack)
    return _document(
        {
            "Sid": "ReadConfiguration",
            "Effect": "Allow",
            "Action": PREVIEW_CONFIGURATION_READS,
            "Resource": "*",
        },
        {
            "Sid": "ReadOwnBucketsConfiguration",
            "Effect": "Allow",
            "Action": PREVIEW_BUCKET_READS,
            "Resource": f"arn:aws:s3:::{own}-*",
        },
        {
            "Sid": "ReadThePublishedIndexAndPages",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectTagging"],
            "Resource": [f"arn:aws:s3:::{own}-index-*/{index_key}", f"arn:aws:s3:::{own}-site-*/*"],
        },
        {
            "Sid": "ReadOwnIam",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:GetOpenIDConnectProvider",
            ],
            "Resource": [
                f"arn:aws:iam::{account_id}:role/{own}-*",
                boundary_policy_arn(account_id, stack),
                f"arn:aws:iam::{account_id}:oidc-provider/{GITHUB_OIDC_HOST}",
            ],
        },
    )


def boundary_policy_arn(account_id: str, stack: str) -> str:
    """The permissions boundary every role the deploy role creates or edits must carry."""
    return f"arn:aws:iam::{account_id}:policy/{resource_name(stack, 'role-boundary')}"


def administered_role_names(stack: str) -> tuple[str, ...]:
    """The roles CI assumes that only an administrator may change (deploy, preview)."""
    return (resource_name(stack, "deploy"), resource_name(stack, "preview"))


def edge_log_group(function_name: str) -> str:
    """Where a Lambda@Edge function logs, in each region that runs it."""
    return f"/aws/lambda/{EDGE_REGION}.{function_name}"


def link_table_name(stack: str) -> str:
    """The DynamoDB global table of a `linkStore: dynamodb` stack (one name, every region)."""
    return resource_name(stack, "links")


def link_table_arn(account_id: str, stack: str, region: str) -> str:
    """The link table's replica in `region` ("*": every replica)."""
    return f"arn:aws:dynamodb:{region}:{account_id}:table/{link_table_name(stack)}"


#: Everything the functions do with the link table's items: GetItem and, for a templated
#: link, BatchGetItem (redirect, health), and the sync's lease, scan, batch writes and
#: per-region read-backs.
LINK_TABLE_ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Scan",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
]
#: What the deploy role never does to the link table, whatever the stack: TTL deletes
#: race republished links (docs/dynamodb-store.md); the stack needs no resource policy,
#: export or restore, so none can open the links to another account or copy them.
LINK_TABLE_NEVER = [
    "dynamodb:UpdateTimeToLive",
    "dynamodb:PutResourcePolicy",
    "dynamodb:DeleteResourcePolicy",
    "dynamodb:ExportTableToPointInTime",
    "dynamodb:RestoreTableToPointInTime",
    "dynamodb:RestoreTableFromBackup",
]
#: Deleting the table, one of its replicas or a backup: on a lasting stack, an
#: administrator's (`pulumi destroy` and removing a region, like the bootstrap).
LINK_TABLE_REMOVAL = [
    "dynamodb:DeleteTable",
    "dynamodb:DeleteTableReplica",
    "dynamodb:DeleteBackup",
]


def role_boundary_policy(account_id: str, stack: str) -> dict:
    """The most any of the stack's workload roles (functions, replication, publisher) may do.

    The deploy role may create and edit `golinks-<stack>-*` roles only with this
    boundary attached, so whatever policy it writes, such a role can do no more
    than this: no IAM, nothing outside the stack's own buckets, secrets, queues,
    link table items and log groups.
    """
    own = resource_name(stack)
    return _document(
        {
            "Sid": "FunctionLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:*:{account_id}:log-group:/aws/lambda/{own}-*",
        },
        {
            # Lambda@Edge logs in every region that runs it, to groups it creates itself.
            "Sid": "EdgeFunctionLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                f"arn:aws:logs:*:{account_id}:log-group:{edge_log_group(own)}-*",
                f"arn:aws:logs:*:{account_id}:log-group:{edge_log_group(own)}-*:*",
            ],
        },
        {
            "Sid": "VpcNetworkInterfacesAndTracing",
            "Effect": "Allow",
            "Action": [*VPC_NETWORK_INTERFACE_ACTIONS, *TRACING_ACTIONS],
            "Resource": "*",
        },
        {
            "Sid": "OwnSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": [
                f"arn:aws:secretsmanager:*:{account_id}:secret:{own}/*",
                f"arn:aws:secretsmanager:*:{account_id}:secret:{own}-*",
            ],
        },
        {
            "Sid": "OwnBuckets",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:GetBucketVersioning",
                "s3:GetReplicationConfiguration",
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
                "s3:ReplicateObject",
                "s3:ReplicateDelete",
                "s3:ReplicateTags",
            ],
            "Resource": [f"arn:aws:s3:::{own}-*"],
        },
        {
            "Sid": "OwnQueues",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": f"arn:aws:sqs:*:{account_id}:{own}-*",
        },
        {
            # The functions' items in the link table's replicas; never its settings.
            "Sid": "LinkTableItems",
            "Effect": "Allow",
            "Action": LINK_TABLE_ITEM_ACTIONS,
            "Resource": link_table_arn(account_id, stack, "*"),
        },
        {
            "Sid": "EdgeCacheInvalidation",
            "Effect": "Allow",
            "Action": ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
            "Resource": f"arn:aws:cloudfront::{account_id}:distribution/*",
        },
    )


#: Role actions whose requests carry the role's current boundary (iam:PermissionsBoundary).
BOUNDED_ROLE_ACTIONS = [
    "iam:CreateRole",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
]
#: Role actions AWS evaluates without that key (the role must already be bounded to matter).
OTHER_ROLE_ACTIONS = [
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRole",
    "iam:TagRole",
    "iam:UntagRole",
]
ROLE_READS = [
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRoleTags",
]


def deploy_iam_policy(account_id: str, stack: str, *, disposable: bool = False) -> dict:
    """IAM for `pulumi up`: this stack's roles, each bound by the role boundary.

    The deploy role's other permissions come from AWS's PowerUserAccess, which
    excludes IAM; this grants back what the program manages, by name. Every role
    it creates or edits must carry `role_boundary_policy` (so it can never make
    an administrator and become it); it can neither remove nor rewrite that
    boundary, nor touch itself, the preview role or the GitHub identity provider:
    those are an administrator's (docs/deploy.md, bootstrap).

    Of DynamoDB it keeps only the stack's link table (every replica, its streams and
    backups), never with TTL, a resource policy, an export or a restore; unless the
    stack is `disposable`, it cannot delete the table, a replica or a backup.
    """
    roles = f"arn:aws:iam::{account_id}:role/{resource_name(stack)}-*"
    administered = [
        f"arn:aws:iam::{account_id}:role/{name}" for name in administered_role_names(stack)
    ]
    boundary = boundary_policy_arn(account_id, stack)
    identity_provider = f"arn:aws:iam::{account_id}:oidc-provider/{GITHUB_OIDC_HOST}"
    link_table = link_table_arn(account_id, stack, "*")
    lasting = (
        []
        if disposable
        else [
            {
                "Sid": "LastingLinkTableStays",
                "Effect": "Deny",
                "Action": LINK_TABLE_REMOVAL,
                "Resource": [link_table, f"{link_table}/*"],
            }
        ]
    )
    return _document(
        {
            "Sid": "NoTableButTheLinks",
            "Effect": "Deny",
            "Action": "dynamodb:*",
            "NotResource": [link_table, f"{link_table}/*"],
        },
        {
            "Sid": "LinkTableNeverExpiresOpensOrCopies",
            "Effect": "Deny",
            "Action": LINK_TABLE_NEVER,
            "Resource": "*",
        },
        *lasting,
        {
            "Sid": "NeverTheRolesCiAssumes",
            "Effect": "Deny",
            "Action": [*BOUNDED_ROLE_ACTIONS, *OTHER_ROLE_ACTIONS, "iam:PassRole"],
            "Resource": administered,
        },
        {
            "Sid": "BoundaryStaysOn",
            "Effect": "Deny",
            "Action": "iam:DeleteRolePermissionsBoundary",
            "Resource": "*",
        },
        {
            "Sid": "BoundaryIsAnAdministratorsPolicy",
            "Effect": "Deny",
            "Action": [
                "iam:CreatePolicyVersion",
                "iam:DeletePolicy",
                "iam:DeletePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            ],
            "Resource": boundary,
        },
        {
            "Sid": "IdentityProviderIsAnAdministrators",
            "Effect": "Deny",
            "Action": [
                "iam:CreateOpenIDConnectProvider",
                "iam:DeleteOpenIDConnectProvider",
                "iam:UpdateOpenIDConnectProviderThumbprint",
                "iam:AddClientIDToOpenIDConnectProvider",
                "iam:RemoveClientIDFromOpenIDConnectProvider",
                "iam:TagOpenIDConnectProvider",
                "iam:UntagOpenIDConnectProvider",
            ],
            "Resource": "*",
        },
        {
            "Sid": "OwnRolesOnlyWithTheBoundary",
            "Effect": "Allow",
            "Action": BOUNDED_ROLE_ACTIONS,
            "Resource": roles,
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}},
        },
        {
            "Sid": "OwnRoles",
            "Effect": "Allow",
            "Action": [*OTHER_ROLE_ACTIONS, *ROLE_READS],
            "Resource": roles,
        },
        {
            "Sid": "PassOwnRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": roles,
            "Condition": {
                "StringEquals": {
                    "iam:PassedToService": ["lambda.amazonaws.com", "s3.amazonaws.com"]
                }
            },
        },
        {
            "Sid": "ReadTheAdministratorsParts",
            "Effect": "Allow",
            "Action": [
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
                "iam:ListPolicyTags",
                "iam:GetOpenIDConnectProvider",
                "iam:ListOpenIDConnectProviderTags",
            ],
            "Resource": [boundary, identity_provider],
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": f"arn:aws:iam::{account_id}:role/aws-service-role/*",
            "Condition": {
                "StringEquals": {
                    "iam:AWSServiceName": [
                        "elasticache.amazonaws.com",
                        "replication.s3.amazonaws.com",
                        # Created with the account's first global table (AWS's docs).
                        "replication.dynamodb.amazonaws.com",
                    ]
                }
            },
        },
    )
