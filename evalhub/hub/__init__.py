"""The evaluator hub: LLM judges and code evaluators run on spans.

- ``evaluator_run`` / ``EvaluationResult`` (``runner``): evaluate a span or pasted values with an
  evaluator version; pure of database writes.
- ``config_parse`` (``config``): validate an evaluator definition.
- ``TEMPLATES`` / ``template_get`` (``templates_library``): the judge template library.
- ``chat_complete`` (``llm``) with provider limits (``limiter``), prompt rendering and answer
  parsing (``judge``), variable mapping (``variables``), built-in checks (``code_evaluators``),
  the custom-code sandbox (``sandbox``) and API-key encryption (``crypto``).
"""

from evalhub.evaluators.definition import EvaluatorConfigError, config_parse
from evalhub.evaluators.library import TEMPLATES, template_get
from evalhub.evaluators.running import EvaluationResult, evaluator_run

__all__ = [
    "TEMPLATES",
    "EvaluationResult",
    "EvaluatorConfigError",
    "config_parse",
    "evaluator_run",
    "template_get",
]
