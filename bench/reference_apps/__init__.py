"""The redirect lookup written with common frameworks: references for the cold-start benchmark."""
