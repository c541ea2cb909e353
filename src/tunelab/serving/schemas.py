"""Request and response bodies of the server (they make the OpenAPI docs meaningful)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class PredictRequest(BaseModel):
    """One text or a batch of texts; pair classifiers also take the second text(s)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "质量很好，物流也快"}, {"texts": ["好用", "太差了"]}]
        },
    )
    text: str | None = Field(None, description="one text")
    texts: list[str] | None = Field(None, description="several texts, answered in order")
    text_pair: str | None = Field(None, description="the second text (pair models)")
    text_pairs: list[str] | None = Field(None, description="second texts, one per text")


class Span(BaseModel):
    """An entity (or a word, for segmentation) with character offsets into the text."""

    model_config = ConfigDict(extra="allow")
    text: str
    start: int
    end: int
    label: str | None = None
    score: float


class Prediction(BaseModel):
    """One record per text, exactly as ``tunelab predict`` writes it; which fields appear
    depends on the task."""

    model_config = ConfigDict(extra="allow")
    text: str | None = Field(None, description="classification and tagging: the input text")
    path: str | None = Field(None, description="image models: the file's name as sent")
    text_pair: str | None = Field(None, description="pair classification: the second text")
    label: str | None = Field(None, description="single-label: the predicted class")
    score: float | None = Field(None, description="single-label: its probability")
    labels: list[str] | None = Field(None, description="multi-label: the classes over threshold")
    probabilities: dict[str, float] | None = Field(None, description="probability per class")
    value: float | None = Field(None, description="regression: the predicted number")
    tokens: list[str] | None = Field(None, description="tagging: the tokens")
    tags: list[str] | None = Field(None, description="tagging: one tag per token")
    entities: list[Span] | None = Field(None, description="entity tagging: the entities found")
    words: list[Span] | None = Field(None, description="word segmentation: the words")
    source: str | None = Field(None, description="generation: the input")
    output: str | None = Field(None, description="generation: the generated text")
    embedding: list[float] | None = Field(None, description="sentence embedding: the vector")


class Metadata(BaseModel):
    """What the served model does and the limits of this server."""

    task: str
    labels: list[str] | None = Field(None, description="class or tag names")
    problem_type: str | None = None
    text_pair: bool = Field(description="whether requests must give text pairs")
    max_length: int = Field(description="tokens the model reads per text (longer: truncated)")
    backend: str
    precision: str = Field("fp32", description="the torch backend's: fp32, bf16 or checked")
    model_card: str | None = Field(None, description="the model folder's README.md")
    dimensions: int | None = Field(None, description="sentence embedding: numbers per vector")
    max_texts: int = Field(description="texts (or files) per request")
    max_chars: int
    inputs: str = Field("text", description="what /predict takes: text, or image files")
    max_file_bytes: int | None = Field(None, description="image models: bytes per file")


class EmbeddingRequest(BaseModel):
    """OpenAI's embeddings request: ``input`` is one text or a list of texts."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"input": ["list directory contents", "copy files"]}]},
    )
    input: str | list[str] = Field(description="one text, or several answered in order")
    model: str | None = Field(None, description="any name; echoed in the answer")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="float: lists of numbers; base64: little-endian float32 bytes"
    )
    dimensions: int | None = Field(None, description="must equal the model's own width")
    user: str | None = Field(None, description="accepted and ignored, as OpenAI clients send it")

    @field_validator("input", mode="before")
    @classmethod
    def _texts_only(cls, value: object) -> object:
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            return value
        raise ValueError("give a string or a list of strings (token ids are not accepted)")


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="the vector (base64 when asked)")


class Usage(BaseModel):
    prompt_tokens: int = Field(description="tokens the model read (after truncation)")
    total_tokens: int


class EmbeddingResponse(BaseModel):
    """OpenAI's embeddings answer: one vector per input text, in order."""

    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage
