"""Canvas tools: the lesion-box tool, the normal-patch tool, pan, and window/level maths."""
