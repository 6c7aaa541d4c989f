"""Every route table of the service, one module per area."""

from server.routes import (
    convert,
    dashboard,
    datasets,
    evaluation,
    exports,
    gallery,
    inference,
    jobs,
    render,
    system,
    training,
)

ROUTE_TABLES = [
    system.routes,
    jobs.routes,
    datasets.routes,
    render.routes,
    convert.routes,
    training.routes,
    evaluation.routes,
    exports.routes,
    inference.routes,
    gallery.routes,
    dashboard.routes,
]
