"""Scripted user journeys (issue 21): run as probes by the exporter and as a release gate by
``sscp-ops journeys run``. :mod:`.checks` is pure, :mod:`.runner` does the HTTP, :mod:`.gate`
prints the table, writes JUnit XML and the change record."""
