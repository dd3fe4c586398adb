"""Load oscrypto (pyas2lib's crypto backend) on OpenSSL 3.0.10 and later.

oscrypto 1.3.0, the last release, reads the OpenSSL version with a pattern that takes one
digit per part, so "3.0.19" fails to load ("Error detecting the version of libcrypto",
wbond/oscrypto#75, fixed upstream but unreleased). This loads its libcrypto binding with the
corrected pattern, once, before anything imports oscrypto; it changes nothing when the
installed oscrypto already reads the version."""

from __future__ import annotations

import importlib.util
import sys

_MODULE = "oscrypto._openssl._libcrypto_cffi"
_ONE_DIGIT = r"'\\b(\\d\\.\\d\\.\\d[a-z]*)\\b'"
_ANY_DIGITS = r"'\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b'"


def load_oscrypto() -> None:
    if _MODULE in sys.modules:
        return
    import oscrypto._openssl  # noqa: F401  (the parent package, which imports nothing of libcrypto)

    spec = importlib.util.find_spec(_MODULE)
    if spec is None or spec.loader is None:
        return  # a platform without the OpenSSL backend
    source = spec.loader.get_source(_MODULE)
    if source is None or _ONE_DIGIT not in source:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module
    try:
        exec(compile(source.replace(_ONE_DIGIT, _ANY_DIGITS), spec.origin, "exec"), module.__dict__)
    except BaseException:
        del sys.modules[_MODULE]
        raise


load_oscrypto()
