#!/usr/bin/env python3
"""The verdict on one conformance scenario run, from the suite's checks.json.

    verdict.py CHECKS_JSON SCENARIO VERSION TARGET NOT_APPLICABLE_FILE

Prints one line, `PASS`, `PASS (n/a: …; warnings: …)` or `FAIL: check-id, …`, and exits 0 for a
pass, 1 for a failure (a warning, the suite's verdict on a SHOULD, does not fail). A check the suite reports as FAILURE fails the scenario unless not-applicable.txt
lists it (`SCENARIO:CHECK-ID` for this version and target). A listed check that passes fails the
scenario too: the entry is stale and must go.
"""

import fnmatch
import json
import sys


def excused_checks(path, scenario, version, target):
    excused = {}
    with open(path, encoding="utf-8") as listing:
        for line in listing:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, versions, targets, reason = line.split(None, 3)
            if ":" not in name:
                continue
            listed_scenario, check = name.split(":", 1)
            if (
                listed_scenario == scenario
                and fnmatch.fnmatch(version, versions)
                and fnmatch.fnmatch(target, targets)
            ):
                excused[check] = reason
    return excused


def main():
    checks_path, scenario, version, target, not_applicable = sys.argv[1:6]
    try:
        with open(checks_path, encoding="utf-8") as f:
            checks = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAIL: no checks.json ({e})")
        return 1
    excused = excused_checks(not_applicable, scenario, version, target)
    failed, waived, warned = [], [], []
    for check in checks:
        check_id = check.get("id", "?")
        if check.get("status") == "FAILURE":
            (waived if check_id in excused else failed).append(check_id)
        elif check.get("status") == "SUCCESS" and check_id in excused:
            failed.append(check_id + " (passes: remove it from not-applicable.txt)")
        elif check.get("status") == "WARNING":
            warned.append(check_id)
    if failed:
        print("FAIL: " + ", ".join(sorted(set(failed))))
        return 1
    notes = []
    if waived:
        notes.append("n/a: " + ", ".join(sorted(set(waived))))
    if warned:
        notes.append("warnings: " + ", ".join(sorted(set(warned))))
    print("PASS" + (" (" + "; ".join(notes) + ")" if notes else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
