"""The operating system's edges, with no VPN knowledge: inotify, network
namespaces and their addresses, sd_notify, the journal and logging,
atomic files and who may write them (trust, own_dirs), processes and how
to tell vpnd's own (processes, identity), and the fault points tests arm.

May import: vpnd.base, the standard library, pyroute2, structlog, sdnotify.
"""
