"""A bucket that hangs blocks nothing else: not the queries, not the dashboard, not another app.

moto behind a proxy of ours that holds the GET of one app's tarball (as a slow S3 does); while it
is held, DeployEx must answer the CLI and the dashboard within a second and deploy another app
from the same bucket. Each Deployer fetches through a Fetcher of its own (see actors/fetcher.py).
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from deployex_actors.client import DeployEx
from deployex_actors.config import load_config
from deployex_actors.core.status import AppSnapshot
from deployex_actors.releases import release_store
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.browser import chromium, dashboard_secrets, log_in, running_dashboard
from tests.deployex_service import DEPLOYEX, app_entry, running_service, write_config
from tests.servers import HangingProxy, Server

pytestmark = pytest.mark.slow
HUNG, OTHER = "myerlangapp", "mygleamapp"
ANSWER_S = 1.0  # the bound for a query while a bucket hangs: a client timeout, not a sleep
HOLD_S = 120.0  # longer than everything the test does while the GET is held


def one_running(app: AppSnapshot) -> bool:
    return [r.status for r in app.replicas] == ["running"]


def test_a_hung_tarball_download_blocks_no_query_no_page_and_no_other_app(
    release_dist: ReleaseDist, aws_env: Server, tmp_path: Path
) -> None:
    import boto3

    bucket = f"releases-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    with HangingProxy(aws_env.url, hang=f"/dist/{HUNG}/", hold_s=HOLD_S) as proxy:
        apps = [app_entry(HUNG, replicas=1), app_entry(OTHER, replicas=1)]
        config = write_config(tmp_path, apps, release_adapter="s3", release_bucket=bucket,
                              release_endpoint_url=proxy.url, dashboard_enabled=True)  # fmt: skip
        direct = release_store(replace(load_config(config), release_endpoint_url=aws_env.url))

        def publish(app: str) -> None:
            direct.publish(app, "0.1.0", release_dist.tarball(app, "0.1.0"), [])

        publish(HUNG)
        secrets = dashboard_secrets()
        env = {**os.environ, **secrets}
        with running_service(config, tmp_path, env=env) as service:
            wait_until(proxy.held.is_set, 30, f"the Fetcher of {HUNG} asked for its tarball")
            publish(OTHER)
            service.wait_app(OTHER, one_running, f"{OTHER} deployed while {HUNG} hangs", 60)

            quick = DeployEx(service.config, timeout=ANSWER_S)
            hung = next(a for a in quick.status().apps if a.app == HUNG)
            assert (hung.desired_version, hung.replicas) == ("0.1.0", ())
            assert any(e.kind == "ready" for e in quick.events(app=OTHER))
            assert [v.version for v in quick.versions(OTHER)] == ["0.1.0"]
            for command in (["status"], ["events", "--app", OTHER], ["versions", OTHER]):
                run = [DEPLOYEX, *command, "--config", str(config)]
                done = subprocess.run(run, capture_output=True, text=True, timeout=30, env=env)
                assert done.returncode == 0 and OTHER in done.stdout, done.stderr

            with running_dashboard(config, tmp_path, secrets) as dashboard, chromium() as browser:
                # the dashboard's own way to DeployEx (its gateway), read without a browser
                with urllib.request.urlopen(f"{dashboard.url}/metrics", timeout=ANSWER_S) as up:
                    assert "\ndeployex_up 1\n" in up.read().decode()
                page = browser.new_page()
                page.set_default_timeout(30_000)
                log_in(page, dashboard, path=f"/versions?app={OTHER}")
                page.get_by_text("0.1.0").first.wait_for()
            # all of the above happened while the tarball was held: no GET of it got through
            assert proxy.let_through == 0 and service.app(HUNG).replicas == ()

            proxy.release()
            service.wait_app(HUNG, one_running, f"{HUNG} deployed once its bucket answers", 120)
