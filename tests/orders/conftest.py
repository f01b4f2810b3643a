"""Fixtures shared by the orders tests."""

from __future__ import annotations

import pytest

from orders.models import Preparation
from tests.orders.cell_helpers import car_t_ordered


@pytest.fixture
def car_t(patient_a, oncologist_a, nurse_a, technicians) -> Preparation:
    """Patient A's CAR-T bag: ordered, pre-dose labs cleared, not yet received (tests/orders/cell_helpers.py)."""
    return car_t_ordered(patient_a, oncologist_a, nurse_a, technicians)
