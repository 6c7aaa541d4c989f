"""The application factory: configuration in, a ready aiohttp app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from server import dataset_registry, hostinfo
from server.appkeys import CONFIG, HUB, RUNNER, STORE
from server.config import Config
from server.http.middleware import build_middlewares, cors_headers, expect_handler
from server.inference import inference_system
from server.jobs.hub import EventHub
from server.jobs.runner import JobRunner
from server.jobs.store import JobStore
from server.routes import ROUTE_TABLES


def create_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=build_middlewares(config), client_max_size=config.max_body_bytes
    )
    app[CONFIG] = config
    app[HUB] = EventHub()
    hostinfo.install(app)
    add_routes(app, expect_handler(config.max_body_bytes))
    if config.cors_origins:
        app.on_response_prepare.append(cors_headers(config.cors_origins))
    app.cleanup_ctx.append(_job_system)
    app.cleanup_ctx.append(inference_system)  # the model worker, started on first use
    return app


def add_routes(app: web.Application, on_expect: Any) -> None:
    """Every route of the service, each answering ``Expect`` with ``on_expect``."""
    for table in ROUTE_TABLES:
        for route in table:
            assert isinstance(route, web.RouteDef)
            app.router.add_route(
                route.method, route.path, route.handler, expect_handler=on_expect, **route.kwargs
            )


async def _job_system(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    folders = (config.var_dir, config.data_root, config.checkpoints_root, config.logs_dir)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    dataset_registry.sweep_deleted(config)
    store = await JobStore.open(config.db_path)
    runner = JobRunner(store, config, app[HUB])
    app[STORE], app[RUNNER] = store, runner
    await runner.start()
    yield
    await runner.stop()
    await store.close()
