"""Schemathesis extensions for this API, loaded with SCHEMATHESIS_HOOKS=hooks (tests/fuzz.test.ts).

Only generators for the named string formats the spec declares and JSON Schema cannot
describe: `cron` (ranges in order, days that exist in every month, the service's interval
rules), `cron-min-interval-<N>` (a job type's own minimum gap of N seconds) and
`iana-time-zone` (the time zone database). Every check stays on; negative cases for these
fields are still generated from the rest of the schema (types, lengths).
"""
import json
import pathlib
import re

import schemathesis
from hypothesis import strategies as st

# Building blocks valid in any combination: days 1-28 and L exist in every month, and the fuzz
# run allows seconds fields and a 1 s service minimum (tests/fuzz.test.ts).
_SECOND = ["*", "0", "30", "*/10", "0,30", "5-10", "0-59/15"]
_MINUTE = ["*", "0", "5", "59", "*/5", "*/15", "0,30", "10-20", "0-59/10"]
_HOUR = ["*", "0", "8", "23", "*/2", "9-17", "0,12", "8-18/2"]
_DAY = ["*", "1", "15", "28", "1-7", "*/10", "L", "1,15"]
_MONTH = ["*", "1", "6", "12", "1-6", "*/3", "JAN", "DEC", "MAR-SEP"]
_WEEKDAY = ["*", "0", "7", "1-5", "6,0", "MON", "MON-FRI", "SUN"]
_ONE_VALUE = ["0", "5", "30", "59"]


def crons(min_seconds: int) -> st.SearchStrategy:
    """Crons whose fires are at least `min_seconds` apart on the wall clock (up to a day)."""
    if min_seconds > 86400:
        raise ValueError(f"no generator for crons {min_seconds} s apart; add one here")
    pick = st.sampled_from
    # Each field that may vary at all varies freely; the finer ones are pinned to one value.
    second = pick(_SECOND) if min_seconds <= 1 else pick(["0"])
    minute = pick(_MINUTE) if min_seconds <= 60 else pick(_ONE_VALUE)
    hour = pick(_HOUR) if min_seconds <= 3600 else pick(["0", "8", "23"])
    rest = st.tuples(pick(_DAY), pick(_MONTH), pick(_WEEKDAY))
    five = st.tuples(minute, hour, rest).map(lambda t: " ".join([t[0], t[1], *t[2]]))
    six = st.tuples(second, minute, hour, rest).map(lambda t: " ".join([t[0], t[1], t[2], *t[3]]))
    return st.one_of(five, six)


schemathesis.openapi.format("cron", crons(1))

# Every per-type minimum the spec names (the committed spec equals the served one).
_SPEC = (pathlib.Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text()
for _seconds in {int(n) for n in re.findall(r'"format": "cron-min-interval-(\d+)"', _SPEC)}:
    schemathesis.openapi.format(f"cron-min-interval-{_seconds}", crons(_seconds))

# Zones in both Node's ICU data and any tz database: the service asks Intl, not Python.
_ZONES = [
    "UTC", "Etc/UTC", "Europe/Berlin", "Europe/London", "Europe/Paris", "Europe/Kyiv", "America/New_York",
    "America/Los_Angeles", "America/Sao_Paulo", "America/St_Johns", "Asia/Kolkata", "Asia/Tokyo",
    "Asia/Kathmandu", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham",
    "Africa/Cairo", "Africa/Johannesburg", "Atlantic/Azores",
]
schemathesis.openapi.format("iana-time-zone", st.sampled_from(_ZONES))

# The preview applies the minimum interval of the job type named in `type`, a rule between two
# query parameters no schema states. The job variants publish each type's minimum (their
# `cron-min-interval-N` format), so a generated cron is coarsened to respect it: seconds, then
# minutes, then hours pinned. Only crons from the generators above are touched (negative cases
# keep whatever makes them invalid).
_TYPE_MINIMUM = {}
for _schema in json.loads(_SPEC).get("components", {}).get("schemas", {}).values():
    _props = _schema.get("properties", {})
    _format = _props.get("cron", {}).get("format", "")
    _types = _props.get("type", {}).get("enum", [])
    if _format.startswith("cron-min-interval-") and len(_types) == 1:
        _TYPE_MINIMUM[_types[0]] = int(_format.rsplit("-", 1)[1])
_GENERATED = re.compile(r"^[0-9A-Z*,/L-]+( [0-9A-Z*,/L-]+){4,5}$")


def _coarsen(cron: str, min_seconds: int) -> str:
    fields = cron.split(" ")
    minute = len(fields) - 5  # index of the minute field (a sixth, leading one is seconds)
    if minute == 1 and min_seconds > 1:
        fields[0] = "0"
    if min_seconds > 60:
        fields[minute] = "0"
    if min_seconds > 3600:
        fields[minute + 1] = "0"
    return " ".join(fields)


@schemathesis.hook
def map_query(ctx, query):
    if ctx.operation is None or ctx.operation.path != "/api/cron/preview" or not isinstance(query, dict):
        return query
    minimum = _TYPE_MINIMUM.get(query.get("type")) if isinstance(query.get("type"), str) else None
    cron = query.get("cron")
    if minimum and isinstance(cron, str) and _GENERATED.match(cron):
        return {**query, "cron": _coarsen(cron, minimum)}
    return query
