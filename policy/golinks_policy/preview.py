"""The preview role reads what `pulumi preview` (with `--refresh`) and the link diff read:
the configuration of the stack's resources, never their data."""

from __future__ import annotations

from .access import role_documents
from .iam import Request, allowed
from .model import Resource, Stack, violation
from .types import ROLE

_BUCKET = [
    "s3:ListBucket",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketWebsite",
    "s3:GetBucketVersioning",
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketLogging",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketTagging",
    "s3:GetBucketPolicy",
]
_API = ["apigateway:GET"]
#: The calls the AWS provider's Read makes for each resource type (a refresh of it).
REFRESH_READS: dict[str, list[str]] = {
    "aws:acm/certificate:Certificate": ["acm:DescribeCertificate", "acm:ListTagsForCertificate"],
    "aws:acm/certificateValidation:CertificateValidation": ["acm:DescribeCertificate"],
    "aws:apigatewayv2/api:Api": _API,
    "aws:apigatewayv2/apiMapping:ApiMapping": _API,
    "aws:apigatewayv2/domainName:DomainName": _API,
    "aws:apigatewayv2/integration:Integration": _API,
    "aws:apigatewayv2/route:Route": _API,
    "aws:apigatewayv2/stage:Stage": _API,
    "aws:cloudfront/cachePolicy:CachePolicy": ["cloudfront:GetCachePolicy"],
    "aws:cloudfront/distribution:Distribution": [
        "cloudfront:GetDistribution",
        "cloudfront:ListTagsForResource",
    ],
    "aws:cloudfront/originAccessControl:OriginAccessControl": ["cloudfront:GetOriginAccessControl"],
    "aws:cloudwatch/logGroup:LogGroup": ["logs:DescribeLogGroups", "logs:ListTagsForResource"],
    "aws:cloudwatch/logResourcePolicy:LogResourcePolicy": ["logs:DescribeResourcePolicies"],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [
        "cloudwatch:DescribeAlarms",
        "cloudwatch:ListTagsForResource",
    ],
    "aws:dynamodb/table:Table": [
        "dynamodb:DescribeTable",
        "dynamodb:DescribeContinuousBackups",
        "dynamodb:DescribeTimeToLive",
        "dynamodb:ListTagsOfResource",
    ],
    "aws:ec2/routeTable:RouteTable": ["ec2:DescribeRouteTables"],
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ["ec2:DescribeRouteTables"],
    "aws:ec2/securityGroup:SecurityGroup": ["ec2:DescribeSecurityGroups"],
    "aws:ec2/subnet:Subnet": ["ec2:DescribeSubnets"],
    "aws:ec2/vpc:Vpc": ["ec2:DescribeVpcs", "ec2:DescribeVpcAttribute"],
    "aws:ec2/vpcEndpoint:VpcEndpoint": ["ec2:DescribeVpcEndpoints", "ec2:DescribePrefixLists"],
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ["ec2:DescribeSecurityGroupRules"],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ["ec2:DescribeSecurityGroupRules"],
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup": [
        "elasticache:DescribeGlobalReplicationGroups"
    ],
    "aws:elasticache/replicationGroup:ReplicationGroup": [
        "elasticache:DescribeReplicationGroups",
        "elasticache:DescribeCacheClusters",
        "elasticache:ListTagsForResource",
    ],
    "aws:elasticache/subnetGroup:SubnetGroup": [
        "elasticache:DescribeCacheSubnetGroups",
        "elasticache:ListTagsForResource",
    ],
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ["iam:GetOpenIDConnectProvider"],
    "aws:iam/policy:Policy": ["iam:GetPolicy", "iam:GetPolicyVersion"],
    "aws:iam/role:Role": [
        "iam:GetRole",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
    ],
    "aws:iam/rolePolicy:RolePolicy": ["iam:GetRolePolicy"],
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ["iam:ListAttachedRolePolicies"],
    "aws:kms/key:Key": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus"],
    "aws:lambda/function:Function": [
        "lambda:GetFunction",
        "lambda:GetFunctionCodeSigningConfig",
        "lambda:GetRuntimeManagementConfig",
        "lambda:ListVersionsByFunction",
    ],
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": [
        "lambda:GetFunctionEventInvokeConfig"
    ],
    "aws:lambda/permission:Permission": ["lambda:GetPolicy"],
    "aws:route53/healthCheck:HealthCheck": [
        "route53:GetHealthCheck",
        "route53:ListTagsForResource",
    ],
    "aws:route53/record:Record": ["route53:GetHostedZone", "route53:ListResourceRecordSets"],
    "aws:s3/bucket:Bucket": _BUCKET,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": [
        "s3:GetLifecycleConfiguration"
    ],
    "aws:s3/bucketNotification:BucketNotification": ["s3:GetBucketNotification"],
    "aws:s3/bucketObjectv2:BucketObjectv2": ["s3:GetObject", "s3:GetObjectTagging"],
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ["s3:GetBucketOwnershipControls"],
    "aws:s3/bucketPolicy:BucketPolicy": ["s3:GetBucketPolicy"],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": ["s3:GetBucketPublicAccessBlock"],
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": ["s3:GetReplicationConfiguration"],
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": [
        "s3:GetEncryptionConfiguration"
    ],
    "aws:s3/bucketVersioning:BucketVersioning": ["s3:GetBucketVersioning"],
    "aws:secretsmanager/secret:Secret": [
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetResourcePolicy",
    ],
    # Reading a secret version back is reading the secret: the preview role never does, so
    # a preview does not refresh (docs/delivery.md); the deploy role's `up --refresh` does.
    "aws:secretsmanager/secretVersion:SecretVersion": [],
    "aws:sns/topic:Topic": ["sns:GetTopicAttributes", "sns:ListTagsForResource"],
    "aws:sns/topicSubscription:TopicSubscription": ["sns:GetSubscriptionAttributes"],
    "aws:sqs/queue:Queue": ["sqs:GetQueueAttributes", "sqs:ListQueueTags"],
    "aws:sqs/queuePolicy:QueuePolicy": ["sqs:GetQueueAttributes"],
    "aws:sqs/redrivePolicy:RedrivePolicy": ["sqs:GetQueueAttributes"],
    "aws:wafv2/ipSet:IpSet": ["wafv2:GetIPSet", "wafv2:ListTagsForResource"],
    "aws:wafv2/webAcl:WebAcl": ["wafv2:GetWebACL", "wafv2:ListTagsForResource"],
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": [
        "wafv2:GetLoggingConfiguration"
    ],
}


