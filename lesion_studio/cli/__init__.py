"""The `lesion-studio` command line: one module per group of subcommands, over the core."""
