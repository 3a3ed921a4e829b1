"""strongSwan: the mapping from vpnd's model to swanctl's vocabulary (pure),
charon's plugins and algorithms, the VICI client and its event stream, and
charon's processes (spawned per namespace, or systemd units).

- The driver (strongswan.py, the interface in base.py) is a facade over a
  reader, a writer, events and the charon lifecycle (strongswan_*,
  charon_lifecycle), built by compose.py from `charon.mode`.
- VICI: vici_client (one method per command) over vici_session (the
  deadline and the one error mapping), vici_socket, vici_requests,
  vici_query, vici_pipeline and vici_answers; vici_events listens.
- charons: charon_instances (what both modes share), charon_process
  (spawn mode), charon_units (systemd mode), charon_conf (strongswan.conf).

May import: vpnd.base, vpnd.system, vpnd.plan (the value types a driver is
given). The mapping, plugin and conf tables and the answer conversion
import no I/O (a contract holds it).
"""
