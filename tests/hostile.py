"""Values that must never reach a job script or a Slurm command as they are."""
from __future__ import annotations

HOSTILE = [
    "1\n#SBATCH --uid=0",
    "x\nrm -rf ~",
    "5\r\nid",
    "$(id)",
    "`id`",
    "a;id",
    "a && id",
    "a|id",
    "--uid=0",
    "-1",
    "x" * 5000,
    "9" * 40,
    "－－uid=0",  # fullwidth hyphen-minus look-alikes
    "１０",  # fullwidth digits: int() would accept them
    "ｓｔａｔｉｃ",  # a fullwidth spelling of a valid choice
    "stаtic",  # Cyrillic а inside a valid choice
    "a\x00b",
    "a\x1bb",
    "tab\there",
    "\u202eevil",  # right-to-left override
    "static ",
    "true; id",
    "5 --uid=0",
    "'; id; '",
    '"; id; "',
    "${HOME}",
    "~root",
    "../../etc/passwd",
    "/etc",
    'x"; id; echo "',
    "a\nb",
    "$(touch /tmp/pwned)",
    "{{ 7*7 }}",
    "{% raw %}",
]
