__version__ = "0.1.0"  # setup.py reads it from here

# Nothing else here: any process that imports vpnd (a Neutron agent that
# loads vpnd.neutron_driver) gets only this. What vpnd's own process does
# not load is vpnd.cli.unused_libraries, run first by the command.
