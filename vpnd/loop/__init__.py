"""When to look: the work queue (workqueue, pure, clock injected), the
workers that run one look per namespace at a time (workers), the
reconciler that holds what a look needs and reads the state files
(reconciler), the three kinds of look at a namespace (looks), what a
full look keeps from the last one (look_memo), and their named reads
(live_reads: charon; namespace_reads: addresses and routes),
when a look subscribes to charon's events (subscribing), the checks on a
charon (charon_checks) and its restart when it stops answering
(charon_restarts), and the daemon: the loop (daemon) over the watches
(watches), the signals (signals) and the end of each round (round_end).

May import: every subpackage below it (base, system, state, plan,
observe, apply, drivers). Only the CLI imports it.
"""
