"""Every route table of the service, one module per area."""

from server.routes import convert, datasets, jobs, render, system, training

ROUTE_TABLES = [
    system.routes,
    jobs.routes,
    datasets.routes,
    render.routes,
    convert.routes,
    training.routes,
]
