"""An ended job's efficiency in words, as ``seff`` prints it: the job page and ``flask jobs show``
show the same lines; the API gives the numbers (see :class:`portal.slurm.types.JobEfficiency`)."""
from __future__ import annotations

from flask_babel import format_decimal, format_percent, ngettext
from flask_babel import gettext as _

from portal.slurm.types import JobEfficiency


def duration_text(seconds: float) -> str:
    """'0:00:13', '1-02:03:04' (Slurm's notation); fractions of a second kept to milliseconds."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    text = f"{rest // 3600:0{2 if days else 1}d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    if seconds != whole:
        text += f".{round((seconds - whole) * 1000):03d}"
    return f"{days}-{text}" if days else text


def _mib(kib: int) -> str:
    return _("%(n)s MiB", n=format_decimal(kib / 1024, format="#,##0.00"))


def _percent(fraction: float) -> str:
    return format_percent(fraction, format="#,##0.00%")


def efficiency_facts(eff: JobEfficiency) -> list[tuple[str, str]]:
    """(label, text) lines for an ended job."""
    facts = [(_("Ended"), _("%(state)s, exit code %(code)s", state=eff.state.value, code=eff.exit_code or "?"))]
    if eff.tasks > 1:
        facts.append((_("Array tasks"), format_decimal(eff.tasks)))
    if eff.cpu_efficiency is None:
        cpu = _("no CPU time allocated (the job did not run)")
    else:
        cpu = ngettext("%(percent)s of %(walltime)s core-walltime (%(num)d CPU); CPU used %(used)s",
                       "%(percent)s of %(walltime)s core-walltime (%(num)d CPUs); CPU used %(used)s",
                       eff.alloc_cpus, percent=_percent(eff.cpu_efficiency),
                       walltime=duration_text(eff.cpu_time_seconds), used=duration_text(eff.total_cpu_ms / 1000))
    facts.append((_("CPU efficiency"), cpu))
    if eff.max_rss_kib is None:
        memory = _("not measured (the job ended before Slurm sampled its memory)")
    elif eff.memory_efficiency is None:
        memory = _("%(used)s at most; no memory request known", used=_mib(eff.max_rss_kib))
    else:
        memory = _("%(used)s at most, %(percent)s of %(requested)s requested", used=_mib(eff.max_rss_kib),
                   percent=_percent(eff.memory_efficiency), requested=_mib(eff.requested_mem_kib or 0))
    facts.append((_("Memory high-water mark"), memory))
    if eff.gpus:
        gpu = ngettext("%(time)s (%(num)d GPU × elapsed)", "%(time)s (%(num)d GPUs × elapsed)", eff.gpus,
                       time=duration_text(eff.gpu_seconds))
    else:
        gpu = _("none (no GPUs allocated)")
    facts.append((_("GPU-time"), gpu))
    if eff.time_used is None:
        elapsed = _("%(elapsed)s (no time limit)", elapsed=duration_text(eff.elapsed_seconds))
    else:
        elapsed = _("%(elapsed)s of a %(limit)s time limit (%(percent)s)", elapsed=duration_text(eff.elapsed_seconds),
                    limit=duration_text((eff.time_limit_minutes or 0) * 60), percent=_percent(eff.time_used))
    facts.append((_("Elapsed"), elapsed))
    return facts
