"""The one place the release number is written: the package metadata (pyproject's dynamic
version), the client's User-Agent, ``chatmodel --version`` and the server's OpenAPI document
all read it from here."""

__version__ = "0.1.0"
