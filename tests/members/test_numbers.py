"""Loyalty numbers: well-formed, checkable, never mistaken for a payment card."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.kernel.pan import contains_pan, looks_like_pan
from members.models import Member
from members.numbers import loyalty_number_generate, loyalty_number_is_well_formed


def test_generated_numbers_are_well_formed_and_never_look_like_a_card():
    numbers = {loyalty_number_generate() for _ in range(2000)}
    assert len(numbers) == 2000
    for number in numbers:
        assert loyalty_number_is_well_formed(number)
        assert not looks_like_pan(number) and not contains_pan(f"member {number}")


@settings(derandomize=True, max_examples=300)
@given(position=st.integers(0, 15), replacement=st.integers(1, 9))
def test_a_single_mistyped_digit_is_caught(position, replacement):
    number = "9912345678901234"[:15]
    from members.numbers import check_digit

    number += check_digit(number)
    digits = list(number)
    digits[position] = str((int(digits[position]) + replacement) % 10)
    assert not loyalty_number_is_well_formed("".join(digits))


@pytest.mark.django_db
def test_members_get_a_number_and_print_only_it(store_a):
    member = Member.objects.create(home_store=store_a)
    assert loyalty_number_is_well_formed(member.loyalty_number)
    assert str(member) == member.loyalty_number
