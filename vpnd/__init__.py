__version__ = "0.1.0"  # setup.py reads it from here
