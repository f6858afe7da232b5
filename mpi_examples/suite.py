"""Judge measured metrics against per-system references, as ReFrame does.

Reference file (JSON, see README.md)::

    {"schema": "mpi_examples/references/v1",
     "systems": {"devcluster:*": {"description": "...",
                                  "references": {"pingpong/bandwidth/1048576": [10000, -0.5, null, "MB/s"]}}}}

Each reference is ``[value, lower, upper, unit]`` (or the same as an object): the metric
passes when ``value * (1 + lower) <= measured <= value * (1 + upper)``; a null bound is open.
"""
import json
from pathlib import Path

from .results import metric_key

REFERENCES_SCHEMA = "mpi_examples/references/v1"
FIELDS = ("value", "lower", "upper", "unit")


class ReferenceError(ValueError):
    """The references file is malformed."""


def _spec(key: str, raw) -> dict:
    spec = dict(zip(FIELDS, raw)) if isinstance(raw, list) else dict(raw)
    if set(spec) != set(FIELDS):
        raise ReferenceError(f"{key}: a reference needs exactly {', '.join(FIELDS)}")
    if not isinstance(spec["value"], (int, float)) or spec["value"] <= 0:
        raise ReferenceError(f"{key}: reference value must be a positive number")
    lower, upper = spec["lower"], spec["upper"]
    if lower is not None and not -1 <= lower <= 0:
        raise ReferenceError(f"{key}: lower must be null or a fraction in [-1, 0]")
    if upper is not None and upper < 0:
        raise ReferenceError(f"{key}: upper must be null or a fraction >= 0")
    return spec


def load_references(path) -> dict:
    """{system key: {metric key: spec}} from a references file, checked."""
    doc = json.loads(Path(path).read_text())
    if doc.get("schema") != REFERENCES_SCHEMA:
        raise ReferenceError(f"{path}: schema must be {REFERENCES_SCHEMA!r}")
    systems = doc.get("systems")
    if not isinstance(systems, dict) or not systems:
        raise ReferenceError(f"{path}: 'systems' must be a non-empty object")
    return {sys_key: {k: _spec(k, v) for k, v in entry.get("references", {}).items()}
            for sys_key, entry in systems.items()}


def select(references: dict, system: str, partition: str) -> tuple[str, dict]:
    """The most specific entry: system:partition, system:*, system, then *."""
    for key in (f"{system}:{partition}", f"{system}:*", system, "*"):
        if key in references:
            return key, references[key]
    raise ReferenceError(f"no references for {system}:{partition} "
                         f"(have: {', '.join(sorted(references))})")


def judge(measured: float, spec: dict) -> tuple[bool, float]:
    """(passed, margin) where margin = measured / reference - 1."""
    margin = measured / spec["value"] - 1
    ok = ((spec["lower"] is None or margin >= spec["lower"])
          and (spec["upper"] is None or margin <= spec["upper"]))
    return ok, margin


def compare(metrics: list, table: dict, benchmarks_run) -> list[dict]:
    """One result per reference of a benchmark that ran, and per unreferenced metric."""
    measured = {metric_key(m): m for m in metrics}
    results = []
    for key, spec in sorted(table.items()):
        if key.split("/")[0] not in benchmarks_run:
            continue
        base = {"key": key, "reference": spec["value"], "lower": spec["lower"],
                "upper": spec["upper"], "unit": spec["unit"], "value": None, "margin": None}
        m = measured.get(key)
        if m is None:
            results.append(base | {"status": "missing", "message": "not measured in this run"})
        elif m["unit"] != spec["unit"]:
            results.append(base | {"status": "fail", "value": m["mean"],
                                   "message": f"unit {m['unit']} != reference unit {spec['unit']}"})
        else:
            ok, margin = judge(m["mean"], spec)
            results.append(base | {"status": "pass" if ok else "fail", "value": m["mean"],
                                   "margin": margin})
    results += [{"key": k, "status": "unreferenced", "value": m["mean"], "unit": m["unit"]}
                for k, m in sorted(measured.items()) if k not in table]
    return results


def passed(results: list) -> bool:
    """No failure, and at least one metric actually compared."""
    statuses = [r["status"] for r in results]
    return "fail" not in statuses and "pass" in statuses


def _bound(spec_value, fraction) -> str:
    return "-" if fraction is None else f"{spec_value * (1 + fraction):.4g}"


def report(results: list, system_key: str) -> str:
    lines = [f"# mpi_examples suite | references: {system_key}",
             f"# {'metric':<34}{'measured':>12}{'reference':>12}{'lower':>10}{'upper':>10}"
             f"{'margin':>9}  unit      result"]
    for r in results:
        if r["status"] == "unreferenced":
            continue
        value = "-" if r["value"] is None else f"{r['value']:.4g}"
        margin = "-" if r["margin"] is None else f"{100 * r['margin']:+.1f}%"
        lines.append(f"  {r['key']:<34}{value:>12}{r['reference']:>12.4g}"
                     f"{_bound(r['reference'], r['lower']):>10}{_bound(r['reference'], r['upper']):>10}"
                     f"{margin:>9}  {r['unit']:<8}  {r['status'].upper()}"
                     + (f" ({r['message']})" if r.get("message") else ""))
    counts = {s: sum(r["status"] == s for r in results)
              for s in ("pass", "fail", "missing", "unreferenced")}
    lines.append("# " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + f" -> {'PASSED' if passed(results) else 'FAILED'}")
    return "\n".join(lines)
