"""Patch-making: intensity normalisation, window sampling, and the cached, balanced PatchSet.

``intensity`` and ``sampling`` are pure numpy; ``dataset`` reads the project store and caches
decoded patches. None of them imports torch (inference and the GUI use them too).
"""
