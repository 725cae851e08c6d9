"""Patches and server-side apply.

- JSON merge patch (RFC 7386), strategic merge patch (lists of named items such as
  containers or env merged by their merge key, as the schema declares), JSON patch (RFC 6902).
- Server-side apply: field sets per manager kept in `metadata.managedFields`
  (FieldsV1 format), conflicts with other managers, removal of fields a manager
  stopped applying. List and map semantics come from the OpenAPI schema
  (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).

All functions take and return plain JSON-like data; none mutates its inputs except
where documented (the `target` of the patch functions, which callers pass as a copy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import schema
from .errors import ApiError
from .util import clone, now

# List-map key fields the server defaults, so an item without them still matches the stored item.
_KEY_DEFAULTS = {"protocol": "TCP"}
_MISSING = object()

# Metadata the server owns: never part of a manager's field set.
_SERVER_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


# -- JSON merge patch ----------------------------------------------------------------------------


def merge_patch(target, patch):
    """RFC 7386: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    out = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


# -- strategic merge patch -------------------------------------------------------------------------


def strategic_merge_patch(target, patch, node):
    """Kubernetes strategic merge patch with the common directives ($patch, $retainKeys,
    $deleteFromPrimitiveList, $setElementOrder). Returns None when the patch deletes the map."""
    if not isinstance(patch, dict):
        return clone(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [v for v in out[name] if v not in (value or ())]
            continue
        sub = schema.child(node, key)
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and not schema.is_atomic_map(sub):
            merged = strategic_merge_patch(out.get(key), value, sub)
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        elif isinstance(value, list):
            out[key] = _merge_list(out.get(key), value, sub)
        else:
            out[key] = clone(value)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        for key in list(out):
            if key not in retain:
                del out[key]
    return out


def _merge_list(current, patch_list: list, node) -> list:
    strategy, merge_key = schema.patch_strategy(node)
    if "merge" not in strategy.split(","):
        return [clone(v) for v in patch_list]
    current = list(current) if isinstance(current, list) else []
    if merge_key is None:
        return current + [clone(v) for v in patch_list if v not in current]
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch_list):
        return [clone(v) for v in patch_list if not (isinstance(v, dict) and "$patch" in v)]
    position = {item.get(merge_key): i for i, item in enumerate(current) if isinstance(item, dict)}
    item_node = schema.items(node)
    for item in patch_list:
        if not isinstance(item, dict):
            continue
        key = item.get(merge_key)
        if item.get("$patch") == "delete":
            if key in position:
                current[position[key]] = None
            continue
        if key in position and current[position[key]] is not None:
            current[position[key]] = strategic_merge_patch(current[position[key]], item, item_node)
        else:
            position[key] = len(current)
            current.append(clone(item))
    return [v for v in current if v is not None]


# -- JSON patch --------------------------------------------------------------------------------------


def json_patch(doc, operations: list):
    """RFC 6902 (add, remove, replace, move, copy, test). Raises a 422 ApiError when an operation fails."""
    if not isinstance(operations, list):
        raise ApiError(400, "json patch must be a list of operations")
    for op in operations:
        try:
            doc = _json_patch_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                422, f"the server rejected our request due to an error in our request: {exc}", "Invalid"
            ) from exc
    return doc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc, parts: list[str]):
    cur = doc
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    return cur


def _json_patch_op(doc, op: dict):
    kind, parts = op["op"], _pointer(op["path"])
    if kind == "test":
        value = doc
        for part in parts:
            value = value[int(part)] if isinstance(value, list) else value[part]
        if value != op["value"]:
            raise ValueError(f"testing value {op['path']} failed")
        return doc
    if kind in ("move", "copy"):
        source = _pointer(op["from"])
        value = doc
        for part in source:
            value = value[int(part)] if isinstance(value, list) else value[part]
        value = clone(value)
        if kind == "move":
            doc = _json_patch_op(doc, {"op": "remove", "path": op["from"]})
        return _json_patch_op(doc, {"op": "add", "path": op["path"], "value": value})
    if not parts:
        if kind == "remove":
            raise ValueError("cannot remove the document root")
        return clone(op["value"])
    parent, last = _parent(doc, parts), parts[-1]
    if kind == "add":
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), clone(op["value"]))
        else:
            parent[last] = clone(op["value"])
    elif kind == "remove":
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    elif kind == "replace":
        if isinstance(parent, list):
            parent[int(last)] = clone(op["value"])
        else:
            if last not in parent:
                raise KeyError(f"replace operation does not apply: doc is missing path: {op['path']}")
            parent[last] = clone(op["value"])
    else:
        raise ValueError(f"unknown operation {kind!r}")
    return doc


