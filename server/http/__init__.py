"""HTTP plumbing every route shares: problems, request parsing, lookups, middleware,
OpenAPI and how a job looks over HTTP."""
