"""Request bodies of every endpoint: the validated fields, and the stage arguments they become.

Each body is a pydantic model; ``StageBody.to_args()`` turns the fields into the stage's
command-line flags next to where the fields are declared, so a route handler only parses,
checks preconditions, submits and answers. A value is validated once, here; what a caller
leaves out is left to the stage's own default.
"""
