"""Document identifiers (passports, tax numbers, social security numbers) in one comparable form.

A scheme names a document type as `COUNTRY.NAME`, a module of python-stdnum (`ru.inn`, `us.ssn`,
`de.idnr`, `es.dni`, `au.tfn`, ...), which checks the number's format and check digits and gives its
compact form; two Russian documents python-stdnum lacks are checked here: `ru.snils` (its check
number) and `ru.passport` (ten digits: a four-digit series and a six-digit number). Without a scheme a
document is only compacted: separators dropped, letters upper-cased, nothing checked. A normalised
value is `SCHEME:COMPACT` (or `COMPACT` without a scheme), so that an INN never equals an SSN.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from types import ModuleType

from cx360.errors import ConfigError

_SEPARATORS = re.compile(r"[\s\-./]")
_SCHEME = re.compile(r"^([a-z]{2})\.([a-z_]+)$")


def _snils_valid(digits: str) -> bool:
    if not (len(digits) == 11 and digits.isdigit()):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(9, 0, -1), strict=True))
    check = total % 101 % 100  # below 100 it is the sum; 100 and 101 give 00
    return check == int(digits[9:])


OWN: dict[str, Callable[[str], bool]] = {
    "ru.snils": _snils_valid,
    "ru.passport": lambda digits: len(digits) == 10 and digits.isdigit(),
}


def compact(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


@lru_cache(maxsize=64)
def _module(scheme: str) -> ModuleType | None:
    from stdnum import get_cc_module

    country, name = _SCHEME.match(scheme).groups()
    module = get_cc_module(country, name)
    return module if module is not None and hasattr(module, "is_valid") else None


def known(scheme: str) -> bool:
    return scheme in OWN or (_SCHEME.match(scheme) is not None and _module(scheme) is not None)


def check_scheme(scheme: str) -> str:
    """The scheme, or a ConfigError saying what a scheme looks like."""
    if not known(scheme):
        raise ConfigError(
            f"document scheme {scheme!r} is not known: expected COUNTRY.NAME of a python-stdnum module "
            f"(ru.inn, us.ssn, de.idnr, ...) or one of {', '.join(OWN)}"
        )
    return scheme


def normalise(scheme: str | None, value: str | None) -> tuple[str | None, str | None]:
    """(normalised value, None), or (None, why it is not a valid document of this scheme)."""
    if value is None or not value.strip():
        return None, None
    if scheme is None:
        return compact(value), None
    if scheme in OWN:
        digits = compact(value)
        return (f"{scheme}:{digits}", None) if OWN[scheme](digits) else (None, f"not a valid {scheme} number")
    from stdnum.exceptions import ValidationError

    module = _module(scheme)
    try:
        number = module.validate(_SEPARATORS.sub("", value))  # some modules keep hyphens or dots
    except ValidationError as exc:
        return None, f"not a valid {scheme} number: {exc}"
    return f"{scheme}:{module.compact(number)}", None
