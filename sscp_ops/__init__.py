"""sscp-ops: operations kit for the Smart Supervision Command Platform."""

__version__ = "0.1.0"
