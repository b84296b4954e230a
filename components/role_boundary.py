"""RoleBoundary: the permissions boundary of every role the program creates for its workloads.

The deploy role may create and edit this stack's roles only with this boundary
attached (components/planning.py `deploy_iam_policy`), and may not change the
boundary itself: it is an administrator's, like the roles CI assumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.planning import resource_name, role_boundary_policy


@dataclass
class RoleBoundaryArgs:
    stack: str
    account_id: str


class RoleBoundary(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    """Pass it as `permissions_boundary` to every role that is not an administrator's."""

    def __init__(self, name: str, args: RoleBoundaryArgs, opts: pulumi.ResourceOptions):
        super().__init__("golinks:ci:RoleBoundary", name, None, opts)
        policy = aws.iam.Policy(
            name,
            name=resource_name(args.stack, "role-boundary"),
            description=f"Permissions boundary of the {args.stack} stack's workload roles",
            policy=json.dumps(role_boundary_policy(args.account_id, args.stack)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = policy.arn
        self.register_outputs({"arn": policy.arn})
