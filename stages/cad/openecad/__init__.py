"""OpenECAD v2 code: the answer text our VLMs learn.

``write_code`` prints a model exactly as OpenECAD's converter does; ``parse_code`` reads any
OpenECAD v2 program (ours, OpenECAD's, or a model's generation) back into a model without
executing it; ``wrap_answer``/``unwrap_answer`` put code into and take it out of a record's
answer. Scoring generated code against a reference lives in ``stages.cad.openecad.score``.
"""

from stages.cad.openecad.answer import unwrap_answer, wrap_answer
from stages.cad.openecad.errors import CodeError
from stages.cad.openecad.interpreter import parse_code
from stages.cad.openecad.writer import write_code

__all__ = ["CodeError", "parse_code", "unwrap_answer", "wrap_answer", "write_code"]
