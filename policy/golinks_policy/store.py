"""The link store's rules: one store per stack, and with `dynamodb` a global table that
keeps the links through anything (on demand, point-in-time recovery, encryption, a
replica in every region, no TTL: docs/dynamodb-store.md "Expiry"), reached from every
VPC through a gateway endpoint that admits only it, written only by the primary
region's sync and read by each region's functions in their own replica only.

Who may do what is judged with the IAM evaluator on the roles' real documents, so a
wildcard (`dynamodb:*`, `dynamodb:Put*`) is read as AWS would read it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .iam import Request, allowed
from .model import Resource, Stack, as_list, statements, violation
from .types import FUNCTION, ROLE, ROLE_POLICY, edge_functions, environment_of, purpose_of

TABLE = "aws:dynamodb/table:Table"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"  # noqa: S105 - a type token
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"  # noqa: S105 - a type token
#: What changes items (the IAM actions behind every write API, PartiQL's included).
WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)
#: What reads items.
READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "dynamodb:GetRecords",
)
#: What a redirect or health check reads (docs/dynamodb-store.md, read path): one GetItem,
#: and for a templated link one BatchGetItem of the path's shorter slugs.
READER_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem")
READERS = ("redirect", "health")


def link_table_name(stack: str) -> str:
    return f"golinks-{stack}-links"


def table_arn(d: Stack, region: str) -> str:
    return f"arn:aws:dynamodb:{region}:{d.account_id}:table/{link_table_name(d.stack)}"


def regional_functions(d: Stack) -> list[Resource]:
    """The functions of the stack's regions (Lambda@Edge is the router's, not a region's)."""
    at_edge = {f.urn for f in edge_functions(d)}
    return [f for f in d.of_type(FUNCTION) if f.urn not in at_edge]


def stack_regions(d: Stack) -> list[str]:
    """The regions that serve: where the regional functions run."""
    return sorted({f.region for f in regional_functions(d)} | {d.facts.primary_region})


def link_tables(d: Stack) -> list[Resource]:
    return [t for t in d.of_type(TABLE) if t["name"] == link_table_name(d.stack)]


def table_regions(table: Resource) -> list[str]:
    """The table's own region, then its replicas'."""
    return [table.region, *(r.get("region_name") for r in table["replicas"] or [])]


def role_documents_by_function(d: Stack) -> dict[str, list[dict]]:
    """Each regional function's URN -> the inline policies of its role."""
    names = {r["arn"]: r["name"] for r in d.of_type(ROLE)}
    documents: dict[str, list[dict]] = {}
    for policy in d.of_type(ROLE_POLICY):
        documents.setdefault(policy["role"], []).append(policy.policy_document())
    return {f.urn: documents.get(names.get(f["role"]), []) for f in regional_functions(d)}


def only_with_store(store: str, validator: Callable[[Stack], list[str]]):
    """`validator` for stacks keeping their links in `store`; other stacks have none of it."""

    @functools.wraps(validator)
    def validate(d: Stack) -> list[str]:
        return validator(d) if d.facts.link_store == store else []

    return validate


def one_link_store(d: Stack) -> list[str]:
    """A dynamodb stack has nothing of ElastiCache (no Global Datastore, replication group
    or Redis token) and an elasticache stack no link table; every function is told the
    store its stack keeps."""
    store = d.facts.link_store
    violations = []
    if store == "dynamodb":
        violations += [
            violation(r, "does not belong in a dynamodb stack")
            for r in d.resources
            if r.type.startswith("aws:elasticache/")
            or (r.type == RANDOM_PASSWORD and "redis" in r.name.lower())
        ]
        violations += [
            violation(s, "the service secret of a dynamodb stack holds no Redis token")
            for s in d.of_type(SECRET_VERSION)
            if "redis" in str(s["secret_string"] or "").lower()
        ]
        tables = link_tables(d)
        if len(tables) != 1:
            violations.append(f"{d.stack}: {len(tables)} link tables, want 1")
    else:
        violations += [
            violation(r, f"does not belong in a {store} stack")
            for r in d.of_type(TABLE)
            + [e for e in d.of_type(VPC_ENDPOINT) if str(e["service_name"]).endswith(".dynamodb")]
        ]
    for function in regional_functions(d):
        env = environment_of(function)
        told = env.get("LINK_STORE", "elasticache")
        if told != store:
            violations.append(violation(function, f"LINK_STORE {told} in a {store} stack"))
        if store == "dynamodb":
            if env.get("LINK_TABLE") != link_table_name(d.stack):
                violations.append(
                    violation(function, f"LINK_TABLE must be {link_table_name(d.stack)}")
                )
            if "REDIS_URL" in env:
                violations.append(violation(function, "has a REDIS_URL in a dynamodb stack"))
        elif "LINK_TABLE" in env:
            violations.append(violation(function, f"has a LINK_TABLE in a {store} stack"))
    return violations