# -- field sets ---------------------------------------------------------------------------------------


def _item_key(item: dict, keys: tuple[str, ...]) -> str:
    spec = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys if k in item or k in _KEY_DEFAULTS}
    return "k:" + json.dumps(spec, separators=(",", ":"), sort_keys=True)


def _value_key(value) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"), sort_keys=True)


def field_set(obj: dict, node, *, ignore_status: bool) -> set[tuple[str, ...]]:
    """The fields `obj` sets, as paths of FieldsV1 elements (`f:spec`, `k:{"name":"web"}`, `v:"x"`)."""
    out: set[tuple[str, ...]] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status" and ignore_status):
            continue
        if key == "metadata" and isinstance(value, dict):
            meta_node = schema.child(node, "metadata")
            for mkey, mvalue in value.items():
                if mkey not in _SERVER_META:
                    _walk(mvalue, schema.child(meta_node, mkey), ("f:metadata", "f:" + mkey), out)
            continue
        _walk(value, schema.child(node, key), ("f:" + key,), out)
    return out


def _walk(value, node, path: tuple[str, ...], out: set) -> None:
    if isinstance(value, dict) and not schema.is_atomic_map(node):
        if not value:
            out.add(path)
        for key, sub in value.items():
            _walk(sub, schema.child(node, key), path + ("f:" + key,), out)
    elif isinstance(value, list):
        kind, keys = schema.list_type(node)
        if kind == "map" and all(isinstance(i, dict) for i in value):
            item_node = schema.items(node)
            for item in value:
                item_path = path + (_item_key(item, keys),)
                out.add(item_path)
                for key, sub in item.items():
                    _walk(sub, schema.child(item_node, key), item_path + ("f:" + key,), out)
        elif kind == "set":
            for item in value:
                out.add(path + (_value_key(item),))
        else:
            out.add(path)
    else:
        out.add(path)


def _locate(obj, path: tuple[str, ...]):
    cur = obj
    for element in path:
        prefix, rest = element[:2], element[2:]
        if prefix == "f:":
            if not isinstance(cur, dict) or rest not in cur:
                return _MISSING
            cur = cur[rest]
        elif prefix == "k:":
            if not isinstance(cur, list):
                return _MISSING
            cur = _find_item(cur, json.loads(rest))
            if cur is _MISSING:
                return _MISSING
        elif prefix == "v:":
            value = json.loads(rest)
            return value if isinstance(cur, list) and value in cur else _MISSING
    return cur


def _find_item(items: list, spec: dict):
    for item in items:
        if isinstance(item, dict) and all(item.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in spec.items()):
            return item
    return _MISSING


def _remove(obj: dict, path: tuple[str, ...]) -> None:
    """Remove the field at `path`, then any map or list the removal left empty."""
    trail = [obj]
    cur = obj
    for element in path[:-1]:
        cur = _locate(cur, (element,))
        if cur is _MISSING:
            return
        trail.append(cur)
    _remove_element(trail[-1], path[-1])
    for depth in range(len(path) - 1, 0, -1):
        container = trail[depth]
        if container or depth == 1 and path[0] == "f:metadata":
            break
        _remove_element(trail[depth - 1], path[depth - 1])


