"""Errors shared by the exporters and the analysis code in sscp_ops (one definition)."""


class ParseError(ValueError):
    """A data source answered with something its parser cannot read."""
