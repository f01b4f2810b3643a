"""Signals later apps listen to, so that results never imports them (README: import direction)."""

from django.dispatch import Signal

# Sent inside the verifying transaction with `results` (the Result rows just verified), `user` and `now`.
# A receiver's writes commit or roll back with the verification.
results_verified = Signal()
