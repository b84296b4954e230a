"""GithubDeployAccess: GitHub Actions reaches this stack's account with OIDC, no stored keys.

- The account's identity provider for token.actions.githubusercontent.com
  (audience sts.amazonaws.com).
- A deploy role for `pulumi up`, and a publisher role that may only write the
  link index, write the link directory (`/_links`, `/_links.json` in every
  region's static site) and invalidate the stack's CloudFront distributions; both
  trust only jobs of this repository that run in the GitHub environment named like
  the stack (`sub` = repo:<owner/repo>:environment:<stack>).
- A preview role for pull-request previews and link diffs, trusted only in the
  environment `<stack>-preview`: it reads the configuration of this stack's
  resources, never their data (no object but the published index and pages, no
  secret value, no decryption), see `preview_policy`.
- The deploy role has AWS's PowerUserAccess (everything but IAM) plus IAM for
  this stack's own roles, each bound by the stack's role boundary (RoleBoundary).
  It cannot change itself, the preview role or the identity provider: those are
  applied by an administrator (docs/deploy.md, bootstrap). The publisher carries
  the boundary and is the deploy role's: a failover rewrites its policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.planning import (
    GITHUB_AUDIENCE,
    GITHUB_OIDC_URL,
    deploy_iam_policy,
    directory_object_arns,
    github_trust_policy,
    preview_environment,
    preview_policy,
    publisher_policy,
    resource_name,
)

POWER_USER_POLICY = "arn:aws:iam::aws:policy/PowerUserAccess"


@dataclass
class GithubDeployAccessArgs:
    stack: str
    account_id: str
    repository: str
    """owner/repository on GitHub."""
    index_bucket_arn: pulumi.Input[str]
    """The primary region's link-index bucket (the publisher writes there)."""
    index_key: str
    permissions_boundary: pulumi.Input[str]
    """The stack's role boundary (RoleBoundary): the publisher carries it, since the deploy
    role manages the publisher's policy (it moves with the primary region on a failover)."""
    distribution_arns: list[pulumi.Input[str]] = field(default_factory=list)
    """The stack's CloudFront distributions: the publisher invalidates them (default none)."""
    static_bucket_arns: list[pulumi.Input[str]] = field(default_factory=list)
    """Every region's static-site bucket: the publisher writes the link directory there
    (default none)."""
    disposable: bool = False
    """The deploy role may delete the link table (tear down); default False: a lasting
    stack's table, replicas and backups are deleted by an administrator only."""


class GithubDeployAccess(pulumi.ComponentResource):
    deploy_role_arn: pulumi.Output[str]
    publisher_role_arn: pulumi.Output[str]
    preview_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: GithubDeployAccessArgs, opts: pulumi.ResourceOptions):
        super().__init__("golinks:ci:GithubDeployAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        provider = aws.iam.OpenIdConnectProvider(
            f"{name}-github",
            url=GITHUB_OIDC_URL,
            client_id_lists=[GITHUB_AUDIENCE],
            opts=child,
        )

        def trust(environment: str) -> pulumi.Output[str]:
            return provider.arn.apply(
                lambda arn: json.dumps(github_trust_policy(arn, args.repository, environment))
            )

        deploy = aws.iam.Role(
            f"{name}-deploy",
            name=resource_name(args.stack, "deploy"),
            description=f"pulumi up for stack {args.stack}, from GitHub Actions",
            assume_role_policy=trust(args.stack),
            max_session_duration=7200,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-deploy-power-user", role=deploy.name, policy_arn=POWER_USER_POLICY, opts=child
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-iam",
            role=deploy.id,
            policy=json.dumps(
                deploy_iam_policy(args.account_id, args.stack, disposable=args.disposable)
            ),
            opts=child,
        )
        publisher = aws.iam.Role(
            f"{name}-publish",
            name=resource_name(args.stack, "publish"),
            description=f"Publishes the link index of stack {args.stack}, from GitHub Actions",
            assume_role_policy=trust(args.stack),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-publish",
            role=publisher.id,
            policy=pulumi.Output.all(
                args.index_bucket_arn, *args.distribution_arns, *args.static_bucket_arns
            ).apply(
                lambda arns: json.dumps(
                    publisher_policy(
                        arns[0],
                        args.index_key,
                        arns[1 : 1 + len(args.distribution_arns)],
                        directory_object_arns(arns[1 + len(args.distribution_arns) :]),
                    )
                )
            ),
            opts=child,
        )
        preview = aws.iam.Role(
            f"{name}-preview",
            name=resource_name(args.stack, "preview"),
            description=f"Read-only preview and link diff of {args.stack} on pull requests",
            assume_role_policy=trust(preview_environment(args.stack)),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-preview-read-only",
            role=preview.id,
            policy=json.dumps(preview_policy(args.account_id, args.stack, args.index_key)),
            opts=child,
        )
        self.deploy_role_arn = deploy.arn
        self.publisher_role_arn = publisher.arn
        self.preview_role_arn = preview.arn
        self.register_outputs(
            {
                "deploy_role_arn": deploy.arn,
                "publisher_role_arn": publisher.arn,
                "preview_role_arn": preview.arn,
            }
        )