def _remove_element(container, element: str) -> None:
    prefix, rest = element[:2], element[2:]
    if prefix == "f:" and isinstance(container, dict):
        container.pop(rest, None)
    elif prefix == "k:" and isinstance(container, list):
        item = _find_item(container, json.loads(rest))
        if item is not _MISSING:
            container.remove(item)
    elif prefix == "v:" and isinstance(container, list):
        value = json.loads(rest)
        if value in container:
            container.remove(value)


def _is_item_key(path: tuple[str, ...]) -> bool:
    """A key field (`f:name`) of a list-map item (`k:{"name":...}`)."""
    return (
        len(path) >= 2
        and path[-2].startswith("k:")
        and path[-1].startswith("f:")
        and path[-1][2:] in json.loads(path[-2][2:])
    )


def _is_leaf(path: tuple[str, ...]) -> bool:
    return not path[-1].startswith(("k:", "v:"))


def render_path(path: tuple[str, ...]) -> str:
    """`.spec.template.spec.containers[name="web"].image`, as conflict messages show it."""
    out = []
    for element in path:
        prefix, rest = element[:2], element[2:]
        if prefix == "f:":
            out.append("." + rest)
        elif prefix == "k:":
            spec = json.loads(rest)
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in spec.items()) + "]")
        else:
            out.append(f"[={rest}]")
    return "".join(out)


# -- managedFields ------------------------------------------------------------------------------------


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[tuple[str, ...]] = field(default_factory=set)
    subresource: str | None = None
    changed: bool = False

    def matches(self, manager: str, operation: str, subresource: str | None) -> bool:
        return (self.manager, self.operation, self.subresource) == (manager, operation, subresource)


def decode_managed(managed: list[dict] | None) -> list[Entry]:
    entries = []
    for raw in managed or ():
        entries.append(
            Entry(
                raw.get("manager", ""),
                raw.get("operation", "Update"),
                raw.get("apiVersion", ""),
                raw.get("time", ""),
                _decode_fields(raw.get("fieldsV1") or {}, ()),
                raw.get("subresource"),
            )
        )
    return entries


def _decode_fields(fields: dict, prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for key, sub in fields.items():
        if key == ".":
            out.add(prefix)
        elif not sub:
            out.add(prefix + (key,))
        else:
            out |= _decode_fields(sub, prefix + (key,))
    return out


def encode_managed(entries: list[Entry]) -> list[dict]:
    out = []
    for e in entries:
        if not e.paths:
            continue
        raw = {
            "manager": e.manager,
            "operation": e.operation,
            "apiVersion": e.api_version,
            "time": e.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": _encode_fields(e.paths),
        }
        if e.subresource:
            raw["subresource"] = e.subresource
        out.append(raw)
    return out


def _encode_fields(paths: set[tuple[str, ...]]) -> dict:
    trie: dict = {}
    for path in paths:
        node = trie
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}

    def finish(node: dict) -> dict:
        children = {k: finish(v) for k, v in sorted(node.items()) if k != "."}
        if children and "." in node:
            return {".": {}, **children}
        return children

    return finish(trie)


def _entry(
    entries: list[Entry], manager: str, operation: str, api_version: str, subresource: str | None = None
) -> Entry:
    for e in entries:
        if e.matches(manager, operation, subresource):
            return e
    e = Entry(manager, operation, api_version, now(), subresource=subresource, changed=True)
    entries.append(e)
    return e


def _set_paths(entry: Entry, paths: set, api_version: str) -> None:
    if paths != entry.paths or entry.api_version != api_version:
        entry.paths = paths
        entry.api_version = api_version
        entry.time = now()


# -- server-side apply ----------------------------------------------------------------------------------


