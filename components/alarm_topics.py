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
                opts=in_region,
            )
            if args.email:
                aws.sns.TopicSubscription(
                    f"{name}-{region}-email",
                    topic=topic.arn,
                    protocol="email",
                    endpoint=args.email,
                    opts=in_region,
                )
            self.topic_arns[region] = topic.arn
        self.register_outputs({"topic_arns": self.topic_arns})
