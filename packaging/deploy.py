"""Deploy the whole service in one command: build the job artifacts, upload them, sam build + sam deploy.

    python packaging/deploy.py --email you@example.com [--stack-name image-featurizer] \
        [--weights imagenet|PATH|s3://...h5] [--architecture X86_64|ARM64] [--with-tensorflow] \
        [--with-int8 [--int8-calibration DIR] [--int8-validation DIR]] [--param Name=Value ...] \
        [--no-self-test]

1. checks what it needs before doing anything: the SAM CLI, a running Docker engine (the EMR environment
   is built on Amazon Linux 2023 for the workers' architecture), AWS credentials, and that the template's
   parameters (its defaults, the deployed stack's values, then `--param`) make EMR Serverless workers
   that exist;
2. builds the ONNX model (packaging/build_model.py; with `--with-int8` its INT8 model too, calibrated
   and validated on your folders if given, refused before any upload if it fails the quality gate) and
   the packed environment(s) (packaging/Dockerfile);
3. creates the stack on the first deploy (its artifacts bucket is part of it);
4. uploads the entry point, the environment(s), the model and the Keras weights under content-addressed
   keys (`<kind>/<sha256[:16]>/<name>`): an upload never changes what a running job reads;
5. deploys the stack again with those keys as parameters (without `--with-tensorflow` or `--with-int8`,
   none for the TensorFlow environment or the INT8 model: an earlier deploy's was built from other code);
6. runs the self-test (packaging/selftest.py): a small run through the API, judged PASS or FAIL. The
   deploy is done when it passes (`--no-self-test` skips it; run it later with selftest.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizing import problems as sizing_problems

from featurizer.weights import sha256_of

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
# Parameters this script sets from its own options (the build depends on them), never from --param.
OWN_OPTIONS = {
    "NotificationEmail": "--email",
    "Architecture": "--architecture",
    "EnvArchiveKey": "the build (it uploads the environment it built)",
    "TensorflowEnvArchiveKey": "--with-tensorflow",
    "Int8ModelKey": "--with-int8",
    "EntryPointKey": "the build (it uploads spark/main.py)",
    "ModelKey": "--weights",
    "WeightsKey": "--weights",
}


class PrerequisiteMissing(Exception):
    """Something the deploy needs is not there; the message says what and how to get it."""


@dataclass(frozen=True)
class Artifact:
    parameter: str  # the template parameter that receives the key
    path: Path
    kind: str
    checksum: Path | None = None  # uploaded beside the artifact as <key>.sha256 (the job checks the model)

    def key(self) -> str:
        """Content-addressed: a new build gets a new key; the same bytes always get the same one."""
        return f"{self.kind}/{sha256_of(self.path)[:16]}/{self.path.name}"


def check_prerequisites(sam: str | None, docker: str | None, credentials: Any, region: str | None) -> None:
    """Raise with every missing prerequisite named, before any build or upload."""
    missing = []
    if not sam:
        missing.append("the AWS SAM CLI (`sam`): pip install aws-sam-cli, or see docs/control-plane.md")
    if not docker:
        missing.append("Docker with buildx, to build the job environment for Amazon Linux 2023")
    elif subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        missing.append("a running Docker engine (`docker info` fails): start Docker")
    if credentials is None:
        missing.append("AWS credentials: run `aws configure` or `aws sso login`, or set AWS_PROFILE")
    if region is None:
        missing.append("an AWS region: run `aws configure`, or set AWS_REGION")
    if missing:
        raise PrerequisiteMissing("cannot deploy yet; missing:\n  - " + "\n  - ".join(missing))


def parameter_values(overrides: list[str], deployed: dict[str, str] | None = None) -> dict[str, str]:
    """The template's parameters as the deploy will set them: their defaults, then the deployed stack's
    values (sam deploy keeps a parameter's previous value unless it is overridden), then `Name=Value`."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # local/template.py reads template.yaml's CloudFormation tags
    from local.template import load_template

    declared = load_template()["Parameters"]
    values = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
    values |= {name: value for name, value in (deployed or {}).items() if name in declared}
    for override in overrides:
        name, equals, value = override.partition("=")
        if name in OWN_OPTIONS:
            raise PrerequisiteMissing(f"--param {override!r}: set {name} with {OWN_OPTIONS[name]}")
        if not equals or name not in declared:
            raise PrerequisiteMissing(
                f"--param {override!r}: expected Name=Value with Name one of "
                + ", ".join(name for name in declared if name not in OWN_OPTIONS)
            )
        values[name] = value
    return values


def deployed_parameters(cloudformation: Any, stack: str) -> dict[str, str]:
    """The parameter values of the stack as deployed now; none before its first deploy."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        if isinstance(error, ClientError) and "does not exist" in error.response["Error"].get("Message", ""):
            return {}
        raise PrerequisiteMissing(
            f"cannot describe the stack {stack} ({error}): check that AWS can be reached from here and "
            "that your credentials allow cloudformation:DescribeStacks"
        ) from error
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])}


def check_sizing(parameters: dict[str, str]) -> None:
    """Refuse, before any build, driver or executor sizes that are no EMR Serverless worker."""
    found = sizing_problems(parameters)
    if found:
        raise PrerequisiteMissing("the workers' sizing is not valid:\n  - " + "\n  - ".join(found))


def check_variants(architecture: str, with_tensorflow: bool) -> None:
    """Refuse, before any build, an environment that cannot be built for the workers' architecture."""
    if architecture == "ARM64" and with_tensorflow:
        raise PrerequisiteMissing(
            "--with-tensorflow cannot be built for ARM64 workers: PyPI has no aarch64 wheel of "
            "tensorflow-cpu. Deploy ARM64 without it (the default onnx engine needs no TensorFlow), "
            "or X86_64 with it"
        )


def upload(s3: Any, bucket: str, artifacts: list[Artifact]) -> dict[str, str]:
    """Upload each artifact unless its content-addressed key is already there; returns parameter -> key."""
    keys = {}
    for artifact in artifacts:
        key = artifact.key()
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError as error:
            code = error.response["Error"]["Code"]
            if code in ("403", "AccessDenied"):
                raise PrerequisiteMissing(
                    f"access denied to s3://{bucket}/{key}: your AWS credentials need s3:GetObject, "
                    f"s3:PutObject and s3:ListBucket on the artifacts bucket {bucket}"
                ) from error
            if code not in ("404", "NoSuchKey"):
                raise
            s3.upload_file(str(artifact.path), bucket, key)
            if artifact.checksum:
                s3.upload_file(str(artifact.checksum), bucket, f"{key}.sha256")
        keys[artifact.parameter] = key
    return keys


def build_environment(docker: str, architecture: str, variant: str, dist: Path) -> Path:
    out = dist / architecture.lower() / variant
    subprocess.run(
        [
            docker,
            "buildx",
            "build",
            "--platform",
            PLATFORMS[architecture],
            "-f",
            "packaging/Dockerfile",
            "--build-arg",
            f"VARIANT={variant}",
            "--target",
            "export",
            "--output",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    (archive,) = out.glob("job-env*.tar.gz")
    return archive


def stack_output(cloudformation: Any, stack: str, name: str) -> str | None:
    try:
        outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except cloudformation.exceptions.ClientError:
        return None
    return next((o["OutputValue"] for o in outputs if o["OutputKey"] == name), None)


def sam_overrides(parameters: dict[str, str]) -> list[str]:
    """`--parameter-overrides` arguments: each value quoted, as sam reads `Name=` as no value at all."""
    quoted = [name for name, value in parameters.items() if '"' in value or "\\" in value]
    if quoted:
        raise PrerequisiteMissing(
            f"{', '.join(quoted)}: a parameter value cannot hold a quote or a backslash (sam deploy reads "
            "them as its own quoting)"
        )
    return [f'{name}="{value}"' for name, value in parameters.items()]


def sam_deploy(sam: str, stack: str, parameters: dict[str, str]) -> None:
    subprocess.run([sam, "build"], cwd=ROOT, check=True)
    subprocess.run(
        [
            sam,
            "deploy",
            "--stack-name",
            stack,
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            *sam_overrides(parameters),
        ],
        cwd=ROOT,
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--email", required=True, help="where run reports are e-mailed (NotificationEmail)")
    parser.add_argument("--stack-name", default="image-featurizer")
    parser.add_argument("--weights", default=os.environ.get("FEATURIZER_WEIGHTS") or "imagenet")
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default="X86_64")
    parser.add_argument(
        "--with-tensorflow",
        action="store_true",
        help="also build and upload the TensorFlow environment (engine tensorflow)",
    )
    parser.add_argument(
        "--with-int8",
        action="store_true",
        help="also build the INT8 model behind its quality gate and upload it (precision int8)",
    )
    parser.add_argument(
        "--int8-calibration", type=Path, help="with --with-int8: a folder of images to calibrate it on"
    )
    parser.add_argument(
        "--int8-validation", type=Path, help="with --with-int8: a folder of class folders to validate it on"
    )
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-self-test", action="store_true", help="do not end with a self-test run")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter for sam deploy, e.g. --param MaxExecutors=40 (repeatable)",
    )
    args = parser.parse_args()
    if not args.with_int8 and (args.int8_calibration or args.int8_validation):
        parser.error("--int8-calibration and --int8-validation are for --with-int8")

    import boto3

    from featurizer.calibration import CalibrationUnavailable, check_apart

    session = boto3.Session()
    sam = os.environ.get("SAM_CLI") or shutil.which("sam")
    docker = shutil.which("docker")
    parameters = {
        **dict(override.partition("=")[::2] for override in args.param),
        "NotificationEmail": args.email,
        "Architecture": args.architecture,
        # Without --with-tensorflow, no TensorFlow environment: not the last deploy's, built from other code.
        "TensorflowEnvArchiveKey": "",
        "Int8ModelKey": "",
    }
    try:
        parameter_values(args.param)  # a mistyped --param is named before anything else is checked
        check_apart(args.int8_calibration, args.int8_validation)
        sam_overrides(parameters)
        check_variants(args.architecture, args.with_tensorflow)
        check_prerequisites(sam, docker, session.get_credentials(), session.region_name)
        cloudformation = session.client("cloudformation")
        check_sizing(parameter_values(args.param, deployed_parameters(cloudformation, args.stack_name)))
    except (PrerequisiteMissing, CalibrationUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    assert sam and docker

    from build_model import build as build_model
    from build_model import build_int8_model

    from featurizer.quality import QualityGateFailed
    from featurizer.weights import resolve_weights

    model = build_model(args.weights, args.dist)
    int8 = None
    if args.with_int8:  # before the environments: a model that fails its gate stops the deploy early
        try:
            int8, _ = build_int8_model(model, args.int8_calibration, args.int8_validation)
        except (CalibrationUnavailable, QualityGateFailed) as error:
            print(f"error: {error}; nothing was uploaded", file=sys.stderr)
            return 3
    artifacts = [
        Artifact("EntryPointKey", ROOT / "spark" / "main.py", "job"),
        Artifact("EnvArchiveKey", build_environment(docker, args.architecture, "default", args.dist), "job"),
        Artifact("ModelKey", model, "models", checksum=model.with_name(model.name + ".sha256")),
        Artifact("WeightsKey", resolve_weights(args.weights).path, "models"),
    ]
    if int8 is not None:
        artifacts.append(
            Artifact("Int8ModelKey", int8, "models", checksum=int8.with_name(int8.name + ".sha256"))
        )
    if args.with_tensorflow:
        archive = build_environment(docker, args.architecture, "tensorflow", args.dist)
        artifacts.append(Artifact("TensorflowEnvArchiveKey", archive, "job"))

    bucket = stack_output(cloudformation, args.stack_name, "ArtifactsBucketName")
    if bucket is None:
        sam_deploy(sam, args.stack_name, parameters)
        bucket = stack_output(cloudformation, args.stack_name, "ArtifactsBucketName")
    keys = upload(session.client("s3"), bucket, artifacts)
    sam_deploy(sam, args.stack_name, parameters | keys)
    print(f"deployed {args.stack_name}; artifacts in s3://{bucket}/: " + ", ".join(keys.values()))
    if args.no_self_test:
        return 0
    from selftest import SELF_TEST_TIMEOUT_SECONDS, ServiceUnreachable, aws_service, self_test

    try:
        service = aws_service(args.stack_name, session.region_name)
        return self_test(service, timeout=SELF_TEST_TIMEOUT_SECONDS, every=10, out=sys.stdout)
    except ServiceUnreachable as error:
        print(f"error: the self-test could not run: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
