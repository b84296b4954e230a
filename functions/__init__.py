"""The Lambda functions of the link service and the link model they share."""
