"""ODRL policies, Catena-X constraints, access levels and trust lists (to come).

A library: it may import ``credentials`` and ``vocab``, never ``connector``.
"""