def _merge_applied(live, config, node):
    if isinstance(config, dict) and isinstance(live, dict) and not schema.is_atomic_map(node):
        out = dict(live)
        for key, value in config.items():
            out[key] = _merge_applied(live[key], value, schema.child(node, key)) if key in live else clone(value)
        return out
    if isinstance(config, list) and isinstance(live, list):
        kind, keys = schema.list_type(node)
        if kind == "map" and all(isinstance(i, dict) for i in config + live):
            item_node = schema.items(node)
            by_key = {_item_key(i, keys): i for i in live}
            seen = set()
            out = []
            for item in config:
                key = _item_key(item, keys)
                seen.add(key)
                out.append(_merge_applied(by_key[key], item, item_node) if key in by_key else clone(item))
            out.extend(i for i in live if _item_key(i, keys) not in seen)
            return out
        if kind == "set":
            return [clone(i) for i in config] + [i for i in live if i not in config]
    return clone(config)


def apply(live: dict, config: dict, *, manager: str, force: bool, node, ignore_status: bool, api_version: str) -> dict:
    """Server-side apply of `config` by `manager` onto `live` (a private copy; {} when creating).
    Returns the merged object with updated `metadata.managedFields`; raises 409 on conflicts unless forced."""
    if ignore_status:
        config = {k: v for k, v in config.items() if k != "status"}
    entries = decode_managed((live.get("metadata") or {}).get("managedFields"))
    applied = field_set(config, node, ignore_status=ignore_status)
    merged = _merge_applied(live, config, node)
    mine = _entry(entries, manager, "Apply", api_version)
    conflicts = []
    for other in entries:
        if other is mine:
            continue
        for path in other.paths & applied:
            if not _is_leaf(path):
                continue
            before = _locate(live, path)
            if before is not _MISSING and before != _locate(merged, path):
                conflicts.append((other, path))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for other, path in conflicts:
        other.paths.discard(path)
        other.time = now()
    owned_by_others = set()
    for other in entries:
        if other is not mine:
            for path in other.paths:
                owned_by_others.update(path[:i] for i in range(1, len(path) + 1))
    # Parents first: removing a list item removes its fields; an item's key fields go only with the item.
    for path in sorted(mine.paths - applied, key=len):
        if path not in owned_by_others and not _is_item_key(path):
            _remove(merged, path)
    _set_paths(mine, applied, api_version)
    merged.setdefault("metadata", {})["managedFields"] = encode_managed(entries)
    return merged


def record_update(
    old: dict | None,
    new: dict,
    *,
    manager: str,
    node,
    ignore_status: bool,
    api_version: str,
    subresource: str | None = None,
) -> None:
    """Give `manager` (operation Update) the fields a non-apply write changed; sets `new`'s managedFields."""
    entries = decode_managed(((old or {}).get("metadata") or {}).get("managedFields"))
    new_paths = field_set(new, node, ignore_status=ignore_status)
    if old is None:
        changed, removed = new_paths, set()
    else:
        old_paths = field_set(old, node, ignore_status=ignore_status)
        removed = old_paths - new_paths
        changed = {p for p in new_paths if p not in old_paths or _locate(old, p) != _locate(new, p)}
    if changed or removed:
        mine = _entry(entries, manager, "Update", api_version, subresource)
        for e in entries:
            remaining = e.paths - removed - (changed if e is not mine else set())
            if e is mine:
                remaining |= changed
            if remaining != e.paths:
                _set_paths(e, remaining, e.api_version if e is not mine else api_version)
    new.setdefault("metadata", {})["managedFields"] = encode_managed(entries)


def _conflict_error(conflicts: list) -> ApiError:
    count = len(conflicts)
    by_manager: dict[tuple[str, str], list[str]] = {}
    for entry, path in conflicts:
        by_manager.setdefault((entry.manager, entry.api_version), []).append(render_path(path))
    parts = []
    for (manager, version), paths in by_manager.items():
        if len(paths) == 1:
            parts.append(f'conflict with "{manager}" using {version}: {paths[0]}')
        else:
            parts.append(f'conflicts with "{manager}" using {version}:\n' + "\n".join(f"- {p}" for p in paths))
    message = f"Apply failed with {count} conflict{'s' if count > 1 else ''}: " + "\n".join(parts)
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{e.manager}" using {e.api_version}',
            "field": render_path(p),
        }
        for e, p in conflicts
    ]
    return ApiError(409, message, "Conflict", {"causes": causes})
