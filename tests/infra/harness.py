"""Run the Pulumi program for a stack under mocks and record what it would create.

The mocks answer like AWS, Cloudflare and random would: ARNs in the right
region and account, endpoints, CloudFront domains, validation records. A
recording monitor keeps every registration with its real URN, parent,
provider, dependencies and resource options (protect, ignore_changes,
delete_before_replace), and the stack's exports. What the engine and the
providers then do with such a deployment (refresh, plan, destroy, an
unreachable region) is modelled in lifecycle.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor, Mocks

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "__main__.py"
EDGE_REGION = "us-east-1"


@dataclass
class Resource:
    urn: str
    id: str
    type: str
    name: str
    inputs: dict
    outputs: dict
    parent: str
    provider_region: str | None
    dependencies: list[str]
    custom: bool
    provider: str = ""
    """The provider reference, `<provider urn>::<provider id>`."""
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    """Property names (Python spelling) whose changes the engine ignores."""
    delete_before_replace: bool = False

    def __getitem__(self, key: str):
        return self.inputs.get(key)

    def policy_document(self, key: str = "policy") -> dict:
        value = self.inputs.get(key)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class Deployment:
    stack: str
    account_id: str
    resources: list[Resource]
    exports: dict = field(default_factory=dict)
    program: dict = field(default_factory=dict, repr=False)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_part: str = "") -> Resource:
        found = [r for r in self.of_type(type_) if name_part in r.name]
        assert len(found) == 1, (
            f"expected one {type_} named *{name_part}*, found {[r.name for r in found]}"
        )
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def ancestors(self, resource: Resource) -> list[Resource]:
        chain, parent = [], resource.parent
        while parent and any(r.urn == parent for r in self.resources):
            node = self.by_urn(parent)
            chain.append(node)
            parent = node.parent
        return chain

    def broken(self, mutate) -> Deployment:
        """A copy with `mutate(copy)` applied: what a regression would produce."""
        clone = Deployment(
            self.stack,
            self.account_id,
            copy.deepcopy(self.resources),
            copy.deepcopy(self.exports),
            self.program,
        )
        mutate(clone)
        return clone


@dataclass(frozen=True)
class Where:
    account: str
    region: str
    digest: str
    rid: str


def _bucket(i, at):
    name = i.get("bucket") or at.rid
    return name, {
        "bucket": name,
        "arn": f"arn:aws:s3:::{name}",
        "bucket_regional_domain_name": f"{name}.s3.{at.region}.amazonaws.com",
    }


def _function(i, at):
    arn = f"arn:aws:lambda:{at.region}:{at.account}:function:{i['name']}"
    invoke = f"arn:aws:apigateway:{at.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    version = "1" if i.get("publish") else "$LATEST"  # publish: the first numbered version
    return i["name"], {
        "arn": arn,
        "version": version,
        "qualified_arn": f"{arn}:{version}",
        "invoke_arn": invoke,
    }


#: API Gateway's regional hosted zones (the alias target zone of a regional custom domain).
API_GATEWAY_ZONES = {
    "eu-west-1": "ZLY8HYME6SFDD",
    "us-west-2": "Z2OJLYMUO9EFXC",
    "ap-southeast-1": "ZL327KTPIQFUL",
    "us-east-1": "Z1UJRXOUMOOFQ8",
}


def _api_domain(i, at):
    configuration = dict(i["domain_name_configuration"])
    configuration.update(
        target_domain_name=f"d-{at.digest[:10]}.execute-api.{at.region}.amazonaws.com",
        hosted_zone_id=API_GATEWAY_ZONES[at.region],
    )
    return i["domain_name"], {
        "domain_name_configuration": configuration,
        "arn": f"arn:aws:apigateway:{at.region}::/domainnames/{i['domain_name']}",
    }


def _record(i, at):
    name = i["name"].rstrip(".")
    parts = [
        i["zone_id"],
        name,
        i["type"],
        *([i["set_identifier"]] if i.get("set_identifier") else []),
    ]
    return "_".join(parts), {"fqdn": name}


def _health_check(i, at):
    d = at.digest
    check_id = f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"
    return check_id, {"arn": f"arn:aws:route53:::healthcheck/{check_id}"}


def _api(i, at):
    api_id = at.digest[:10]
    return api_id, {
        "api_endpoint": f"https://{api_id}.execute-api.{at.region}.amazonaws.com",
        "execution_arn": f"arn:aws:execute-api:{at.region}:{at.account}:{api_id}",
    }


def _replication_group(i, at):
    group = i["replication_group_id"]
    host = f"{group}.{at.digest[:6]}.{at.region.replace('-', '')[:6]}.cache.amazonaws.com"
    return group, {
        "id": group,
        "arn": f"arn:aws:elasticache:{at.region}:{at.account}:replicationgroup:{group}",
        "primary_endpoint_address": f"master.{host}",
        "reader_endpoint_address": f"replica.{host}",
    }


def _table(i, at):
    """A global table: its ARN and stream, and each replica's, in the replica's region."""
    arn = f"arn:aws:dynamodb:{{}}:{at.account}:table/{i['name']}"
    label = "2026-01-01T00:00:00.000"
    replicas = [
        {
            **replica,
            "arn": arn.format(replica["region_name"]),
            "stream_arn": f"{arn.format(replica['region_name'])}/stream/{label}",
            "stream_label": label,
        }
        for replica in i.get("replicas") or []
    ]
    return i["name"], {
        "arn": arn.format(at.region),
        "stream_arn": f"{arn.format(at.region)}/stream/{label}" if i.get("stream_enabled") else "",
        "stream_label": label if i.get("stream_enabled") else "",
        "replicas": replicas,
    }


def _certificate(i, at):
    arn = f"arn:aws:acm:{at.region}:{at.account}:certificate/{at.digest[:36]}"
    domain = i["domain_name"].removeprefix("*.")
    option = {
        "domain_name": i["domain_name"],
        "resource_record_name": f"_{at.digest[:32]}.{domain}.",
        "resource_record_type": "CNAME",
        "resource_record_value": f"_{at.digest[32:64]}.jkddzztszm.acm-validations.aws.",
    }
    return arn, {"arn": arn, "domain_validation_options": [option]}


def _distribution(i, at):
    dist_id = f"E{at.digest[:13].upper()}"
    return dist_id, {
        "domain_name": f"d{at.digest[:13]}.cloudfront.net",
        "arn": f"arn:aws:cloudfront::{at.account}:distribution/{dist_id}",
        "hosted_zone_id": "Z2FDTNDATAQYW2",
    }


def _arn(template):
    def compute(i, at):
        arn = template.format(i=i, at=at)
        return arn, {"arn": arn}

    return compute


COMPUTED = {
    "pulumi:providers:aws": lambda i, at: (at.rid, {}),
    "aws:s3/bucket:Bucket": _bucket,
    "aws:iam/role:Role": lambda i, at: (
        i["name"],
        {"arn": f"arn:aws:iam::{at.account}:role/{i['name']}"},
    ),
    "aws:iam/policy:Policy": _arn("arn:aws:iam::{at.account}:policy/{i[name]}"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda i, at: _arn(
        "arn:aws:iam::{at.account}:oidc-provider/" + i["url"].removeprefix("https://")
    )(i, at),
    "aws:cloudwatch/logGroup:LogGroup": lambda i, at: (
        i["name"],
        {"arn": f"arn:aws:logs:{at.region}:{at.account}:log-group:{i['name']}"},
    ),
    "aws:lambda/function:Function": _function,
    "aws:apigatewayv2/api:Api": _api,
    "aws:secretsmanager/secret:Secret": _arn(
        "arn:aws:secretsmanager:{at.region}:{at.account}:secret:{i[name]}-{at.digest:.6}"
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": _replication_group,
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup": lambda i, at: (
        "ldgnf-" + i["global_replication_group_id_suffix"],
        {"global_replication_group_id": "ldgnf-" + i["global_replication_group_id_suffix"]},
    ),
    "aws:dynamodb/table:Table": _table,
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda i, at: (
        f"vpce-{at.digest[:17]}",
        {"prefix_list_id": f"pl-{at.digest[:8]}"},
    ),
    "aws:wafv2/webAcl:WebAcl": _arn(
        "arn:aws:wafv2:{at.region}:{at.account}:global/webacl/{i[name]}/{at.digest:.36}"
    ),
    "aws:acm/certificate:Certificate": _certificate,
    "aws:cloudfront/distribution:Distribution": _distribution,
    "aws:apigatewayv2/domainName:DomainName": _api_domain,
    "aws:route53/record:Record": _record,
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:sns/topic:Topic": _arn("arn:aws:sns:{at.region}:{at.account}:{i[name]}"),
    "aws:sqs/queue:Queue": lambda i, at: (
        f"https://sqs.{at.region}.amazonaws.com/{at.account}/{i['name']}",
        {
            "arn": f"arn:aws:sqs:{at.region}:{at.account}:{i['name']}",
            "url": f"https://sqs.{at.region}.amazonaws.com/{at.account}/{i['name']}",
        },
    ),
    "aws:wafv2/ipSet:IpSet": _arn(
        "arn:aws:wafv2:{at.region}:{at.account}:global/ipset/{i[name]}/{at.digest:.36}"
    ),
    "random:index/randomPassword:RandomPassword": lambda i, at: (
        at.rid,
        {"result": (at.digest * 2)[: int(i.get("length", 32))]},
    ),
}


class CloudMocks(Mocks):
    """Computed outputs as the real providers would return them."""

    def __init__(self, account_id: str, monitor_ref: dict):
        self.account = account_id
        self.monitor_ref = monitor_ref

    def new_resource(self, args):
        resource_id, state = self._new_resource(args)
        return resource_id, camel_keys(state)

    def _new_resource(self, args):
        inputs = snake_keys(args.inputs)
        region = self.monitor_ref["monitor"].region_for(args.provider) or "eu-west-1"
        digest = hashlib.sha256(f"{args.typ}:{args.name}".encode()).hexdigest()
        at = Where(self.account, region, digest, f"{args.name}-{digest[:8]}")
        compute = COMPUTED.get(args.typ)
        if compute is None:
            return at.rid, {"arn": f"arn:aws:mock:{region}:{self.account}:{at.rid}", **inputs}
        resource_id, computed = compute(inputs, at)
        return resource_id, {**inputs, **computed}

    def call(self, args):
        raise AssertionError(f"the program must not need invokes at plan time: {args.token}")


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: CloudMocks):
        super().__init__(mocks)
        self.records: list[Resource] = []
        self.provider_regions: dict[str, str] = {}

    def region_for(self, provider_ref: str | None) -> str | None:
        if not provider_ref:
            return None
        return self.provider_regions.get(provider_ref.rsplit("::", 1)[0])

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        registration = self.resources.get(response.urn)
        state = snake_keys(json_safe(dict(registration.state))) if registration else {}
        inputs = rpc_inputs(request)
        if request.type == "pulumi:providers:aws":
            self.provider_regions[response.urn] = inputs.get("region")
        self.records.append(
            Resource(
                urn=response.urn,
                id=response.id,
                type=request.type,
                name=request.name,
                inputs=inputs,
                outputs=state,
                parent=request.parent,
                provider_region=self.region_for(request.provider) if request.custom else None,
                dependencies=list(request.dependencies),
                custom=request.custom,
                provider=request.provider,
                protect=bool(request.protect),
                ignore_changes=tuple(snake_keys({k: None for k in request.ignoreChanges})),
                delete_before_replace=request.deleteBeforeReplace,
            )
        )
        return response


def rpc_inputs(request) -> dict:
    return snake_keys(json_safe(rpc.deserialize_properties(request.object)))


_CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")
_SNAKE = re.compile(r"[a-z][a-z0-9_]*")


def camel_keys(value):
    """Back to wire names, as a provider returns its state."""
    if isinstance(value, dict):
        return {
            (
                re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k)
                if _SNAKE.fullmatch(k)
                else k
            ): camel_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel_keys(item) for item in value]
    return value


def snake_keys(value):
    """Provider property names (camelCase on the wire) as the Python SDK spells them.

    Secret values arrive wrapped in Pulumi's secret envelope; they are unwrapped
    so policies can read them (the mocks never leave this process).
    """
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return snake_keys(value["value"])
    if isinstance(value, dict):
        return {
            (
                re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", k).lower() if _CAMEL.fullmatch(k) else k
            ): snake_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [snake_keys(item) for item in value]
    return value


def json_safe(value):
    """Plain JSON; an asset or archive stands for its file (as its content hash would)."""
    return json.loads(json.dumps(value, default=lambda v: getattr(v, "path", None) or str(v)))


def stack_config(stack: str) -> dict[str, str]:
    """The stack file's config, as the Pulumi CLI hands it to the program (strings, JSON)."""
    values = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key: v if isinstance(v, str) else json.dumps(v) for key, v in values.items()}


def deploy(stack: str, archive: Path, overrides: dict[str, object] | None = None) -> Deployment:
    """Run __main__.py for `stack` (plus config overrides) and record everything."""
    config = stack_config(stack)
    config["golinks:functionArchive"] = str(archive)
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value if isinstance(value, str) else json.dumps(value)
    account_id = json.loads(config["aws:allowedAccountIds"])[0]
    pulumi.runtime.set_all_config(config)
    runtime_settings.ROOT.set(None)  # a fresh root stack resource for each run
    monitor_ref: dict = {}
    mocks = CloudMocks(account_id, monitor_ref)
    monitor = RecordingMonitor(mocks)
    monitor_ref["monitor"] = monitor
    pulumi.runtime.set_mocks(mocks, project="golinks", stack=stack, preview=False, monitor=monitor)
    program: dict = {}
    exported: dict = {}
    exports: dict = {}

    @pulumi.runtime.test
    def run():
        with mock.patch.object(pulumi, "export", exported.__setitem__):
            program.update(runpy.run_path(str(MAIN), run_name="__main__"))
        return pulumi.Output.from_input(exported).apply(exports.update)

    run()
    return Deployment(stack, account_id, monitor.records, json_safe(exports), program)
