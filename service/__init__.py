"""chatmodel service: the FastAPI server behind the ``chatmodel`` client."""

__version__ = "0.1.0"
