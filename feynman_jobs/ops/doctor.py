"""`feynman-jobs doctor`: what is wrong with a deployment, found by reading Redis (never writing)."""

from __future__ import annotations

import dataclasses
import json
import zlib
from datetime import UTC
from importlib import metadata

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.serializers import JSONSerializer

from feynman_jobs import keys, redisio
from feynman_jobs.clock import server_now
from feynman_jobs.costs import control
from feynman_jobs.ops.exposure import check_access, check_redis_config
from feynman_jobs.ops.findings import Finding
from feynman_jobs.ops.replicas import check_replication, sentinel_master
from feynman_jobs.ops.snapshot import REGISTRIES
from feynman_jobs.queueing.connection import reached_url
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob
from feynman_jobs.settings import Settings

#: Packages whose versions were tested together (architecture §10): a different one is a finding.
PINNED = ("rq", "rq-scheduler", "rq-dashboard", "redis")
#: A worker heartbeats at least every 45 s (Procfile --worker-ttl 60): a heartbeat further than this from
#: the Redis server's clock, either way, means a host clock that is off (or a stuck worker).
HEARTBEAT_LIMIT_S = 90
#: Jobs sampled per queue and registry when looking for data that is not JSON.
SAMPLE = 200


__all__ = ["Finding", "diagnose"]


def diagnose(connection: Redis, settings: Settings) -> list[Finding]:
    """Every check, in the order an operator would fix them; stops after Redis when it cannot be reached."""
    access = check_access(settings)
    try:
        info = connection.info("server")
    except RedisError as exc:
        return [Finding("redis", False, f"cannot be reached: {exc}"), access]
    findings = [Finding("redis", True, f"reachable, Redis {info.get('redis_version', '?')}")]
    # With sentinels, the Redis checked is the master they name now (REDIS_URL's host is not used).
    config = check_redis_config(connection, reached_url(connection, settings))
    if settings.redis_sentinels:
        where = sentinel_master(connection, settings)
        config = [dataclasses.replace(found, detail=f"{where}: {found.detail}") for found in config]
    findings += config
    findings.append(check_replication(connection, settings))
    findings.append(access)
    findings.append(check_prices(connection, settings))
    findings += check_workers(connection)
    findings.append(check_scheduler(connection))
    findings.append(check_serialized_data(connection))
    findings += check_versions()
    return findings


def check_prices(connection: Redis, settings: Settings) -> Finding:
    """Every remote model priced while a budget is in force, from the environment or set at run time
    (else its calls would spend uncounted)."""
    budgets = [
        f"FEYNMAN_BUDGET_{name.upper()}_USD"
        if item.source == "environment"
        else f"the {name} budget set at run time"
        for name, item in control.budgets(connection, settings).items()
        if item.value is not None
    ]
    problem = settings.price_problem(budgets)
    if problem:
        return Finding("prices", False, problem)
    priced = len(settings.prices)
    return Finding("prices", True, f"{priced} model(s) priced; every remote model a budget needs is priced")


def check_workers(connection: Redis) -> list[Finding]:
    """Workers registered and alive, on every queue, running the pinned rq, with a sane clock.

    Alive is the service's own rule (architecture §5): the worker's key exists, expiring by the Redis
    server's clock. Its heartbeat time is written by its host's clock: far from the server's, that clock
    is off (times the worker writes, such as a job's started_at, are off by as much)."""
    workers = Worker.all(connection=connection, job_class=JsonJob, serializer=JSONSerializer)
    if not workers:
        return [
            Finding("workers", False, "no rq worker is registered: start the Procfile's `worker` process")
        ]
    findings = []
    now = server_now(connection)
    for worker in workers:
        beat = worker.last_heartbeat
        age = (now - beat.replace(tzinfo=UTC)).total_seconds() if beat else None
        if age is not None and abs(age) > HEARTBEAT_LIMIT_S:
            when = f"{-age:.0f} s ahead of" if age < 0 else f"{age:.0f} s behind"
            findings.append(
                Finding(
                    "workers",
                    False,
                    f"{worker.name}: its last heartbeat is {when} the Redis server's clock: its host's "
                    "clock is off (or the worker is stuck); synchronise it (NTP)",
                    severity="warn",
                )
            )
        missing = [name for name in QUEUE_NAMES if name not in worker.queue_names()]
        if missing:
            findings.append(
                Finding("workers", False, f"{worker.name}: does not listen to {', '.join(missing)}")
            )
        wanted = pins().get("rq")
        if worker.version and wanted and worker.version != wanted:
            findings.append(
                Finding("workers", False, f"{worker.name}: runs rq {worker.version}, pinned {wanted}")
            )
    findings.insert(0, Finding("workers", True, f"{len(workers)} alive"))
    return findings


def check_scheduler(connection: Redis) -> Finding:
    """An rqscheduler process has announced itself and not died (its key expires when it stops)."""
    live = [
        key
        for key in connection.scan_iter(match=keys.RQ_SCHEDULER_INSTANCES, count=100)
        if not connection.hexists(key, "death")
    ]
    if not live:
        return Finding(
            "scheduler", False, "no rqscheduler is running: periodic jobs (cost rollups) will not run"
        )
    return Finding("scheduler", True, f"{len(live)} rqscheduler process(es) alive")


def check_serialized_data(connection: Redis) -> Finding:
    """Jobs waiting in our queues and registries hold JSON: anything else came from a wrong serializer."""
    job_ids: list[str] = []
    for queue in QUEUE_NAMES:
        job_ids += [redisio.text(raw) for raw in connection.lrange(keys.rq_queue(queue), 0, SAMPLE - 1)]
        for registry in REGISTRIES.values():
            key = registry(queue, connection=connection, job_class=JsonJob).key
            job_ids += [redisio.text(raw) for raw in connection.zrange(key, 0, SAMPLE - 1)]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(JsonJob.key_for(job_id), "data")
        blobs = pipe.execute()
    foreign = [job_id for job_id, blob in zip(job_ids, blobs, strict=True) if blob and not _is_json(blob)]
    if foreign:
        shown = ", ".join(sorted(set(foreign))[:5])
        return Finding(
            "serializer",
            False,
            f"{len(set(foreign))} job(s) hold data that is not JSON ({shown}): a client or worker is not "
            "using the JSON serializer (-S json / JsonJob); our workers cannot run them",
        )
    return Finding("serializer", True, f"{len(set(job_ids))} job(s) checked, all JSON")


def _is_json(blob: bytes) -> bool:
    # RQ stores job data zlib-compressed (older versions: plain); JSON is the only format we accept.
    try:
        json.loads(zlib.decompress(blob))
    except zlib.error:
        try:
            json.loads(blob)
        except ValueError:
            return False
    except ValueError:
        return False
    return True


def pins() -> dict[str, str]:
    """The exact versions this package was installed with (its `==` requirements)."""
    found = {}
    for requirement in metadata.requires("feynman-jobs") or []:
        name, _, version = requirement.partition("==")
        if version:
            found[name.strip()] = version.split(";")[0].strip()
    return found


def check_versions() -> list[Finding]:
    """Installed rq, rq-scheduler, rq-dashboard and redis-py against the pins of this package."""
    pinned_versions = pins()
    findings = []
    for name in PINNED:
        installed, pinned = _installed(name), pinned_versions.get(name)
        ok = installed is not None and installed == pinned
        findings.append(Finding("versions", ok, f"{name} {installed or 'not installed'} (pinned {pinned})"))
    return findings


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
