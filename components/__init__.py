"""The topology's ComponentResources, their typed configuration and pure planning."""
