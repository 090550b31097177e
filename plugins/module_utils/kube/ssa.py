# Copyright: karpenter_eks.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Server-side apply, predicted offline (plain Python, no Ansible or Kubernetes import).

Used to plan without a write request (check mode sends none) and to make ``--diff`` show what the
apiserver will actually store:

* ``owned_paths(live, manager)`` - the leaf field paths ``manager`` owns, read from ``managedFields``
  (``fieldsV1``). Karpenter's CRD lists are atomic, so ``f:`` keys are enough; any other key
  (``k:``/``v:``/``i:``) marks its parent as owned as a whole.
* ``predict(live, desired, owned)`` - what SSA with ``force=true`` leaves: ``live`` with the fields the
  manager owned but no longer sends removed, then ``desired`` merged in (maps merge, lists are atomic).
* ``removable_paths(live, manager)`` - the owned paths no other manager co-owns (only those can go).
* ``removed_paths(owned, desired)`` - the owned paths the new request drops.
"""

from __future__ import annotations

import copy
from typing import Any


def _walk_fields(fields, prefix, out):
    leaf = True
    for key, sub in (fields or {}).items():
        if key == ".":
            continue
        if key.startswith("f:"):
            leaf = False
            _walk_fields(sub, prefix + (key[2:],), out)
        else:  # keyed list item or set value: the container is owned as a whole (atomic for us)
            leaf = False
            out.add(prefix)
            return
    if leaf and prefix:
        out.add(prefix)


def owned_paths(live: dict | None, manager: str) -> set:
    """Set of tuples: the leaf paths ``manager`` owns through an Apply operation."""
    out = set()
    for entry in (live or {}).get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            _walk_fields(entry.get("fieldsV1") or {}, (), out)
    return out


def owned_paths_of_others(live: dict | None, manager: str) -> set:
    """Set of tuples: the leaf paths every other field manager owns (any operation), and ``manager``'s
    through an Update. Server-side apply removes a field the applier stops sending only if none of them
    owns it as well."""
    out = set()
    for entry in (live or {}).get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            _walk_fields(entry.get("fieldsV1") or {}, (), out)
    return out


def _overlaps(path, others):
    return any(o[: len(path)] == path or path[: len(o)] == o for o in others)


def removable_paths(live: dict | None, manager: str) -> set:
    """Set of tuples: the paths ``manager`` owns through Apply that no other manager co-owns. Only these are
    removed when ``manager`` stops sending them; a co-owned field stays (server-side apply semantics)."""
    others = owned_paths_of_others(live, manager)
    return set(p for p in owned_paths(live, manager) if not _overlaps(p, others))


def _has(obj, path):
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return False
        cur = cur[p]
    return True


def removed_paths(owned: set, desired: dict) -> list:
    """Owned leaf paths that the desired object no longer contains (SSA removes them)."""
    return sorted(p for p in owned if p and p[0] not in ("status",) and not _has(desired, p))


def _delete(obj, path):
    cur = obj
    for p in path[:-1]:
        if not isinstance(cur, dict) or p not in cur:
            return
        cur = cur[p]
    if isinstance(cur, dict):
        cur.pop(path[-1], None)


def _prune_empty(obj, path):
    """Drop maps left empty by a removal (the apiserver does not keep empty owned parents)."""
    for i in range(len(path) - 1, 0, -1):
        cur = obj
        for p in path[: i - 1]:
            cur = cur.get(p, {}) if isinstance(cur, dict) else {}
        parent_key = path[i - 1]
        if isinstance(cur, dict) and cur.get(parent_key) == {}:
            del cur[parent_key]
        else:
            break


def merge(base: Any, overlay: Any) -> Any:
    """Merge ``overlay`` into a copy of ``base``: dicts recursively, everything else replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for k, v in overlay.items():
            out[k] = merge(base.get(k), v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(overlay)


def predict(live: dict, desired: dict, owned: set) -> dict:
    """Object the apiserver will hold after applying ``desired`` (both already normalised)."""
    after = copy.deepcopy(live or {})
    for path in removed_paths(owned, desired):
        _delete(after, path)
        _prune_empty(after, path)
    return merge(after, desired)
