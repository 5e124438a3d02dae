"""Log analysis shared by the exporter's ``logs`` collector and ``sscp-ops logs``: pure parsers
and analysers (access logs and attacks, logins, slow query logs); no I/O but what is passed in."""
