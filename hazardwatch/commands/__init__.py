"""One module per `hazardwatch` sub-command; each exposes `add_arguments(parser)` and `run(args)`."""
