"""The exit codes every subcommand shares."""
EXIT_OK, EXIT_ERROR, EXIT_PENDING = 0, 1, 2
