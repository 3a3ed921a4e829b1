"""strongSwan: the mapping from vpnd's model to swanctl's vocabulary (pure),
charon's plugins and algorithms, the VICI client and its event stream, and
charon's processes (spawned per namespace, or systemd units).

May import: vpnd.base, vpnd.system, vpnd.plan (the value types a driver is
given). The mapping and plugin tables import no I/O (a contract holds it).
"""
