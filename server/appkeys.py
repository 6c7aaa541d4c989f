"""Typed application state (aiohttp's AppKey): what handlers may reach."""

from __future__ import annotations

from aiohttp import web

from server.config import Config
from server.jobs.hub import EventHub
from server.jobs.runner import JobRunner
from server.jobs.store import JobStore

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", JobStore)
RUNNER = web.AppKey("runner", JobRunner)
HUB = web.AppKey("hub", EventHub)
HOST_INFO = web.AppKey("host_info", dict)
