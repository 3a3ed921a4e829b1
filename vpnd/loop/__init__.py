"""When to look: the work queue (pure, clock injected), the workers that
run one look per namespace at a time, the reconciler that reads, plans and
applies a namespace, the checks on charon's plugins and restarts, and the
daemon that ties the watches, the loop and the signals together.

May import: every subpackage below it (base, system, state, plan,
observe, apply, drivers). Only the CLI imports it.
"""
