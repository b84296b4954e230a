"""The engine's side: Pulumi's resources and the stack's config, turned into a `Stack`.

During a preview some values are not known yet. They stay in place and raise
the policy SDK's `UnknownValueError` when a validator reads them, so that
validator is reported as "can't run during preview" (advisory) instead of
judging a placeholder; `pulumi up` runs it again on the real values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import pulumi
from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError, _is_unknown

from .model import Resource, Stack, StackFacts

#: Stack config keys the pack reads; every stack file sets them.
CONFIG_KEYS = {
    "account_id": "aws:allowedAccountIds",
    "primary_region": "golinks:primaryRegion",
    "public_hostname": "golinks:domain",
    "github_repository": "golinks:githubRepository",
}


def _checked(value, path: list[str]):
    if _is_unknown(value):
        raise UnknownValueError(value, path)
    return value


class KnownDict(dict):
    """A dict whose unknown values raise when read (and when compared)."""

    _path: list[str]

    def __getitem__(self, key):
        return _checked(super().__getitem__(key), [*self._path, str(key)])

    def get(self, key, default=None):
        if not dict.__contains__(self, key):
            return default
        return self[key]

    def values(self):
        return [self[k] for k in self]

    def items(self):
        return [(k, self[k]) for k in self]

    def __eq__(self, other):
        self.items()
        return super().__eq__(other)

    __hash__ = None


class KnownList(list):
    _path: list[str]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        return _checked(super().__getitem__(index), [*self._path, str(index)])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __eq__(self, other):
        list(self)
        return super().__eq__(other)

    __hash__ = None


_CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


def python_name(key: str) -> str:
    """A wire property name (camelCase) as the Python SDK spells it. Only identifier-like
    keys are renamed: environment variables, tags and IAM condition keys keep theirs."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower() if _CAMEL.fullmatch(key) else key


def _plain(value, path: list[str]):
    """The SDK's proxies (which raise as soon as an unknown is walked) to renamed data."""
    if isinstance(value, Mapping):
        target = value if isinstance(value, dict) else value["__target"]
        known = KnownDict(
            (python_name(k), _plain(v, [*path, str(k)])) for k, v in dict.items(target)
        )
    elif isinstance(value, Sequence) and not isinstance(value, str):
        target = value if isinstance(value, list) else value["__target"]
        known = KnownList(_plain(v, [*path, str(i)]) for i, v in enumerate(list.__iter__(target)))
    else:
        return value
    known._path = path
    return known


def resource_from_engine(resource: PolicyResource) -> Resource:
    region = None
    if resource.provider is not None and resource.provider.resource_type == "pulumi:providers:aws":
        region = _plain(resource.provider.props, []).get("region")
    return Resource(
        type=resource.resource_type,
        urn=resource.urn,
        name=resource.name,
        props=_plain(resource.props, []),
        region=region,
        dependencies=[d.urn for d in resource.dependencies],
        protect=bool(resource.opts.protect),
        ignore_changes=tuple(python_name(k) for k in resource.opts.ignore_changes or ()),
    )


def stack_from_engine(resources: list[PolicyResource], facts: StackFacts) -> Stack:
    return Stack(facts, [resource_from_engine(r) for r in resources])


def facts_from_config() -> StackFacts:
    """The facts from the stack being previewed or updated (the CLI hands the pack its config)."""
    values = {}
    for field, key in CONFIG_KEYS.items():
        namespace, name = key.split(":")
        value = pulumi.Config(namespace).get(name)
        if not value:
            raise ValueError(f"the golinks policy pack needs {key} in the stack file")
        values[field] = value
    accounts = json.loads(values["account_id"])
    values["account_id"] = accounts[0] if isinstance(accounts, list) else str(accounts)
    # Optional: a stack that does not say it is disposable is held to the lasting rules.
    disposable = bool(pulumi.Config("golinks").get_bool("disposable"))
    router = pulumi.Config("golinks").get("trafficRouter") or "cloudflare"
    store = pulumi.Config("golinks").get("linkStore") or "elasticache"
    return StackFacts(
        stack=pulumi.get_stack(),
        disposable=disposable,
        traffic_router=router,
        link_store=store,
        **values,
    )
