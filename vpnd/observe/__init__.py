"""What is live, and how it is told: each connection's status and its
reason (observed, reasons, status, status_book), status.json (publish),
the health file probes read (health), and Prometheus metrics
(metric_families, metrics).

May import: vpnd.base, vpnd.system, vpnd.state, vpnd.plan.
"""
