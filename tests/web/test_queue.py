"""Reruns on a real RQ queue in a real Redis: two ``kb serve`` processes and two ``kb worker``
processes sharing one data folder. Each distinct rerun is computed once, identical reruns are
one job, every page completes; a worker killed mid-job leaves a job that is retried or
reported failed, and the service keeps answering.

Skipped with a reason where Debian's redis-server is missing, unless KB_REQUIRE_REDIS=1 (CI).
Deadlines are generous bounds on "it happens", not speed targets.
"""
from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest

from faults import (REDIS_SERVER, environment, free_port, get, kb_command, pids_in,
                    start_redis, wait_until, write_answer)
from kb.web.app import create_app

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(),
                                reason="watches processes through /proc (Linux)")


@pytest.fixture
def redis_url(servers, tmp_path: Path) -> str:
    if not os.access(REDIS_SERVER, os.X_OK):
        reason = f"{REDIS_SERVER} is missing (apt-get install redis-server)"
        if os.environ.get("KB_REQUIRE_REDIS") == "1":
            pytest.fail(f"{reason}, but KB_REQUIRE_REDIS=1 requires it", pytrace=False)
        pytest.skip(f"{reason}; set KB_REQUIRE_REDIS=1 to make this a failure")
    return start_redis(servers, tmp_path / "redis")


@pytest.fixture
def cluster(servers, redis_url, tmp_path: Path):
    """Two services and two workers on one queue and one data folder: (base URLs, workers)."""
    answers = tmp_path / "answers"
    write_answer(answers, "slow", "test_fault_sleep")
    env = environment(KB_ANSWERS=str(answers), KB_DATA=str(tmp_path / "data"),
                      KB_QUEUE_URL=redis_url, KB_DEMO_TIMEOUT="3", KB_QUEUE_PER_CLIENT="100",
                      KB_RERUN_WAIT="0.5")
    bases = []
    for _ in range(2):
        port = free_port()
        servers.start(kb_command("serve", "--port", str(port)), env, port)
        bases.append(f"http://127.0.0.1:{port}")
    workers = [servers.start(kb_command("worker", "--name", f"w{i}-{os.getpid()}"), env)
               for i in range(2)]
    return bases, workers, tmp_path / "pids"


def rerun_url(base: str, seed: int, seconds: float, pid_dir: Path) -> str:
    return (f"{base}/api/answers/slow?seed={seed}&d.seconds={seconds}"
            f"&d.pid_dir={quote(str(pid_dir))}")


def until_settled(url: str, deadline: float = 120) -> dict:
    """The JSON of ``url`` once its rerun is done or failed (each response in 200 or 503)."""
    def settled():
        status, text, _ = get(url, timeout=30)
        assert status in (200, 503), (status, text[:500])
        body = json.loads(text)
        return body if body["rerun"]["state"] in ("done", "failed") else None

    return wait_until(settled, deadline, url, interval=0.2)


def test_distinct_reruns_are_computed_once_and_identical_ones_are_one_job(cluster):
    bases, _, pid_dir = cluster
    pid_dir.mkdir()
    urls = [rerun_url(bases[i % 2], seed, 0.3, pid_dir) for i, seed in enumerate(range(1, 21))]
    urls += [rerun_url(bases[i % 2], 99, 0.3, pid_dir) for i in range(10)]
    with ThreadPoolExecutor(30) as clients:
        bodies = list(clients.map(until_settled, urls))
    assert {body["rerun"]["state"] for body in bodies} == {"done"}
    assert all(body["errors"] == [] for body in bodies)
    assert sorted({body["seed"] for body in bodies}) == [*range(1, 21), 99]
    # One computation per distinct rerun (each leaves its process's pid), however many
    # services and requests asked for it.
    assert len(pids_in(pid_dir)) == 21
    for base in bases:  # pages complete too, at both services
        status, html, _ = get(f"{base}/a/slow?seed=7&d.seconds=0.3&d.pid_dir="
                              f"{quote(str(pid_dir))}")
        assert status == 200 and "data-poll" not in html and "This answer has problems" \
            not in html


def test_a_worker_killed_mid_job_leaves_a_job_retried_or_failed(cluster, servers):
    bases, workers, pid_dir = cluster
    pid_dir.mkdir()
    url = rerun_url(bases[0], 5, 2.5, pid_dir)
    status, text, _ = get(url)
    assert status == 200 and json.loads(text)["rerun"]["state"] in ("queued", "running")
    child = next(iter(wait_until(lambda: pids_in(pid_dir), 60, "the computation started")))
    parent = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
    victim = next(w for w in workers if w.pid == parent)
    victim.send_signal(signal.SIGKILL)
    victim.wait(30)
    # The other worker takes the job again (or it is reported failed), within its time limit
    # (2 x 3 s + 5 s) and the time to run it.
    body = until_settled(url, deadline=90)
    assert body["rerun"]["state"] in ("done", "failed")
    if body["rerun"]["state"] == "failed":
        assert "stopped before it was done" in body["rerun"]["notice"]
    else:
        assert len(pids_in(pid_dir)) == 2  # computed again by the other worker
    assert get(f"{bases[1]}/a/slow")[0] == 200


@pytest.fixture
def queued_app(settings, redis_url):
    """The app on the Redis queue, with no worker: its reruns wait."""
    app = create_app(settings.replace(queue_url=redis_url, rerun_wait=0.0, queue_size=3,
                                      queue_per_client=2), TESTING=True)
    app.extensions["kb"].warm(samples=False, figures=False)
    return app


def test_reruns_on_the_queue_say_their_place_and_a_full_queue_is_a_503(queued_app):
    client = queued_app.test_client()
    first = client.get("/api/answers/noise?seed=1").get_json()["rerun"]
    assert (first["state"], first["position"]) == ("queued", 1)
    again = client.get("/api/answers/noise?seed=1").get_json()["rerun"]  # the same job
    assert (again["state"], again["position"]) == ("queued", 1)
    html = client.get("/a/noise?seed=2").get_data(as_text=True)
    assert "waiting to be computed, number 2 in the queue" in html
    # This reader's share (2) is used up; another reader still gets a place.
    mine = client.get("/a/noise?seed=3")
    assert mine.status_code == 503 and "you have as many reruns waiting" in mine.get_data(
        as_text=True)
    other = client.get("/api/answers/noise?seed=4", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert other.get_json()["rerun"]["position"] == 3
    # Three waiting: the queue is full for everyone, and the page still shows the answer.
    full = client.get("/a/noise?seed=5", environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert full.status_code == 503 and full.headers["Retry-After"] == "10"
    assert "many readers&#39; reruns are waiting" in full.get_data(as_text=True)
    assert client.get("/a/noise").status_code == 200


def test_a_job_that_failed_on_the_queue_is_told_to_the_reader(queued_app):
    from rq.job import Job as RQJob

    client = queued_app.test_client()
    client.get("/api/answers/noise?seed=6")
    queue = queued_app.extensions["kb"].jobs
    [key] = queue.queue.get_job_ids()
    # As RQ leaves a job whose worker died twice: failed, without a result.
    job = RQJob.fetch(key, connection=queue.connection)
    queue.queue.remove(job)
    job.set_status("failed")
    rerun = client.get("/api/answers/noise?seed=6").get_json()["rerun"]
    assert rerun["state"] == "failed"
    assert "the machine computing it stopped before it was done" in rerun["notice"]
