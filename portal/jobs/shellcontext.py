"""Where in a bash script a piece of text lands: plain code, a quoted string, a heredoc, ...

A template value is printed as one shell-quoted word (``shlex.quote``). That word is safe
only where bash reads code: inside a double-quoted string its single quotes are literal
and ``$(...)`` still runs; inside a heredoc, a comment, backticks, ``${...}`` or arithmetic
it is not one word either. This module follows bash's quoting just far enough to tell those
places apart, so that a template can be refused (at load time, with the line) or a rendered
script checked (every time) when a value sits anywhere but in plain code.

It is deliberately conservative: what it cannot follow counts as "not plain code".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CODE, SUBST = "code", "command substitution"
SQUOTE, DQUOTE, ANSI = "a single-quoted string", "a double-quoted string", "a $'...' string"
BACKTICK, BRACE, ARITH = "backticks", "a ${...} expansion", "an arithmetic expression"
COMMENT, HEREDOC = "a comment", "a heredoc"
AFTER_DOLLAR = "right after a $"
SAFE = {CODE, SUBST}
_WORD_BREAK = set(" \t\n;&|()<>")
# The delimiter is a whole word; bash removes its quotes and backslashes (E"O"F means EOF).
_HEREDOC = re.compile(r"<<(-?)[ \t]*([^\s;&|()<>]+)")


@dataclass(frozen=True)
class Landing:
    offset: int  # where the marker was in the text
    context: str

    @property
    def safe(self) -> bool:
        return self.context in SAFE


# What opens a nested context after "$", longest first: "$((" must not be read as "$(".
_OPENERS = {"$((": ARITH, "$(": SUBST, "${": BRACE}


def landings(text: str, marker: str) -> list[Landing]:
    """The context of every ``marker`` (one character) in ``text``."""
    found: list[Landing] = []
    stack: list[list] = [[CODE, 0]]  # [context, paren depth]
    pending: list[tuple[str, bool]] = []  # heredocs that start after this line
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        top = stack[-1]
        state = top[0]
        if c == marker:
            found.append(Landing(i, AFTER_DOLLAR if i and text[i - 1] == "$" and state in SAFE else state))
            i += 1
            continue
        if state == HEREDOC:
            i = _skip_heredoc(text, i, top, stack, marker, found)
            continue
        if state == COMMENT:
            if c == "\n":
                stack.pop()
                continue  # the newline itself is code (it may start a heredoc)
            i += 1
            continue
        if state == SQUOTE:
            if c == "'":
                stack.pop()
            i += 1
            continue
        if c == "\\" and state != SQUOTE:
            i += 2
            continue
        if state in (ANSI, BACKTICK, DQUOTE, BRACE, ARITH) and c == _CLOSER.get(state):
            if state == ARITH and not _closes_arith(text, i, top):
                i += 1
                continue
            stack.pop()
            i += 2 if state == ARITH else 1
            continue
        if state == ANSI:
            i += 1
            continue
        opener = next((o for o in _OPENERS if text.startswith(o, i)), None)
        if opener is not None:
            stack.append([_OPENERS[opener], 0])
            i += len(opener)
            continue
        if c == "`" and state != BACKTICK:
            stack.append([BACKTICK, 0])
            i += 1
            continue
        if state == DQUOTE:
            i += 1
            continue
        if c == '"':
            stack.append([DQUOTE, 0])
        elif text.startswith("$'", i):
            stack.append([ANSI, 0])
            i += 1
        elif c == "'":
            stack.append([SQUOTE, 0])
        elif state == ARITH:
            top[1] += {"(": 1, ")": -1}.get(c, 0)
        elif state in (CODE, SUBST) and c == "#" and (i == 0 or text[i - 1] in _WORD_BREAK):
            stack.append([COMMENT, 0])
        elif state in (CODE, SUBST) and text.startswith("((", i) and (i == 0 or text[i - 1] in _WORD_BREAK):
            stack.append([ARITH, 0])
            i += 1
        elif state == SUBST and c == "(":
            top[1] += 1
        elif state == SUBST and c == ")":
            if top[1] == 0:
                stack.pop()
            else:
                top[1] -= 1
        elif c == "<" and state in (CODE, SUBST):
            if text.startswith("<<<", i):  # a here-string: a plain word follows
                i += 3
                continue
            match = _HEREDOC.match(text, i)
            if match:
                if marker in match[2]:  # a value as the delimiter: where the heredoc ends is the value's
                    found.append(Landing(match.start(2) + match[2].index(marker), "a heredoc delimiter"))
                pending.append((re.sub(r"[\"'\\]", "", match[2]), bool(match[1])))
                i = match.end()
                continue
        elif c == "\n" and pending:
            delimiter, strip_tabs = pending.pop(0)
            stack.append([HEREDOC, (delimiter, strip_tabs, pending)])
            pending = []
        i += 1
    return found


_CLOSER = {ANSI: "'", BACKTICK: "`", DQUOTE: '"', BRACE: "}", ARITH: ")"}


def _closes_arith(text: str, i: int, top: list) -> bool:
    if top[1] > 0:
        top[1] -= 1
        return False
    return text.startswith("))", i)


def _skip_heredoc(text: str, i: int, top: list, stack: list, marker: str, found: list) -> int:
    """Consume one heredoc line starting at ``i``; leave the heredoc after its delimiter line."""
    delimiter, strip_tabs, queued = top[1]
    end = text.find("\n", i)
    end = len(text) if end < 0 else end
    line = text[i:end]
    for offset, char in enumerate(line):
        if char == marker:
            found.append(Landing(i + offset, HEREDOC))
    if (line.lstrip("\t") if strip_tabs else line).replace(marker, "") == delimiter:
        stack.pop()
        if queued:  # cat <<A <<B: the next body follows at once
            following, tabs = queued.pop(0)
            stack.append([HEREDOC, (following, tabs, queued)])
    return end + 1
