"""What one debounce state starts runs of: a dataset's folder, or one prediction batch inside it.

``inbox/<dataset>/`` starts training runs of the dataset; ``inbox/<dataset>/_predict/<batch>/`` starts predict
runs of that batch with the dataset's latest trained run. Each is debounced on its own (its own state, quiet
period and ``_START`` marker), under its name: ``<dataset>`` or ``<dataset>/_predict/<batch>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.runs import DATASET_PATTERN, INBOX_PREFIX, PREDICT_FOLDER, is_valid_dataset, split_s3_uri


class NotADropUnit(ValueError):
    """The folder is neither a dataset nor a prediction batch of one."""


@dataclass(frozen=True)
class DropUnit:
    dataset: str
    batch: str | None = None  # a prediction batch's folder name; None: the dataset's training runs

    def __post_init__(self) -> None:
        for kind, name in (("dataset", self.dataset), ("prediction batch", self.batch)):
            if name is not None and not is_valid_dataset(name):
                raise NotADropUnit(f"{kind} name {name!r} does not match {DATASET_PATTERN.pattern}")

    @property
    def name(self) -> str:
        """The debounce state's key, and the folder under inbox/."""
        return self.dataset if self.batch is None else f"{self.dataset}/{PREDICT_FOLDER}/{self.batch}"

    @property
    def prefix(self) -> str:
        return f"{INBOX_PREFIX}{self.name}/"

    @property
    def predicts(self) -> bool:
        return self.batch is not None

    def describe(self) -> str:
        """The unit as the e-mails name it."""
        if self.batch is None:
            return f'dataset "{self.dataset}"'
        return f'prediction batch "{self.batch}" of dataset "{self.dataset}"'

    @classmethod
    def named(cls, name: str) -> DropUnit:
        """The unit of a debounce state's key (``name``)."""
        dataset, _, rest = name.partition("/")
        if not rest:
            return cls(dataset)
        folder, _, batch = rest.partition("/")
        if folder != PREDICT_FOLDER or not batch or "/" in batch:
            raise NotADropUnit(f"{name!r} is not <dataset> or <dataset>/{PREDICT_FOLDER}/<batch>")
        return cls(dataset, batch)

    @classmethod
    def of_input(cls, input_uri: str) -> DropUnit:
        """The unit whose run reads ``input_uri`` (a drop run's record keeps its input)."""
        _, key = split_s3_uri(input_uri)
        if not key.startswith(INBOX_PREFIX):
            raise NotADropUnit(f"{input_uri} is not under {INBOX_PREFIX}")
        return cls.named(key[len(INBOX_PREFIX) :].rstrip("/"))


def unit_of_path(dataset: str, rest: str) -> tuple[DropUnit, str]:
    """The unit an object ``inbox/<dataset>/<rest>`` belongs to, and its path inside that unit's folder.

    An object right under ``_predict/`` (no batch folder) is refused: it belongs to no batch.
    """
    folder, _, inside = rest.partition("/")
    if folder != PREDICT_FOLDER:
        return DropUnit(dataset), rest
    batch, _, path = inside.partition("/")
    if not path:
        raise NotADropUnit(
            f"object directly under {INBOX_PREFIX}{dataset}/{PREDICT_FOLDER}/ (expected "
            f"{INBOX_PREFIX}{dataset}/{PREDICT_FOLDER}/<batch>/<file>)"
        )
    return DropUnit(dataset, batch), path
