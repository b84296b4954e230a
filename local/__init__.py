"""The local stack: the service's real parts running on this machine, no AWS account."""
