"""What a run cost: its job run's billed vCPU-, memory- and disk-hours (GetJobRun's
`billedResourceUtilization`, there once the job run ended) times the deployment's prices.

The prices are the published on-demand ones (common/plan.py's PRICES, PRICING_PAGE) for the
deployment's worker architecture, unless the template's price parameters set others (a region's or a
discount's). A job run of an EMR endpoint other than AWS's (the local stack's emulator) is labelled an
estimate: its figures are the machine's measured resources, not a bill.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from common import records
from common.plan import PRICES_REGION, PRICING_PAGE, Plan, Prices, plan_run

if TYPE_CHECKING:  # config reads ARCHITECTURES from here
    from common.config import JobSettings

ARCHITECTURES = {"X86_64": "x86_64", "ARM64": "arm64"}  # the template's names -> PRICES' keys


def run_cost(
    job_run: dict[str, Any], prices: Prices, architecture: str, estimated: bool, planned: Plan | None = None
) -> dict[str, Any] | None:
    """The `cost` of GET /runs/<id>, beside what the run's plan said (`planned`, from the input's count
    when the run started); None while EMR has billed nothing yet (the job run has not ended)."""
    billed = job_run.get("billedResourceUtilization")
    if not billed:
        return None
    vcpu = float(billed.get("vCPUHour", 0.0))
    memory = float(billed.get("memoryGBHour", 0.0))
    storage = float(billed.get("storageGBHour", 0.0))
    usd = vcpu * prices.vcpu_hour + memory * prices.gb_hour + storage * prices.storage_gb_hour
    return {
        "usd": round(usd, 6),
        "vcpu_hours": vcpu,
        "memory_gb_hours": memory,
        "storage_gb_hours": storage,
        "duration_seconds": job_run.get("totalExecutionDurationSeconds"),
        "architecture": architecture,
        "prices": asdict(prices),
        "prices_source": f"{PRICING_PAGE} ({PRICES_REGION} on-demand unless the deployment set its own)",
        "estimate": estimated,
        **(
            {
                "planned_usd": round(planned.cost_usd[architecture], 6),
                "planned_hours": round(planned.hours, 4),
            }
            if planned is not None
            else {}
        ),
        "basis": (
            "the local stack's measured resources (cores held x wall time, largest resident set x wall "
            "time): an estimate, not a bill"
            if estimated
            else "EMR Serverless billedResourceUtilization x the prices"
        ),
    }


def cost_of_run(job_run: dict[str, Any], run: dict[str, Any], settings: JobSettings) -> dict[str, Any] | None:
    """The cost of a run (its record) by its job run (GetJobRun's), at the deployment's prices, beside the
    plan of the input its record counted: what GET /runs/<id> and the run's e-mail give."""
    size = records.input_size_of(run)
    planned = (
        None if size is None else plan_run(size, settings.limits, {settings.architecture: settings.prices})
    )
    return run_cost(job_run, settings.prices, settings.architecture, settings.emulated, planned)