def link_table_is_durable_and_everywhere(d: Stack) -> list[str]:
    """The link table is on demand, recoverable to any second (PITR, on every replica),
    encrypted, streams new and old images (replicas replicate from the stream) and has a
    replica in every region of the stack."""
    violations = []
    regions = stack_regions(d)
    for table in link_tables(d):
        if table["billing_mode"] != "PAY_PER_REQUEST":
            violations.append(violation(table, f"billing mode {table['billing_mode']}: on demand"))
        if not (table["point_in_time_recovery"] or {}).get("enabled"):
            violations.append(violation(table, "has no point-in-time recovery"))
        if not (table["server_side_encryption"] or {}).get("enabled"):
            violations.append(violation(table, "is not encrypted at rest"))
        if not table["stream_enabled"] or table["stream_view_type"] != "NEW_AND_OLD_IMAGES":
            violations.append(
                violation(table, "global tables replicate from a NEW_AND_OLD_IMAGES stream")
            )
        for replica in table["replicas"] or []:
            if not replica.get("point_in_time_recovery"):
                violations.append(
                    violation(table, f"replica {replica.get('region_name')} has no PITR")
                )
        placed = table_regions(table)
        missing = sorted(set(regions) - set(placed))
        if missing:
            violations.append(violation(table, f"has no replica in {missing}"))
        extra = sorted({r for r in placed if placed.count(r) > 1 or r not in regions})
        if extra:
            violations.append(violation(table, f"replicas outside the stack or twice: {extra}"))
    return violations


def link_table_has_no_ttl(d: Stack) -> list[str]:
    """No DynamoDB TTL on the link table: its lazy deletes replicate like writes and, by
    last writer wins, can delete a republished link everywhere (the readers expire links)."""
    return [
        violation(table, "has TTL enabled: expiry is the readers' (docs/dynamodb-store.md)")
        for table in d.of_type(TABLE)
        if (table["ttl"] or {}).get("enabled")
    ]


def _endpoint_problems(d: Stack, endpoint: Resource, route_tables: set) -> list[str]:
    problems = []
    document = endpoint.policy_document() if endpoint["policy"] else None
    if not document:
        return ["has no policy: it admits every table of every account"]
    own = table_arn(d, endpoint.region)
    for statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        resources = as_list(statement.get("Resource", []))
        if "NotResource" in statement or any(r != own for r in resources):
            problems.append(f"admits {resources or statement.get('NotResource')}, not only {own}")
    missing = route_tables - set(endpoint["route_table_ids"] or [])
    if missing:
        problems.append(f"is not on the functions' route tables {sorted(missing)}")
    return problems


