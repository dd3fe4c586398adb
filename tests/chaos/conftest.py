"""The chaos harness runs the five services (and the portal) as real processes: the e2e stack."""

from tests.e2e.conftest import stack  # noqa: F401
