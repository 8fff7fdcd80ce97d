"""WSGI entry point for gunicorn: ``gunicorn server.wsgi:app``."""

from server import create_app
from server.settings import require_data_key

require_data_key()
app = create_app()
