"""One module per `hazardwatch` sub-command, each with `add_arguments(parser)` and `run(args)`."""
