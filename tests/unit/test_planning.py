"""Pure planning: names, address plans, region facts and IAM documents, without Pulumi."""

from __future__ import annotations

import ipaddress

import pytest

from components import planning


def test_names_fit_the_services_limits():
    assert planning.short_region("ap-southeast-1") == "apse1"
    assert planning.resource_name("prod", "euw1", "redirect") == "golinks-prod-euw1-redirect"
    longest = planning.bucket_name("staging", "index", "ap-southeast-1", "222222222222")
    assert longest == "golinks-staging-index-ap-southeast-1-222222222222" and len(longest) <= 63
    with pytest.raises(ValueError, match="63 characters"):
        planning.bucket_name("a-very-long-stack-name", "index", "ap-southeast-1", "222222222222")
    cache_id = f"golinks-staging-{planning.short_region('ap-southeast-1')}"
    assert len(cache_id) <= 40  # ElastiCache replication group ids


def test_each_region_gets_its_own_vpc_block_and_two_zones():
    blocks = [planning.vpc_cidr("10.40.0.0/16", i) for i in range(3)]
    assert blocks == ["10.40.0.0/16", "10.41.0.0/16", "10.42.0.0/16"]
    plan = planning.subnet_plan("us-west-2", "10.41.0.0/16")
    assert plan == [("us-west-2a", "10.41.0.0/20"), ("us-west-2b", "10.41.16.0/20")]
    networks = [ipaddress.ip_network(cidr) for _, cidr in plan]
    assert not networks[0].overlaps(networks[1])


def test_regional_hostnames_and_static_paths():
    assert planning.regional_hostname("eu-west-1", "go.example.com") == "eu-west-1.go.example.com"
    patterns = planning.static_path_patterns()
    assert patterns[:3] == ["/", "/index.html", "/static/*"]
    assert "/favicon.ico" in patterns and "/healthz" not in patterns
    assert patterns[-2:] == ["/_links", "/_links.json"]  # the directory, never the function


def test_an_extension_layer_arn_names_its_region_and_must_be_aws_s_arm64_layer():
    layer = "layer:AWS-Parameters-and-Secrets-Lambda-Extension-Arm64:101"
    arn = f"arn:aws:lambda:eu-west-1:015030872274:{layer}"
    assert planning.secrets_extension_layer_region(arn) == "eu-west-1"
    assert set(planning.SUPPORTED_REGIONS) >= {"eu-west-1", "us-west-2", "ap-southeast-1"}
    for wrong, reason in (
        (f"arn:aws:lambda:eu-west-1:111111111111:{layer}", "from account 015030872274"),
        (f"arn:aws:lambda:sa-east-1:015030872274:{layer}", "region not supported"),
        (arn.replace("-Arm64", ""), "is not an ARN of the"),
        (arn.removesuffix(":101"), "is not an ARN of the"),
    ):
        with pytest.raises(ValueError, match=reason):
            planning.secrets_extension_layer_region(wrong)


def test_replication_lag_is_watched_on_every_node_of_a_member():
    member = planning.cache_member_id("prod", "us-west-2")
    assert member == "golinks-prod-usw2"
    assert planning.cache_node_ids(member, 2) == ["golinks-prod-usw2-001", "golinks-prod-usw2-002"]


