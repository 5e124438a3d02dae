"""Backups and disaster recovery: make, copy, verify and drill backup sets.

Modules: :mod:`dump` (mariadb-dump, compression, row counts), :mod:`archive` (config tarball),
:mod:`manifest` (what a backup holds), :mod:`copy` (write-then-rename copies to locations),
:mod:`catalogue` (SQLite record of runs, copies and drills), :mod:`retention` (which runs a
location keeps), :mod:`run`, :mod:`verify` and :mod:`drill` (the three jobs).

On disk, every location holds ``<root>/<set>/<run_id>/`` with the compressed dumps, the config
tarball and ``manifest.json``. A copy is written into ``<root>/<set>/.<run_id>.partial/`` and
renamed when complete, so a directory named like a run is never half written.
"""
