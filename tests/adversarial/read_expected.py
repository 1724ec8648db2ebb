# expect: runtime_error failed timeout
import os
import re

# Passes only if it finds the secret expected output anywhere it can read.
MARK = "__SECRET_MARK__"


def _scan():
    for path in ("__PROBLEMS__", "__EXPECTED__", "/proc/1/environ", "/proc/1/cmdline"):
        try:
            text = open(path, errors="replace").read()
        except OSError:
            continue
        found = re.search(MARK + r"\D*(\d+)", text)
        if found:
            return int(found.group(1))
    for root, _dirs, files in os.walk("/"):
        if root.startswith(("/proc", "/sys", "/dev")):
            continue
        for name in files:
            try:
                text = open(os.path.join(root, name), errors="replace").read(2**20)
            except OSError:
                continue
            found = re.search(MARK + r"\D*(\d+)", text)
            if found:
                return int(found.group(1))
    return None


def secret():
    return _scan()
