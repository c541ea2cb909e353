"""A Label Studio ML backend: tunelab's model suggests labels inside Label Studio.

Label Studio (a project's Settings -> Model -> Connect model, URL ``http://host:9090``) calls:

- ``GET /health`` (and ``/``): ``{"status": "UP", "model_class": "tunelab"}``;
- ``POST /setup`` ``{project, schema}``: checks the label config, answers ``{model_version}``;
- ``POST /predict`` ``{tasks, label_config, project}``: ``{"results": [...]}``, one prediction
  per task (a ``choices`` result and its probability as ``score``), none before the model
  has labels of two classes;
- ``POST /webhook`` ``{action, project, task, annotation}``: an annotation created, updated
  or deleted, or ``START_TRAINING``.

Every annotation is appended to the project's label journal (the same fsync'd format as
``tunelab label run``, with the task's text, so the journal alone rebuilds the model after a
restart) before the webhook is answered. The model is the labelling queue's (TF-IDF character
n-grams and logistic regression), retrained every ``retrain_every`` new labels. Sorting the
Label Studio data manager by prediction score, lowest first, shows the texts the model is
least sure of: active learning inside Label Studio.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import UserError
from tunelab.labelling.journal import LabelJournal
from tunelab.labelling.queue import text_classifier, text_vectorizer

TRAIN_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "START_TRAINING")


@dataclass(frozen=True)
class ChoiceConfig:
    """What a text-classification label config names: the control, its text, its choices."""

    from_name: str  # the <Choices name=...>
    to_name: str  # the <Text name=...> it labels
    data_key: str  # the task data field the text comes from (<Text value="$text">)
    choices: tuple[str, ...]


def parse_label_config(config: str) -> ChoiceConfig:
    """The single-choice classification a Label Studio label config describes.

    Raises:
        UserError: for XML that does not parse, a config without ``<Choices>`` (entity
            ``<Labels>`` are named as such), multiple choice, or a ``<Choices>`` whose
            ``toName`` is not a ``<Text>`` with a ``$field`` value.
    """
    try:
        root = ElementTree.fromstring(config or "")
    except ElementTree.ParseError as exc:
        raise UserError(f"the Label Studio label config is not valid XML ({exc}); check the "
                        "project's Settings -> Labeling Interface") from None  # fmt: skip
    found = root.findall(".//Choices")
    if not found:
        kinds = sorted({node.tag for node in root.iter() if node.tag.endswith("Labels")})
        what = f"has {', '.join(f'<{k}>' for k in kinds)} but no" if kinds else "has no"
        raise UserError(f"the Label Studio label config {what} <Choices>; tunelab's backend "
                        "suggests text-classification choices, so connect it to a text "
                        "classification project")  # fmt: skip
    choices = found[0]
    if choices.get("choice", "single") != "single":
        raise UserError(f"the Label Studio <Choices name=\"{choices.get('name')}\"> allows "
                        f"choice=\"{choices.get('choice')}\"; tunelab's backend suggests one "
                        "choice per text, so set choice=\"single\"")  # fmt: skip
    to_name = choices.get("toName", "")
    texts = {node.get("name"): node.get("value", "") for node in root.iter("Text")}
    value = texts.get(to_name, "")
    if not value.startswith("$"):
        raise UserError(f"the Label Studio <Choices toName=\"{to_name}\"> does not name a "
                        "<Text> tag with a value like \"$text\"; label a task's text "
                        "field")  # fmt: skip
    names = tuple(node.get("value") or node.get("alias") or "" for node in choices.iter("Choice"))
    return ChoiceConfig(choices.get("name", ""), to_name, value[1:], names)


@dataclass
class Project:
    """One Label Studio project: its journal, label config and current model."""

    journal: LabelJournal
    config: ChoiceConfig | None = None
    vectorizer: Any = None
    model: Any = None
    trained_on: int = 0
    labels_since: int = field(default=0)

    @property
    def version(self) -> str:
        return f"tunelab-{self.trained_on}" if self.model is not None else "tunelab-untrained"


class StudioBackend:
    """The backend's state: one journal and model per Label Studio project.

    Args:
        journal_dir: where the journals go (``project-<id>.journal.jsonl``).
        retrain_every: new labels between retrains (the first model comes as soon as two
            classes have labels).
    """

    def __init__(self, journal_dir: Path | str, retrain_every: int = 5) -> None:
        if retrain_every < 1:
            raise UserError(f"--retrain-every {retrain_every} must be 1 or more")
        self.journal_dir = Path(journal_dir)
        self.retrain_every = retrain_every
        self.projects: dict[str, Project] = {}
        self.lock = threading.Lock()  # requests come from a thread pool

    def project(self, project: Any, label_config: str | None = None) -> Project:
        """The project named by Label Studio's ``project`` (``"12"``, ``"12.1712345678"``
        or ``{"id": 12}``), its model rebuilt from its journal on first use."""
        key = str(project.get("id") if isinstance(project, dict) else project or "").split(".")[0]
        if not key.isdigit():
            raise UserError(f"Label Studio sent project {project!r}; expected a project id")
        found = self.projects.get(key)
        if found is None:
            path = self.journal_dir / f"project-{key}.journal.jsonl"
            found = self.projects[key] = Project(LabelJournal(path))
            self._retrain(found)
        if label_config:
            found.config = parse_label_config(label_config)
        return found

    def setup(self, project: Any, schema: str) -> dict[str, Any]:
        """Check the project's label config; answer the model version."""
        with self.lock:
            return {"model_version": self.project(project, schema).version}

    def predict(self, project: Any, label_config: str, tasks: list[dict[str, Any]]) -> list:
        """One prediction per task, or none while the model has too few labels."""
        with self.lock:
            found = self.project(project, label_config)
            if found.model is None or found.config is None:
                return []
            config = found.config
            texts = [_task_text(task, config) for task in tasks]
            probabilities = found.model.predict_proba(found.vectorizer.transform(texts))
            results = []
            for row in probabilities:
                best = int(row.argmax())
                choice = {"from_name": config.from_name, "to_name": config.to_name,
                          "type": "choices",
                          "value": {"choices": [str(found.model.classes_[best])]}}  # fmt: skip
                results.append({"result": [choice], "score": round(float(row[best]), 4),
                                "model_version": found.version})  # fmt: skip
            return results

    def webhook(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Journal an annotation (or take one back) and retrain when due."""
        with self.lock:
            project = payload.get("project") or {}
            config = project.get("label_config") if isinstance(project, dict) else None
            found = self.project(project, config)
            if event == "START_TRAINING":
                self._retrain(found)
                return {"labels": found.trained_on, "model_version": found.version}
            task, annotation = payload.get("task") or {}, payload.get("annotation") or {}
            item, who = str(task.get("id", "")), _annotator(annotation)
            if event == "ANNOTATION_DELETED":
                if item in found.journal.state.last_of.get(who, []):
                    found.journal.undo(who, item)
                    found.labels_since += 1
            elif found.config is None:
                raise UserError(f"Label Studio sent an annotation of task {item} before the "
                                "project's label config; connect the model again (Settings -> "
                                "Model) so /setup receives it")  # fmt: skip
            elif not annotation.get("was_cancelled"):
                label = _chosen(annotation, found.config)
                if label is not None:
                    found.journal.label(item, label, annotator=who,
                                        text=_task_text(task, found.config))  # fmt: skip
                    found.labels_since += 1
            if found.labels_since >= self.retrain_every or found.model is None:
                self._retrain(found)
            return {"labels": found.trained_on, "model_version": found.version}

    def _retrain(self, found: Project) -> None:
        """Fit on the journal's current labels that carry their text (reviews win)."""
        state = found.journal.state
        texts, labels = [], []
        for item, label in state.labels().items():
            text = next((e.get("text") for e in reversed(state.history[item]) if "text" in e), None)
            if text is not None and isinstance(label, str):
                texts.append(text)
                labels.append(label)
        found.labels_since = 0
        if len(set(labels)) < 2:
            found.model = None
            return
        try:
            found.vectorizer = text_vectorizer().fit(texts)
        except ValueError:  # a handful of texts share no character n-gram
            found.vectorizer = text_vectorizer(min_df=1).fit(texts)
        found.model = text_classifier().fit(found.vectorizer.transform(texts), labels)
        found.trained_on = len(labels)


def _task_text(task: dict[str, Any], config: ChoiceConfig) -> str:
    data = task.get("data") or {}
    if config.data_key not in data:
        raise UserError(f"Label Studio task {task.get('id')} has no data field "
                        f"'{config.data_key}', which the label config's <Text "
                        f"value=\"${config.data_key}\"> reads; import tasks with that "
                        "field")  # fmt: skip
    return str(data[config.data_key])


def _annotator(annotation: dict[str, Any]) -> str:
    """``label-studio:<email or id>`` of whoever completed the annotation."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return f"label-studio:{who if who not in (None, '') else 'unknown'}"


def _chosen(annotation: dict[str, Any], config: ChoiceConfig) -> str | None:
    for result in annotation.get("result") or []:
        if result.get("type") == "choices" and result.get("from_name") == config.from_name:
            picked = (result.get("value") or {}).get("choices") or []
            return str(picked[0]) if picked else None
    return None


def create_backend_app(backend: StudioBackend, auth: tuple[str, str] | None = None) -> Any:
    """The FastAPI app Label Studio talks to; ``auth`` is a Basic-auth user and password."""
    import base64
    import hmac

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from tunelab.errors import one_line

    app = FastAPI(title="tunelab Label Studio ML backend", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def basic_auth(request: Request, call_next: Any) -> Any:
        if auth is not None:
            expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return JSONResponse({"error": "unauthorized"}, 401,
                                    {"WWW-Authenticate": 'Basic realm="tunelab"'})  # fmt: skip
        return await call_next(request)

    @app.exception_handler(UserError)
    async def user_error(_: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"error": one_line(exc)}, 400)

    @app.get("/")
    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "UP", "model_class": "tunelab"}

    @app.post("/setup")
    def setup(body: dict[str, Any]) -> dict[str, Any]:
        return backend.setup(body.get("project"), body.get("schema") or "")

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        tasks = body.get("tasks") or []
        return {"results": backend.predict(body.get("project"), body.get("label_config") or "",
                                           tasks)}  # fmt: skip

    @app.post("/webhook")
    def webhook(body: dict[str, Any]) -> JSONResponse:
        event = str(body.get("action", ""))
        if event not in TRAIN_EVENTS:
            return JSONResponse({"status": "Unknown event"}, 200)
        return JSONResponse({"result": backend.webhook(event, body), "status": "ok"}, 201)

    return app


def serve_backend(
    journal_dir: Path, host: str, port: int, retrain_every: int, auth: str | None,
    echo: Any = print,
) -> None:  # fmt: skip
    """Run the backend with uvicorn until interrupted.

    Raises:
        UserError: for a missing ``serve`` extra or an ``auth`` without ``user:password``.
    """
    from tunelab.serving.model_folder import require_extra

    require_extra("serve")
    import uvicorn

    pair = None
    if auth is not None:
        user, colon, password = auth.partition(":")
        if not (user and colon and password):
            raise UserError("--auth must be user:password, as entered in Label Studio's "
                            "model connection (Basic authentication)")  # fmt: skip
        pair = (user, password)
    app = create_backend_app(StudioBackend(journal_dir, retrain_every), pair)
    echo(f"tunelab Label Studio backend on http://{host}:{port} (journals in {journal_dir}); "
         "in Label Studio: Settings -> Model -> Connect model, with this URL")  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="warning")
