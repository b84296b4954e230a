"""golinks' policy pack: `pulumi preview|up --policy-pack policy` (see README.md)."""

from golinks_policy import stack_policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="golinks",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=stack_policies(),
)