def _target(d: Stack, resource: Resource) -> str:
    """The ARN a read of `resource` is authorized against."""
    props = resource.props
    if resource.type.startswith("aws:s3/"):
        bucket = props.get("bucket")
        key = props.get("key")
        return f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
    if resource.type.startswith("aws:iam/role"):
        name = props.get("name") if resource.type == ROLE else props.get("role")
        return f"arn:aws:iam::{d.account_id}:role/{name}"
    arn = props.get("arn")
    return arn if isinstance(arn, str) else "*"


def forbidden_reads(d: Stack) -> list[Request]:
    """Data, and any change: what a preview (branch code, before review) must never get."""
    account = d.account_id
    own = f"golinks-{d.stack}"
    secrets = [r["arn"] for r in d.of_type("aws:secretsmanager/secret:Secret") if r["arn"]]
    return [
        Request("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/data"),
        Request("s3:GetObject", f"arn:aws:s3:::{own}-index-eu-west-1-{account}/index/older.json"),
        Request("s3:GetObjectVersion", f"arn:aws:s3:::{own}-index-eu-west-1-{account}/x"),
        Request("s3:PutObject", f"arn:aws:s3:::{own}-index-eu-west-1-{account}/index/links.json"),
        *(Request("secretsmanager:GetSecretValue", arn) for arn in secrets),
        Request(
            "secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:eu-west-1:{account}:secret:x"
        ),
        Request("kms:Decrypt", f"arn:aws:kms:eu-west-1:{account}:key/x"),
        Request("dynamodb:GetItem", f"arn:aws:dynamodb:eu-west-1:{account}:table/{own}-links"),
        Request("dynamodb:Query", f"arn:aws:dynamodb:eu-west-1:{account}:table/{own}-links"),
        Request("dynamodb:Scan", f"arn:aws:dynamodb:eu-west-1:{account}:table/{own}-links"),
        *(
            Request(action, f"arn:aws:dynamodb:{region}:{account}:table/{own}-links{sub}")
            for region in ("eu-west-1", "us-west-2")
            for action, sub in (
                ("dynamodb:BatchGetItem", ""),
                ("dynamodb:PartiQLSelect", ""),
                ("dynamodb:GetRecords", "/stream/2026-01-01T00:00:00.000"),
                ("dynamodb:ExportTableToPointInTime", ""),
                ("dynamodb:UpdateTimeToLive", ""),
            )
        ),
        Request("sqs:ReceiveMessage", f"arn:aws:sqs:eu-west-1:{account}:{own}-dlq"),
        Request("logs:GetLogEvents", f"arn:aws:logs:eu-west-1:{account}:log-group:x:log-stream:y"),
        Request("logs:FilterLogEvents", f"arn:aws:logs:eu-west-1:{account}:log-group:x"),
        Request("logs:StartQuery", f"arn:aws:logs:eu-west-1:{account}:log-group:x"),
        Request("wafv2:GetSampledRequests", "*"),
        Request("ssm:GetParameter", f"arn:aws:ssm:eu-west-1:{account}:parameter/x"),
        Request("lambda:InvokeFunction", f"arn:aws:lambda:eu-west-1:{account}:function:{own}-x"),
        Request("iam:PassRole", f"arn:aws:iam::{account}:role/{own}-deploy"),
        Request("sts:AssumeRole", f"arn:aws:iam::{account}:role/{own}-deploy"),
        Request("iam:PutRolePolicy", f"arn:aws:iam::{account}:role/{own}-preview"),
        Request("cloudfront:CreateInvalidation", f"arn:aws:cloudfront::{account}:distribution/E1"),
        Request("elasticache:ModifyReplicationGroup", "*"),
        Request("ec2:RunInstances", "*"),
    ]


def preview_role_reads_only_configuration(d: Stack) -> list[str]:
    """The preview role may refresh every resource of the stack, and read no data."""
    name = f"golinks-{d.stack}-preview"
    role = next((r for r in d.of_type(ROLE) if r["name"] == name), None)
    if role is None:
        return [f"{d.stack}: no {name} role"]
    documents = role_documents(d, name)
    if documents is None:
        return [violation(role, "has a managed policy: its reads cannot be held to configuration")]
    violations = []
    for resource in d.resources:
        if not resource.type.startswith("aws:"):
            continue
        reads = REFRESH_READS.get(resource.type)
        if reads is None:
            violations.append(
                violation(resource, f"what a refresh of {resource.type} reads is not known here")
            )
            continue
        target = _target(d, resource)
        violations.extend(
            violation(resource, f"the preview role cannot refresh it: {action} on {target}")
            for action in reads
            if not allowed(Request(action, target), documents)
        )
    violations.extend(
        violation(role, f"may read data or change something: {request}")
        for request in forbidden_reads(d)
        if allowed(request, documents)
    )
    return violations
