"""Form fields shared by the apps' admin forms."""

from __future__ import annotations

from typing import Any

from django import forms


class WordListField(forms.CharField):
    """A list of short codes (a JSONField holding ``["neuro", "msk"]``) edited and shown as "neuro, msk",
    not as raw JSON."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            return [str(v).strip() for v in value if str(v).strip()]
        text = super().to_python(value) or ""
        return [w.strip() for w in text.replace(";", ",").split(",") if w.strip()]

    def has_changed(self, initial: Any, data: Any) -> bool:
        return list(initial or []) != self.to_python(data)
