"""The value types every stage shares, and nothing that acts.

The model of a VPN service (model), what charon holds (live), a
connection as desired, as applied and as a change begun (conns), the errors
that name a file and a JSON path (errors), the bounds on what a tenant may
write (bounds), printable text (printable) and the daemon's configuration
(config, read once from vpnd.yaml).

May import: the standard library and PyYAML (config). Nothing else of
vpnd's: every other subpackage stands on this one.
"""