def every_vpc_region_reaches_the_table_through_its_endpoint(d: Stack) -> list[str]:
    """Every region whose functions run in a VPC has a DynamoDB gateway endpoint on their
    route tables (no NAT here), whose policy admits this table's replica there and nothing
    else."""
    associations = {a["subnet_id"]: a["route_table_id"] for a in d.of_type(ROUTE_TABLE_ASSOCIATION)}
    in_vpc: dict[str, set] = {}
    for function in regional_functions(d):
        subnets = (function["vpc_config"] or {}).get("subnet_ids") or []
        if subnets:
            tables = {associations[s] for s in subnets if s in associations}
            in_vpc.setdefault(function.region, set()).update(tables)
    endpoints = {
        e.region: e
        for e in d.of_type(VPC_ENDPOINT)
        if e["vpc_endpoint_type"] == "Gateway" and str(e["service_name"]).endswith(".dynamodb")
    }
    violations = []
    for region, route_tables in sorted(in_vpc.items()):
        endpoint = endpoints.get(region)
        if endpoint is None:
            violations.append(f"{d.stack}: no DynamoDB gateway endpoint in {region}")
            continue
        violations += [
            violation(endpoint, problem)
            for problem in _endpoint_problems(d, endpoint, route_tables)
        ]
    return violations


def _grants(documents: list[dict], actions, arn: str) -> list[str]:
    return [a for a in actions if allowed(Request(a, arn), documents)]


def only_the_primary_region_writes_the_table(d: Stack) -> list[str]:
    """Replicas accept writes, so IAM decides: only the primary region's sync may write,
    and only to the primary's replica; no other role of the stack writes the table. The
    sync names every region, the primary first (it writes there and flips them all)."""
    primary = d.facts.primary_region
    regions = stack_regions(d)
    functions = {f.urn: f for f in regional_functions(d)}
    by_function = role_documents_by_function(d)
    violations = []
    syncs = [f for f in functions.values() if purpose_of(f) == "sync"]
    if [f.region for f in syncs] != [primary]:
        violations.append(
            f"{d.stack}: sync runs in {sorted(f.region for f in syncs)}, want only {primary}"
        )
    for sync in syncs:
        # It writes to the first region listed and flips every region listed: a region
        # left out would never serve a new version.
        listed = str(environment_of(sync).get("LINK_TABLE_REGIONS", "")).split(",")
        if listed[:1] != [primary] or sorted(listed) != regions:
            violations.append(
                violation(sync, f"LINK_TABLE_REGIONS {listed}: every region, {primary} first")
            )
    for urn, documents in by_function.items():
        function = functions[urn]
        is_writer = purpose_of(function) == "sync" and function.region == primary
        if is_writer and len(_grants(documents, WRITE_ACTIONS[:4], table_arn(d, primary))) < 4:
            violations.append(violation(function, f"cannot write the table in {primary}"))
        for region in regions:
            writes = _grants(documents, WRITE_ACTIONS, table_arn(d, region))
            if writes and not (is_writer and region == primary):
                violations.append(violation(function, f"may write the table in {region}: {writes}"))
    # Any other role of the stack (publisher, replication, CI): no writes either.
    names = {r["name"]: r for r in d.of_type(ROLE)}
    for policy in d.of_type(ROLE_POLICY):
        role = names.get(policy["role"])
        if role is None or any(role["arn"] == f["role"] for f in functions.values()):
            continue  # a function's role: judged above
        for region in regions:
            writes = _grants([policy.policy_document()], WRITE_ACTIONS, table_arn(d, region))
            if writes:
                violations.append(violation(policy, f"may write the link table in {region}"))
    return violations


def readers_read_only_their_own_replica(d: Stack) -> list[str]:
    """The redirect and health functions may GetItem (and BatchGetItem) in their own
    region's replica, and nothing else of the table: no other read, no other region."""
    functions = {f.urn: f for f in regional_functions(d)}
    violations = []
    for urn, documents in role_documents_by_function(d).items():
        function = functions[urn]
        if purpose_of(function) not in READERS:
            continue
        own = table_arn(d, function.region)
        if "dynamodb:GetItem" not in _grants(documents, READER_ACTIONS, own):
            violations.append(violation(function, f"cannot read its own replica {own}"))
        for region in stack_regions(d):
            arn = table_arn(d, region)
            extra = [
                a
                for a in _grants(documents, READ_ACTIONS + WRITE_ACTIONS, arn)
                if not (a in READER_ACTIONS and arn == own)
            ]
            if extra:
                violations.append(violation(function, f"may {extra} in {region}'s replica"))
    return violations
