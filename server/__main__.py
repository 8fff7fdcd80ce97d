"""Development server: ``python -m server [--host H] [--port P]`` (use gunicorn in production)."""

from __future__ import annotations

import argparse

from server import create_app
from server.settings import require_data_key


def main() -> None:
    """Run the Werkzeug development server."""
    parser = argparse.ArgumentParser(prog="python -m server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    require_data_key()
    create_app().run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
