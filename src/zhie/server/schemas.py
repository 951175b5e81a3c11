"""Wire types of the HTTP API (pydantic), apart from the result types in ``zhie.text``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TextsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, description="One text. Give either `text` or `texts`.")
    texts: list[str] | None = Field(default=None, description="Several texts, answered in order.")

    @model_validator(mode="after")
    def one_of(self):
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` or `texts`")
        return self

    def items(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class ExtractRequest(TextsRequest):
    schema_: Any = Field(  # checked by zhie.tasks.schema, whose errors name the offending node
        alias="schema",
        description='What to extract: `{"产品名称": null, "属性词": {"情感词": null}}` (SiameseUIE form), '
                    'or Taskflow forms: `["时间", "选手"]`, `{"竞赛名称": ["主办方", "承办方"]}`.',
        examples=[{"产品名称": None, "价格": None, "属性词": {"情感词": None}}],
    )
    threshold: float | None = Field(
        default=None, gt=0, lt=1, strict=True,  # a number, not "0.5" (what /openapi.json says)
        description="Probability a span's start and end must each pass (Taskflow's `position_prob`); "
                    "lower finds more, less precisely. Default: the model's (0.5).",
    )
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ExtractSpanOut(BaseModel):
    text: str
    start: int = Field(description="code-point offset into the caller's text")
    end: int = Field(description="exclusive end; text[start:end] == text")
    probability: float
    relations: dict[str, list["ExtractSpanOut"]] | None = Field(default=None, description="spans of the child types, when found")


class EntityOut(BaseModel):
    type: str = Field(description="entity type: PER, LOC or ORG for the bundled model; an imported model's own type names, unchanged")
    text: str
    start: int = Field(description="code-point offset into the caller's text")
    end: int = Field(description="exclusive end; text[start:end] == entity text")
    score: float


class NerResponse(BaseModel):
    entities: list[EntityOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
    request_id: str


class SentimentOut(BaseModel):
    label: str = Field(description="positive, negative (or neutral where the model has it)")
    confidence: float = Field(description="calibrated probability of the label")
    scores: dict[str, float]


class AnalyzeRequest(BaseModel):
    text: str | None = None


class AnalyzeResponse(BaseModel):
    label: str = Field(description="Positive or Negative")
    confidence: float
    text: str
