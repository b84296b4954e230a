"""ServiceSecrets: the cache AUTH token and the origin-verify value, in every region.

Both are generated here (the AUTH token only for a stack with a cache) and
stored as one JSON secret per region, which the
functions read through the Parameters and Secrets extension; they never appear
in a function's environment. The origin-verify value is also what CloudFront
sends as the x-origin-verify header.

The secret's name is fixed, so Secrets Manager holds it for the recovery
window after a deletion: a disposable stack deletes without recovery (and can
create the same name again at once); any other stack keeps the window and
protects the secret against deletion.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random


@dataclass
class ServiceSecretsArgs:
    name: str
    """Secret name in every region, e.g. golinks-prod/service."""
    providers: dict[str, pulumi.ProviderResource]
    """One AWS provider per region that needs the secret."""
    disposable: bool = False
    """True: deleted without a recovery window, unprotected. False (default): a
    deletion can be undone for RECOVERY_WINDOW_DAYS, and the secret is protected."""
    redis_auth: bool = True
    """Generate the cache's AUTH token (default True; False for a stack without a cache:
    the secret then holds the origin-verify value alone)."""


RECOVERY_WINDOW_DAYS = 7


class ServiceSecrets(pulumi.ComponentResource):
    redis_auth_token: pulumi.Output[str] | None
    """None without a cache."""
    origin_verify: pulumi.Output[str]
    secret_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ServiceSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:security:ServiceSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        values = {}
        self.redis_auth_token = None
        if args.redis_auth:
            # ElastiCache AUTH tokens: 16-128 printable characters without @ " / or spaces.
            auth = random.RandomPassword(f"{name}-redis-auth", length=64, special=False, opts=child)
            values["redis_auth_token"] = auth.result
            self.redis_auth_token = pulumi.Output.secret(auth.result)
        origin = random.RandomPassword(
            f"{name}-origin-verify", length=48, special=False, opts=child
        )
        values["origin_verify"] = origin.result
        value = pulumi.Output.json_dumps(values)
        self.secret_arns = {}
        for region, provider in args.providers.items():
            in_region = pulumi.ResourceOptions(parent=self, provider=provider)
            secret = aws.secretsmanager.Secret(
                f"{name}-{region}",
                name=args.name,
                description=(
                    "Cache AUTH token and CloudFront origin-verify value"
                    if args.redis_auth
                    else "CloudFront origin-verify value"
                ),
                recovery_window_in_days=0 if args.disposable else RECOVERY_WINDOW_DAYS,
                opts=pulumi.ResourceOptions.merge(
                    in_region, pulumi.ResourceOptions(protect=not args.disposable)
                ),
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{region}", secret_id=secret.id, secret_string=value, opts=in_region
            )
            self.secret_arns[region] = secret.arn
        self.origin_verify = pulumi.Output.secret(origin.result)
        self.register_outputs({"secret_arns": self.secret_arns})
