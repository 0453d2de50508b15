"""Schemathesis against a real `mall serve` and `mall writer`: every documented operation gets
generated requests, with a staff token and with a customer token, and every answer must be
documented (status, content type, body schema) and never a 5xx.

Each operation runs twice per token: once with generated path parameters (mostly unknown ids)
and once with the ids of seeded rows, so the handlers get past their 404s.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from mall.settings import Settings
from tests.fuzz.seed import Seed, seed
from tests.stack import Stack

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# The fuzzer writes far faster than a person; the rate limits have their own tests.
UNLIMITED = dict(rate_limit_user=10**6, rate_limit_ip=10**6, rate_limit_sale=10**6)


@dataclass
class Fuzzed:
    stack: Stack
    seed: Seed
    schema: schemathesis.BaseSchema


@dataclass
class Report:
    cases: int = 0
    operations: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def failed(self, who: str, case: schemathesis.Case, response: requests.Response | None,
               error: BaseException) -> None:
        status = response.status_code if response is not None else "no answer"
        body = response.text[:300] if response is not None else ""
        self.failures.append(
            f"[{who}] {case.method} {case.formatted_path} query={case.query} "
            f"body={str(case.body)[:300]} -> {status} {body}\n    {str(error)[:600]}")


@pytest.fixture
async def fuzzed(own_database_settings: Settings) -> AsyncIterator[Fuzzed]:
    settings = own_database_settings.with_(**UNLIMITED)
    stack = Stack.create(settings, "fuzz")
    await stack.start()
    try:
        data = await seed(settings, stack.url)
        schema = schemathesis.openapi.from_url(f"{stack.url}/api/openapi.json")
        yield Fuzzed(stack, data, schema)
    finally:
        stack.stop()


def fuzz_operation(operation: schemathesis.APIOperation, base_url: str, who: str,
                   headers: dict[str, str], report: Report, examples: int,
                   path_parameters: dict[str, object] | None = None) -> None:
    session = requests.Session()
    strategy = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=path_parameters)
    if examples > 2:
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE,
                                                    path_parameters=path_parameters)

    @hypothesis.given(case=strategy)
    @hypothesis.settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                         phases=[Phase.explicit, Phase.generate],
                         suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        report.cases += 1
        response = None
        try:
            response = case.call(base_url=base_url, session=session, headers=headers,
                                 timeout=15)
            report.statuses[response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (FailureGroup, AssertionError, requests.RequestException) as exc:
            report.failed(who, case, response, exc)

    run()
    session.close()


def fuzz_all(fuzzed: Fuzzed, examples: int) -> Report:
    report = Report()
    known = fuzzed.seed.path_ids
    for result in fuzzed.schema.get_all_operations():
        operation = result.ok()
        report.operations += 1
        names = [p.name for p in operation.path_parameters]
        for who, headers in (("staff", fuzzed.seed.staff), ("customer", fuzzed.seed.customer)):
            fuzz_operation(operation, fuzzed.stack.url, who, headers, report, examples)
            if names and all(n in known for n in names):
                fuzz_operation(operation, fuzzed.stack.url, who, headers, report, examples,
                               {n: known[n] for n in names})
    return report


async def run_fuzz(fuzzed: Fuzzed, examples: int) -> Report:
    started = time.monotonic()
    report = await asyncio.to_thread(fuzz_all, fuzzed, examples)
    elapsed = time.monotonic() - started
    print(f"fuzzed {report.operations} operations with {report.cases} cases "
          f"in {elapsed:.1f}s; answers by status: {sorted(report.statuses.items())}")
    assert fuzzed.stack.server.alive(), fuzzed.stack.server.tail()
    assert not report.failures, "\n".join(report.failures)
    assert report.operations >= 90
    assert sum(n for status, n in report.statuses.items() if status < 300) > report.cases // 10
    return report


async def test_every_operation_answers_as_documented(fuzzed: Fuzzed) -> None:
    await run_fuzz(fuzzed, examples=6)


@pytest.mark.soak
async def test_every_operation_answers_as_documented_at_length(fuzzed: Fuzzed) -> None:
    await run_fuzz(fuzzed, examples=60)
