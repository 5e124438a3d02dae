"""Observe: one module per data source, one collector class per module.

Modules never import :mod:`webhook`; shared helpers come from :mod:`sscp_ops`.
"""
