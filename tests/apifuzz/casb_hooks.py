"""Schemathesis hooks for tests/apifuzz/run.py (loaded through SCHEMATHESIS_HOOKS).

positive_data_acceptance says that a request valid by the OpenAPI document must not be
refused with 400 or 422. A few refusals depend on what no JSON schema can say; they are
dropped here, each matched on the service's own problem answer (its `parameter` or `field`
member), so that any other refusal of valid data still fails the run:

- `cursor`: an opaque token that only a previous page hands out; any other string is 400.
- integrations (`config.*`, `credentials.*`): the provider's own fields, listed by
  GET /v1/providers and checked against the provider itself.
- webhooks (`url`, `auth.*`, `finding_types`, `integration_ids`): the destination must
  resolve to an allowed address, which auth members are allowed depends on auth.type,
  finding types must be ids of the catalogue and integrations the account's.
- tokens (`expires_at`): must be in the future.
- a JSON body with an integer beyond 64 bits or a NUL character (\u0000) anywhere: the JSON
  parser refuses it (400), by design. (Generation leaves NUL out, but the coverage phase
  still sends some.)
"""

import json

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

JSON_PARSER_LIMITS = ("too big ", "NUL byte", "\\u0000 is not allowed")
CONTEXT_DEPENDENT_FIELDS = ("config", "credentials", "url", "auth", "finding_types",
                            "integration_ids", "expires_at")


def _problem(response):
    try:
        body = json.loads(response.content or b"")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal_beyond_schema(status, problem):
    if status == 400 and problem.get("parameter") == "cursor":
        return True
    detail = str(problem.get("detail", ""))
    if status == 400 and detail.startswith("invalid JSON body:") and any(
            why in detail for why in JSON_PARSER_LIMITS):
        return True
    field = str(problem.get("field", ""))
    return status == 422 and field.split(".", 1)[0] in CONTEXT_DEPENDENT_FIELDS


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if not isinstance(failure, RejectedPositiveData):
        return True
    return not _refusal_beyond_schema(response.status_code, _problem(response))
