"""Post a result document to the portal that started the run: ``python -m mpi_examples.upload RESULT``.

The address and the token come from the job's environment, as the portal submits it:
``PORTAL_ACCEPTANCE_URL`` (this run's result endpoint) and ``PORTAL_ACCEPTANCE_TOKEN_FILE`` (a
file only the job's user can read, holding an upload-only token for this run). The token
file is deleted once read, so the token is never left on disk, in the environment or in a
process's arguments. Standard library only: the job needs nothing the portal's Python lacks.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

ATTEMPTS = 4  # the portal restarting or a proxy hiccup should not lose a finished run


def read_token(path: str) -> str:
    with open(path, encoding="ascii") as f:
        token = f.read().strip()
    os.unlink(path)
    return token


def post(url: str, token: str, body: bytes, *, timeout: float = 30, attempts: int = ATTEMPTS) -> tuple[int, str]:
    """(status, answer) of the POST; retried on connection errors and 5xx, never on 4xx."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"})
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            answer = exc.read().decode("utf-8", "replace")
            if exc.code < 500 or attempt == attempts - 1:
                return exc.code, answer
        except (urllib.error.URLError, OSError) as exc:
            if attempt == attempts - 1:
                return 0, str(exc)
        time.sleep(2 ** attempt)
    return 0, "no attempt made"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m mpi_examples.upload RESULT.json", file=sys.stderr)
        return 2
    url, token_file = os.environ.get("PORTAL_ACCEPTANCE_URL"), os.environ.get("PORTAL_ACCEPTANCE_TOKEN_FILE")
    if not url or not token_file:
        print("PORTAL_ACCEPTANCE_URL and PORTAL_ACCEPTANCE_TOKEN_FILE must be set", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        body = f.read()
    json.loads(body)  # a broken file fails here, with its own message, not at the portal
    status, answer = post(url, read_token(token_file), body)
    print(f"result posted to {url}: HTTP {status} {answer[:500]}", flush=True)
    return 0 if status == 201 else 1


if __name__ == "__main__":
    sys.exit(main())
