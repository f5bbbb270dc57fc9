"""Entry point of the featurization job, the file EMR Serverless (or any spark-submit) runs:

    spark-submit spark/main.py --input s3://BUCKET/inbox/DATASET/ --output s3://BUCKET/runs/DATASET/ \
        --run-id RUN_ID [--engine onnx|tensorflow] [--weights imagenet|PATH|s3://...h5] [--pca-k 10]

The `featurizer` package must be importable by the driver and the executors (installed in the packed
virtualenv on EMR Serverless; `pip install -e .` locally). `featurizer run` runs the same job on local Spark.
"""

import sys

from featurizer.job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
