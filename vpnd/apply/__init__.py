"""Doing it, and remembering it: the one path that carries out a plan's
steps through a driver (applier), the routes that go with a tunnel
(routes), and the applied record with its write-ahead journal (record),
its format on disk (record_format) and the HMAC fingerprints it keeps
(fingerprint).

May import: vpnd.base, vpnd.system, vpnd.state, vpnd.plan. Not the drivers
(it is given one) and not the loop.
"""
