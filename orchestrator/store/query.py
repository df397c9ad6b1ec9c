"""Selections over the stored objects, shared by every read edge (the gRPC API and the Kubernetes API).

A `Filter` is the namespace, label selector and field selector of a list or a watch, parsed once;
calling it on an object says whether the object is selected. Pure.
"""

from __future__ import annotations

from typing import Any

from orchestrator import errors, model

Obj = dict[str, Any]


class Filter:
    """A list/watch filter: namespace, label selector, field selector."""

    def __init__(self, kind: str, namespace: str, label_selector: str, field_selector: str) -> None:
        self.kind = kind
        self.namespace = namespace if model.KINDS[kind].namespaced else ""
        try:
            self.labels = model.parse_selector(label_selector) if label_selector else ()
            self.fields = model.parse_field_selector(field_selector) if field_selector else ()
        except model.ValidationError as e:
            raise errors.Invalid(str(e)) from None

    def __call__(self, obj: Obj) -> bool:
        if self.namespace and obj["metadata"].get("namespace") != self.namespace:
            return False
        if self.labels and not model.requirements_match(self.labels, model.labels_of(obj)):
            return False
        return not self.fields or model.fields_match(self.fields, obj)
