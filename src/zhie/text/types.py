"""Result types shared by the API, the CLI and evaluation. All offsets are Python code-point
indices into the caller's original string, end exclusive: ``text[start:end] == entity.text``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ENTITY_TYPES = ("PER", "LOC", "ORG")


@dataclass(frozen=True, slots=True)
class Entity:
    type: str
    text: str
    start: int
    end: int
    score: float = 1.0

    def key(self) -> tuple[str, int, int]:
        return (self.type, self.start, self.end)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class Doc:
    """A text with its entities: gold (readers) or predicted (tasks)."""

    text: str
    entities: list[Entity] = field(default_factory=list)

    def check_offsets(self) -> None:
        for e in self.entities:
            if not (0 <= e.start < e.end <= len(self.text)) or self.text[e.start : e.end] != e.text:
                raise ValueError(f"entity {e} does not match the text at [{e.start}:{e.end}]")
