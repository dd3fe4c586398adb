"""Addresses in events are checked and normalised as pydantic's EmailStr does them, once per address."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, EmailStr, ValidationError

from parcours_contracts import Recipient


class _Reference(BaseModel):
    email: EmailStr


@pytest.mark.parametrize("address", ["ap@client.example", "Compta <compta@Client.Example>", " ap@CLIENT.example ",
                                     "José.Ñúñez@exämple.fr"])
def test_an_address_is_normalised_as_email_str_does(address):
    expected = _Reference(email=address).email
    assert Recipient(email=address).email == expected
    assert Recipient(email=address).email == expected  # the second time from the cache, the same


@pytest.mark.parametrize("address", ["not an address", "a@b", "ap@client.example\r\nBcc: x@y.example", "@client.example"])
def test_a_bad_address_is_refused_every_time(address):
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(ValidationError, match="email"):
            Recipient(email=address)
