"""Test and demo lab: network namespaces, vpnd processes. Not installed."""
