"""The link service topology, one stack per environment (dev, staging, prod)."""

import pulumi

from functions.links.index import build_index
from functions.links.source import load_links

# Refuse a preview or an update while links/ is invalid: the program would
# otherwise deploy functions for a link set that CI cannot publish.
link_index = build_index(load_links(["links"]))
pulumi.export("link_index_version", link_index.version)
