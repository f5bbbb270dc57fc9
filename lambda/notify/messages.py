"""The e-mail texts (SNS subject and message), built from a run's output files. Plain functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.drop_units import DropUnit
from common.runs import INBOX_PREFIX, START_MARKER, run_prefix, split_s3_uri

CONSOLE = "https://s3.console.aws.amazon.com/s3/buckets/{bucket}?prefix={prefix}"
CONSOLE_OBJECT = "https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={key}"
RUN_OUTPUTS = (
    "  features/ and pca/ (Parquet), pca.csv, model/ (Spark PipelineModel),",
    "  metrics.json, timings.json, manifest.json, rejected.csv",
)
PREDICT_OUTPUTS = (
    "  predictions/ and features/ (Parquet), predictions.csv,",
    "  metrics.json, timings.json, manifest.json, rejected.csv",
)


@dataclass(frozen=True)
class Notice:
    key: str  # "<outcome>#<run_id>": one message per run and outcome, however many events report it
    subject: str
    message: str
    run_id: str | None = None  # None for a job run this service has no record of
    images_featurized: int = 0

    @property
    def outcome(self) -> str:
        return self.key.split("#", 1)[0]


def _subject(text: str) -> str:
    """SNS subjects: at most 100 printable ASCII characters."""
    ascii_text = text.encode("ascii", "replace").decode()
    return ascii_text if len(ascii_text) <= 100 else ascii_text[:97] + "..."


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes} min")
    parts.append(f"{secs} s")
    return f"{' '.join(parts)} ({seconds:.1f} s)"


def _percent(value: Any) -> str:
    return (
        f"{float(value) * 100:.1f} %" if isinstance(value, int | float) else "n/a (no labelled test images)"
    )


def _report_lines(report: Any) -> list[str]:
    """Where the run's report.html is, and its S3 console page (which opens or downloads it)."""
    try:
        bucket, key = split_s3_uri(report)
    except (TypeError, ValueError, AttributeError):
        return []
    return [
        f"Report: {report}",
        f"  open it from the S3 console: {CONSOLE_OBJECT.format(bucket=bucket, key=key)}",
        "",
    ]


def _reuse(count: Callable[[str], Any]) -> str:
    """What the feature store saved the run, when its manifest says (runs before the store do not)."""
    if count("images_reused") == "unknown":
        return ""
    return (
        f" ({count('images_reused')} reused from earlier runs, {count('images_featurized_new')} new;"
        f" {count('images_removed')} gone from the input since)"
    )


def _image_lines(count: Callable[[str], Any]) -> list[str]:
    """Every successful run's first counts: the images found, featurized (and reused) and rejected."""
    return [
        f"Images found:       {count('images_found')}",
        f"Images featurized:  {count('images_featurized')}" + _reuse(count),
        f"Images rejected:    {count('images_rejected')}"
        + ("  (listed in rejected.csv)" if count("images_rejected") not in (0, "unknown") else ""),
    ]


def success_notice(
    *,
    bucket: str,
    dataset: str,
    run_id: str,
    completed: dict[str, Any],
    manifest: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    timings: dict[str, Any] | None,
    cost: dict[str, Any] | None = None,
) -> Notice:
    summary = completed.get("summary", {})
    counts = (manifest or {}).get("counts", {})
    metrics = metrics or {}

    def count(name: str) -> Any:
        value = counts.get(name, summary.get(name))
        return "unknown" if value is None else value

    accuracy = metrics.get("accuracy", summary.get("accuracy"))
    weighted_f1 = metrics.get("weighted_f1", summary.get("weighted_f1"))
    duration = summary.get("duration_seconds", (timings or {}).get("total_seconds"))
    prefix = run_prefix(dataset, run_id)
    output = completed.get("output") or f"s3://{bucket}/{prefix}"
    predicting = "images_classified" in summary
    if predicting:
        lines = _predicted_lines(run_id, dataset, summary, count, (manifest or {}).get("input"))
    else:
        lines = [
            f'Run {run_id} for dataset "{dataset}" finished successfully.',
            "",
            *_image_lines(count),
            f"Classes:            {count('classes')}"
            f" (train {count('train_images')}, test {count('test_images')};"
            f" fitted on {count('images_fitted')})",
            f"Accuracy:           {_percent(accuracy)}"
            + (f"  (weighted F1 {float(weighted_f1):.3f})" if isinstance(weighted_f1, int | float) else ""),
        ]
    lines += [
        f"Duration:           {_duration(duration)}",
        *_cost_lines(cost),
        f"Finished at:        {completed.get('finished_at', 'unknown')}",
        "",
        *_report_lines(completed.get("report")),
        f"Outputs: {output}",
        *(PREDICT_OUTPUTS if predicting else RUN_OUTPUTS),
        f"Browse: {CONSOLE.format(bucket=bucket, prefix=prefix)}",
    ]
    return Notice(
        key=f"succeeded#{run_id}",
        subject=_subject(f"Featurizer run succeeded: {dataset} ({count('images_featurized')} images)"),
        message="\n".join(lines) + "\n",
        run_id=run_id,
        images_featurized=featurized if isinstance(featurized := count("images_featurized"), int) else 0,
    )


