"""A small reader of gettext .po files (no polib here): entries with their context, plural forms and flags."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+"(.*)"\s*$')


def _unquote(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


@dataclass
class PoEntry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr.values())

    @property
    def label(self) -> str:
        where = f" ({self.references[0]})" if self.references else ""
        return (f"[{self.msgctxt}] " if self.msgctxt else "") + repr(self.msgid[:80]) + where


def po_entries(text: str) -> list[PoEntry]:
    """The live entries of a .po file, header included (msgid ""); obsolete (#~) entries are skipped."""
    entries: list[PoEntry] = []
    current, target = PoEntry(), ""  # target: the keyword the next continuation line extends
    index = 0
    for raw in text.splitlines():
        line = raw.strip()
        if target == "msgstr" and (not line or line.startswith("#") or line.startswith(("msgctxt", "msgid "))):
            entries.append(current)  # the entry ends at a blank line, a comment or the next entry's keywords
            current, target = PoEntry(), ""
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#,"):
            current.flags.update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#:"):
            current.references.extend(line[2:].split())
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if not target:
                raise ValueError(f"continuation line without a keyword: {raw!r}")
            _append(current, target, index, _unquote(line[1:-1]))
        else:
            match = _KEYWORD.match(line)
            if not match:
                raise ValueError(f"unreadable .po line: {raw!r}")
            keyword, index = match.group(1), int(match.group(2) or 0)
            target = "msgstr" if keyword.startswith("msgstr") else keyword
            _append(current, target, index, _unquote(match.group(3)))
    if target == "msgstr":
        entries.append(current)
    return entries


def _append(entry: PoEntry, target: str, index: int, text: str) -> None:
    if target == "msgstr":
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    elif target == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + text
    elif target == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + text
    else:
        entry.msgid += text
