"""Network definitions only (UNIT, DRN). Import the submodules; this package imports no torch."""
