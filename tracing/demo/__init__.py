"""Realistic, deterministic demo data: agent and RAG traces of a support bot, with evaluations.

``demo_generate`` builds the records (no database); ``demo_seed`` stores them.
"""

from tracing.demo.evaluations import DemoAnnotation
from tracing.demo.generate import DEMO_SEED, DemoTrace, demo_generate
from tracing.demo.seed import DemoSeedResult, demo_seed

__all__ = [
    "DEMO_SEED",
    "DemoAnnotation",
    "DemoSeedResult",
    "DemoTrace",
    "demo_generate",
    "demo_seed",
]
