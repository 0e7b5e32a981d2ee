"""Hardware abstraction: bus interfaces, sites, programmers and their backends.

Backends load when a programmer URL names their scheme (programmer.BACKENDS).
"""
