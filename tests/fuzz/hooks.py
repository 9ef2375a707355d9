"""Schemathesis extensions for this API, loaded with SCHEMATHESIS_HOOKS=hooks (tests/fuzz.test.ts).

Only generators for the two named string formats the spec declares and JSON Schema cannot
describe: `cron` (ranges in order, days that exist in the month, the service's interval rule)
and `iana-time-zone` (the time zone database). Every check stays on; negative cases for
these fields are still generated from the rest of the schema (types, lengths).
"""
import schemathesis
from hypothesis import strategies as st

# Building blocks valid in any combination: days 1-28 and L exist in every month, and the fuzz
# run allows seconds fields and a 1 s minimum interval (tests/fuzz.test.ts).
_second = st.sampled_from(["*", "0", "30", "*/10", "0,30", "5-10", "0-59/15"])
_minute = st.sampled_from(["*", "0", "5", "59", "*/5", "*/15", "0,30", "10-20", "0-59/10"])
_hour = st.sampled_from(["*", "0", "8", "23", "*/2", "9-17", "0,12", "8-18/2"])
_day = st.sampled_from(["*", "1", "15", "28", "1-7", "*/10", "L", "1,15"])
_month = st.sampled_from(["*", "1", "6", "12", "1-6", "*/3", "JAN", "DEC", "MAR-SEP"])
_weekday = st.sampled_from(["*", "0", "7", "1-5", "6,0", "MON", "MON-FRI", "SUN"])

_five = st.tuples(_minute, _hour, _day, _month, _weekday).map(" ".join)
_six = st.tuples(_second, _minute, _hour, _day, _month, _weekday).map(" ".join)
schemathesis.openapi.format("cron", st.one_of(_five, _six))

# Zones in both Node's ICU data and any tz database: the service asks Intl, not Python.
_ZONES = [
    "UTC", "Etc/UTC", "Europe/Berlin", "Europe/London", "Europe/Paris", "Europe/Kyiv", "America/New_York",
    "America/Los_Angeles", "America/Sao_Paulo", "America/St_Johns", "Asia/Kolkata", "Asia/Tokyo",
    "Asia/Kathmandu", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Pacific/Chatham",
    "Africa/Cairo", "Africa/Johannesburg", "Atlantic/Azores",
]
schemathesis.openapi.format("iana-time-zone", st.sampled_from(_ZONES))
