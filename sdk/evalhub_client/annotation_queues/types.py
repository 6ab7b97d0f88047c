"""``AnnotationInput`` at the Arize SDK's import path; the class of ``evalhub_client.types``."""

from evalhub_client.types import AnnotateRecordInput, AnnotationInput

__all__ = ["AnnotateRecordInput", "AnnotationInput"]
