"""The link model shared by the functions, the link CLI and the Pulumi program.

Import the submodule you need: `model` is on the redirect hot path and must stay
light, so this package imports nothing itself.
"""