def test_service_roles_trust_the_service_as_aws_documents_it():
    # S3 replication sends no aws:SourceAccount: a condition on it stops replication.
    assert planning.service_trust_policy("s3.amazonaws.com") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def test_function_policy_grants_only_what_the_function_uses():
    document = planning.function_policy(
        log_group_arn="arn:aws:logs:eu-west-1:1:log-group:/aws/lambda/f",
        secret_arn="arn:aws:secretsmanager:eu-west-1:1:secret:s",
        index_bucket_arn="arn:aws:s3:::b",
        index_key="index/links.json",
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["LinkIndex"]["Resource"] == "arn:aws:s3:::b/index/links.json"
    assert by_sid["Logs"]["Resource"].endswith(":log-group:/aws/lambda/f:*")
    star = [s for s in document["Statement"] if s["Resource"] == "*"]
    assert {s["Sid"] for s in star} == {"VpcNetworkInterfaces", "Tracing"}
    assert "OnFailureQueue" not in by_sid


def test_an_asynchronous_function_may_send_to_its_failure_queue_only():
    queue = "arn:aws:sqs:eu-west-1:1:golinks-prod-euw1-sync-failures"
    document = planning.function_policy(
        log_group_arn="arn:aws:logs:eu-west-1:1:log-group:/aws/lambda/f",
        secret_arn="arn:aws:secretsmanager:eu-west-1:1:secret:s",
        index_bucket_arn="arn:aws:s3:::b",
        index_key="index/links.json",
        failure_queue_arn=queue,
    )
    sends = [s for s in document["Statement"] if "sqs:SendMessage" in s["Action"]]
    assert [s["Resource"] for s in sends] == [queue]


def test_a_function_outside_the_vpc_manages_no_network_interfaces_and_gets_its_store_grant():
    table = {
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem"],
        "Resource": ["arn:aws:dynamodb:eu-west-1:1:table/golinks-dev-links"],
    }
    document = planning.function_policy(
        log_group_arn="arn:aws:logs:eu-west-1:1:log-group:/aws/lambda/f",
        secret_arn="arn:aws:secretsmanager:eu-west-1:1:secret:s",
        index_bucket_arn="arn:aws:s3:::b",
        index_key="index/links.json",
        in_vpc=False,
        store_statements=[table],
    )
    assert "VpcNetworkInterfaces" not in {s.get("Sid") for s in document["Statement"]}
    assert document["Statement"][-1] == table


@pytest.mark.parametrize(
    ("regions", "primary", "ordered"),
    [
        (
            ("eu-west-1", "us-west-2", "ap-southeast-1"),
            "eu-west-1",
            ["eu-west-1", "us-west-2", "ap-southeast-1"],
        ),
        (
            ("eu-west-1", "us-west-2", "ap-southeast-1"),
            "us-west-2",
            ["us-west-2", "eu-west-1", "ap-southeast-1"],
        ),
        (
            ("eu-west-1", "us-west-2", "ap-southeast-1"),
            "ap-southeast-1",
            ["ap-southeast-1", "eu-west-1", "us-west-2"],
        ),
        (("us-west-2",), "us-west-2", ["us-west-2"]),
    ],
)
def test_primary_first_keeps_the_configured_order_behind_the_primary(regions, primary, ordered):
    assert planning.primary_first(regions, primary) == ordered


def test_primary_first_refuses_a_primary_outside_the_regions():
    with pytest.raises(ValueError, match="us-east-1 is not one of"):
        planning.primary_first(("eu-west-1",), "us-east-1")


def test_github_trust_pins_audience_and_environment_subject():
    document = planning.github_trust_policy(
        "arn:aws:iam::1:oidc-provider/x", "example/golinks", "prod"
    )
    condition = document["Statement"][0]["Condition"]
    assert condition == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:example/golinks:environment:prod",
        }
    }


def test_the_publisher_may_only_write_the_index_object_and_the_directory():
    document = planning.publisher_policy("arn:aws:s3:::idx", "index/links.json")
    writes = [s for s in document["Statement"] if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in writes] == ["arn:aws:s3:::idx/index/links.json"]
    directory = planning.directory_object_arns(["arn:aws:s3:::site-a", "arn:aws:s3:::site-b"])
    document = planning.publisher_policy(
        "arn:aws:s3:::idx", "index/links.json", directory_objects=directory
    )
    writes = [s for s in document["Statement"] if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in writes] == [
        "arn:aws:s3:::idx/index/links.json",
        [
            "arn:aws:s3:::site-a/_links",
            "arn:aws:s3:::site-a/_links.json",
            "arn:aws:s3:::site-b/_links",
            "arn:aws:s3:::site-b/_links.json",
        ],
    ]


def test_static_site_policy_admits_one_distribution():
    document = planning.static_site_bucket_policy(
        "arn:aws:s3:::site", "arn:aws:cloudfront::1:distribution/E1"
    )
    for statement in document["Statement"]:
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"AWS:SourceArn": "arn:aws:cloudfront::1:distribution/E1"}
        }


def test_short_region_names_never_collide():
    shorts = [planning.short_region(region) for region in planning.SUPPORTED_REGIONS]
    assert len(set(shorts)) == len(shorts)


def test_the_publisher_may_invalidate_only_the_distributions_it_is_given():
    arns = ["arn:aws:cloudfront::1:distribution/E2", "arn:aws:cloudfront::1:distribution/E1"]
    document = planning.publisher_policy("arn:aws:s3:::idx", "index/links.json", arns)
    invalidating = [
        s for s in document["Statement"] if "cloudfront:CreateInvalidation" in s["Action"]
    ]
    assert invalidating == [
        {
            "Effect": "Allow",
            "Action": ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
            "Resource": sorted(arns),
        }
    ]
    without = planning.publisher_policy("arn:aws:s3:::idx", "index/links.json")
    assert "cloudfront" not in str(without)


def test_the_repository_web_address_leaves_out_immutable_ids():
    assert planning.repository_web_url("example/golinks") == "https://github.com/example/golinks"
    assert (
        planning.repository_web_url("example@1234/golinks@98765")
        == "https://github.com/example/golinks"
    )
