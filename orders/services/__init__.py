"""Writes on treatment courses, doses and preparations (docs/architecture.md §4), one module per subject.

Import from the module (orders.services.courses, .doses, .preparations, .identity, .products); nothing is
re-exported here.
"""
