"""chatmodel service: the FastAPI server behind the ``chatmodel`` client."""

# One distribution ships both packages; the release number is written once, in the client.
from chatmodel._version import __version__

__all__ = ["__version__"]
