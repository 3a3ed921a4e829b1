"""What is live, and how it is told: each connection's status and its
reason (observed, reasons, status, status_book, and dirty: what moved
since status was last built), status.json (publish), the health file
probes read (health), and Prometheus metrics (metric_families, metrics,
the server that answers scrapes: metrics_server, and what a scrape asks:
scrape_requests).

May import: vpnd.base, vpnd.system, vpnd.state, vpnd.plan.
"""