def _cost_lines(cost: dict[str, Any] | None) -> list[str]:
    """What the job run was billed (common/cost.py), beside its plan; nothing when EMR gave no bill."""
    if cost is None:
        return []
    planned = f"; planned at most ${cost['planned_usd']:.4f}" if "planned_usd" in cost else ""
    hours = f"{cost['vcpu_hours']:.3f} vCPU-h, {cost['memory_gb_hours']:.3f} GB-h"
    kind = "an estimate from the local stack's measured resources" if cost.get("estimate") else "billed"
    return [f"Cost:               ${cost['usd']:.4f} ({kind}: {hours}{planned})"]


def _predicted_lines(
    run_id: str, dataset: str, summary: dict[str, Any], count: Callable[[str], Any], source: str | None
) -> list[str]:
    """A predict run's images (``source``: the folder, which tells one prediction batch from another),
    how many were classified, into which classes, and how many agreed with the class folder they sat in."""
    classes = sorted(summary.get("predicted", {}).items(), key=lambda item: (-item[1], item[0]))
    scored = summary.get("images_scored", 0)
    return [
        f'Predict run {run_id} for dataset "{dataset}" finished successfully.',
        f"Classified with the pipeline of: {summary.get('model_run', 'unknown')}",
        *([f"Images from: {source}"] if source else []),
        "",
        *_image_lines(count),
        f"Images classified:  {summary['images_classified']}",
        *(f"  {label}: {n}" for label, n in classes if n),
        f"Accuracy:           {_percent(summary.get('accuracy'))} against their folders ({scored} images)"
        if scored
        else "Accuracy:           n/a (no image sat in a folder named after a class)",
    ]


def failure_notice(
    *,
    bucket: str,
    dataset: str | None,
    run_id: str | None,
    job_run_id: str | None,
    application_id: str,
    emr_state: str | None,
    state_details: str | None,
    failed: dict[str, Any] | None,
    log_uri: str | None,
    input_uri: str | None,
) -> Notice:
    name = dataset or "unknown dataset"
    run = run_id or f"EMR job run {job_run_id}"
    verb = "was CANCELLED" if emr_state == "CANCELLED" and not failed else "FAILED"
    reason = (failed or {}).get("message") or state_details or "no reason reported"
    lines = [f'Run {run} for dataset "{name}" {verb}.', "", f"Reason: {reason}"]
    if failed:
        lines.append(f"Failed stage: {failed.get('stage', 'unknown')} ({failed.get('error', 'error')})")
    if state_details and failed and state_details != reason:
        lines.append(f"EMR Serverless: {state_details}")
    lines += [
        "",
        f"EMR job run: {job_run_id or 'unknown'} on application {application_id}"
        + (f" (state {emr_state})" if emr_state else ""),
    ]
    if log_uri:
        lines += [
            f"Logs: {log_uri}",
            f"  driver output: {log_uri}SPARK_DRIVER/stderr.gz and stdout.gz",
        ]
    if dataset and run_id:
        lines.append(f"Run folder: s3://{bucket}/{run_prefix(dataset, run_id)}")
    if input_uri:
        lines += [
            "",
            f"Nothing was deleted: the images are still in {input_uri}",
            f"To try again, fix the problem and upload {_start_marker(dataset, input_uri)} "
            "(or POST /runs again)."
            if dataset
            else "To try again, POST /runs again.",
        ]
    return Notice(
        key=f"failed#{run_id or job_run_id}",
        subject=_subject(f"Featurizer run {verb.lower()}: {name} ({run})"),
        message="\n".join(lines) + "\n",
        run_id=run_id,
    )


def _start_marker(dataset: str, input_uri: str) -> str:
    """The marker that starts the input's drop unit again (a prediction batch's own, or its dataset's)."""
    try:
        return f"{DropUnit.of_input(input_uri).prefix}{START_MARKER}"
    except ValueError:  # an API input in some other folder: its dataset's marker starts the dataset again
        return f"{INBOX_PREFIX}{dataset}/{START_MARKER}"


def start_failed_notice(
    *, bucket: str, unit: DropUnit, run_id: str, attempts: int, error: str | None
) -> Notice:
    """A drop's run that could not be started any time it was tried (EMR refused it, or a prediction batch
    had no trained run)."""
    message = (
        f"A run for {unit.describe()} (run id {run_id}) could not be started after {attempts} attempts.\n\n"
        f"Last error: {error or 'unknown'}\n\n"
        f"The images are still in s3://{bucket}/{unit.prefix}. "
        f"Fix the problem, then upload {unit.prefix}{START_MARKER} to try again.\n"
    )
    return Notice(
        key=f"start_failed#{run_id}",
        subject=_subject(f"Featurizer run could not start: {unit.name}"),
        message=message,
        run_id=run_id,
    )
