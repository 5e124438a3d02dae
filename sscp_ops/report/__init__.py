"""The monthly / quarterly / annual operations report (月度运维执行报告) and SLA accounting.

- :mod:`.records`: plain frozen records read from the sources (tickets, backups, events, series).
- :mod:`.sources`: the source protocols and their one implementation each (HTTP, SQLite, CLI,
  Prometheus).
- :mod:`.period`: report periods (month, quarter, year) in local time.
- :mod:`.penalty`: deduction arithmetic (pure, table-tested).
- :mod:`.availability`: availability from probe series (pure).
- :mod:`.indicators`: the contract indicators over records (pure).
- :mod:`.build`: gathers sources into one report dict; :mod:`.render`: HTML, PDF, JSON.
"""
