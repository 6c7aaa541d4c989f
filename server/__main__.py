"""`python -m server`: run the service."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from server.app import create_app
from server.config import parse_args


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if config.host not in ("127.0.0.1", "localhost", "::1") and not config.api_token:
        logging.warning("listening on %s without an API token", config.host)
    web.run_app(create_app(config), host=config.host, port=config.port, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
