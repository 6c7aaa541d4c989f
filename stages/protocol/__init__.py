"""The stage protocol: the one seam between the server and the stages.

A stage writes one JSON object per line to stdout (``start``, ``progress``, ``warning``,
``metric``, ``result``, ``done``) and human-readable logs to stderr; at a terminal the same
stage shows a progress bar instead. ``events`` is the vocabulary both sides share,
``reporter`` and ``cli`` the writing side, ``answer`` the reading side of short calls.
Nothing here knows of HTTP, geometry or training.
"""

from stages.protocol.cli import (
    CancelFlag,
    JsonErrorParser,
    OneLineParser,
    StageCancelled,
    add_progress_argument,
    exit_usage_json,
    positive_float,
    positive_int,
    run_stage,
)
from stages.protocol.events import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    DoneStatus,
    Event,
    EventName,
    encode_event,
    parse_line,
)
from stages.protocol.failure import (
    ALL_FAILED,
    WRITE_FAILED,
    StageFailed,
    count_text,
    require_some_succeeded,
    writing,
)
from stages.protocol.reporter import PROGRESS_MODES, Reporter, UsageError

__all__ = [
    "ALL_FAILED",
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROGRESS_MODES",
    "WRITE_FAILED",
    "CancelFlag",
    "DoneStatus",
    "Event",
    "EventName",
    "JsonErrorParser",
    "OneLineParser",
    "Reporter",
    "StageCancelled",
    "StageFailed",
    "UsageError",
    "add_progress_argument",
    "count_text",
    "encode_event",
    "exit_usage_json",
    "parse_line",
    "positive_float",
    "positive_int",
    "require_some_succeeded",
    "run_stage",
    "writing",
]
