"""Every route table of the service, one module per area."""

from server.routes import jobs, system

ROUTE_TABLES = [system.routes, jobs.routes]
