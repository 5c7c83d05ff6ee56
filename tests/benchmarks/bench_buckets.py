"""Benchmark: how soon an unreachable release bucket is reported, per backend.

    .venv/bin/python -m tests.benchmarks.bench_buckets [--rounds 5]

A Deployer reads current.json every few seconds; a bucket that cannot be reached must say so
quickly instead of retrying for minutes (botocore's defaults), or the deployment error would show
late and the Storage actor would be busy meanwhile. Each backend is pointed at a closed loopback
port (S3 through `release_endpoint_url`, GCS through STORAGE_EMULATOR_HOST) and asked for
current.json `--rounds` times; the seconds until BucketUnreachable are printed (median, max).
The tests only bound this generously; this is the figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from deployex_actors.config import Config
from deployex_actors.errors import BucketUnreachable
from deployex_actors.releases import release_store
from tests.servers import LOOPBACK, free_port

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def seconds_to_report(config: Config) -> float:
    store = release_store(config)
    started = time.monotonic()
    try:
        store.read_current("myapp")
    except BucketUnreachable:
        return time.monotonic() - started
    raise AssertionError("a closed port answered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(FAKE_AWS)
    closed = f"http://{LOOPBACK}:{free_port()}"
    os.environ["STORAGE_EMULATOR_HOST"] = closed
    backends = {
        "s3": Config(
            "s3",
            "env",
            release_bucket="releases",
            release_endpoint_url=closed,
            aws_region="us-east-1",
        ),
        "gcp-storage": Config("gcp-storage", "env", release_bucket="releases"),
    }
    print(f"{'backend':<14}{'median s':>10}{'max s':>8}")
    for name, config in backends.items():
        times = [seconds_to_report(config) for _ in range(args.rounds)]
        print(f"{name:<14}{statistics.median(times):>10.2f}{max(times):>8.2f}")


if __name__ == "__main__":
    main()
