"""AlarmTopics: one SNS topic per region that every CloudWatch alarm of that region notifies.

Alarms live beside what they watch (functions, queues, the Datastore member,
bucket replication), and CloudWatch alarms can only notify a topic in their own
region, so each region gets one topic. The topic exists even without an email
address, so an on-call tool can subscribe to it later without a deploy.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass
class AlarmTopicsArgs:
    names: dict[str, str]
    """Region -> physical name prefix, e.g. golinks-prod-euw1 (the topic is <prefix>-alarms)."""
    providers: dict[str, pulumi.ProviderResource]
    """One AWS provider per region."""
    email: str = ""
    """Subscribed to every topic when set (empty: none; subscribe by hand or with a tool)."""


def _moved(region: str, suffix: str = "") -> pulumi.ResourceOptions:
    """Stacks that set alarmEmail before had the topic inside RegionalApi `api-<region>`.
    The alias keeps it: a replacement under the same topic name would delete the topic."""
    stack, project = pulumi.get_stack(), pulumi.get_project()
    old_parent = f"urn:pulumi:{stack}::{project}::golinks:api:RegionalApi::api-{region}"
    old_name = f"api-{region}-alarms{suffix}"
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=old_name, parent=old_parent)])


class AlarmTopics(pulumi.ComponentResource):
    topic_arns: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: AlarmTopicsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("golinks:monitoring:AlarmTopics", name, None, opts)
        self.topic_arns = {}
        for region, prefix in args.names.items():
            in_region = pulumi.ResourceOptions(parent=self, provider=args.providers[region])
            topic = aws.sns.Topic(
                f"{name}-{region}",
                name=f"{prefix}-alarms",
                # No SSE with the AWS-managed key: its key policy does not let
                # CloudWatch publish, and alarms would fail to notify silently.
                opts=pulumi.ResourceOptions.merge(in_region, _moved(region)),
            )
            if args.email:
                aws.sns.TopicSubscription(
                    f"{name}-{region}-email",
                    topic=topic.arn,
                    protocol="email",
                    endpoint=args.email,
                    opts=pulumi.ResourceOptions.merge(in_region, _moved(region, "-email")),
                )
            self.topic_arns[region] = topic.arn
        self.register_outputs({"topic_arns": self.topic_arns})
