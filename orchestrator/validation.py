"""Kubernetes' validation rules for every kind Skiff serves, so a bad object is refused at the door.

The rules follow k8s.io/apimachinery/pkg/util/validation and the core, apps and networking validation
packages; messages follow field.Error ('<path>: Invalid value: "x": <detail>'), one line, the first
broken rule only. Any JSON-like input gives a FieldError or nothing, never a TypeError. A null field
counts as absent (Go decodes it to nil). Pure stdlib: imports nothing of the orchestrator.
"""

import ipaddress
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# ---------------------------------------------------------------- errors and messages


class FieldError(ValueError):
    """One invalid field; str() is one line: '<path>: <Kubernetes-style message>'."""

    detail = ""  # of an "Invalid value" error: the text after the value

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def quote(value: str, limit: int = 64) -> str:
    """`value` JSON-quoted and escaped (newlines, NUL, lone surrogates), cut to `limit` characters + '...'."""
    text = json.dumps(value[:limit], ensure_ascii=True)
    return text + "..." if len(value) > limit else text


def _clip(value: Any, depth: int = 0) -> Any:
    """A small copy of a JSON-like value for showing: short strings, few items, shallow, JSON-safe."""
    if isinstance(value, str):
        return value[:65]
    if isinstance(value, Mapping | list | tuple) and depth >= 4:
        return "..."
    if isinstance(value, Mapping):
        items = itertools.islice(value.items(), 8)
        return {k[:65] if isinstance(k, str) else "?": _clip(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [_clip(v, depth + 1) for v in value[:8]]
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return "<a very large integer>"
    return value if value is None or isinstance(value, bool | int | float) else type(value).__name__


def show(value: Any, limit: int = 64) -> str:
    """A bad value as field.Error shows it: a quoted string, or short JSON."""
    if isinstance(value, str):
        return quote(value, limit)
    text = json.dumps(_clip(value), ensure_ascii=True, separators=(",", ":"))
    return text[:limit] + "..." if len(text) > limit else text


def _key(path: str, key: Any) -> str:
    """`path[key]` (field.Path.Key); an unusual key is quoted so the path stays one short line."""
    plain = isinstance(key, str) and re.fullmatch(r"[-._/a-zA-Z0-9]{1,64}", key)
    return f"{path}[{key if plain else show(key)}]"


def invalid(path: str, value: Any, detail: str) -> FieldError:
    error = FieldError(path, f"Invalid value: {show(value)}: {detail}")
    error.detail = detail
    return error


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, "Required value" + (f": {detail}" if detail else ""))


def unsupported(path: str, value: Any, allowed: tuple[str, ...]) -> FieldError:
    choices = ", ".join(json.dumps(a) for a in allowed)
    return FieldError(path, f"Unsupported value: {show(value)}: supported values: {choices}")


# ---------------------------------------------------------------- types, as JSON decoding checks them


def _mapping(v: Any, path: str) -> Mapping[Any, Any]:
    if v is not None and not isinstance(v, Mapping):
        raise invalid(path, v, "must be an object")
    return v or {}


def _items(v: Any, path: str) -> list[tuple[str, Mapping[Any, Any]]]:
    """[(path[i], item)] of a list whose items must be objects."""
    return [(f"{path}[{i}]", _mapping(item, f"{path}[{i}]")) for i, item in enumerate(_list(v, path))]


def _list(v: Any, path: str) -> list[Any]:
    if v is not None and not isinstance(v, list | tuple):
        raise invalid(path, v, "must be a list")
    return list(v or [])


def _str(v: Any, path: str) -> str:
    """An optional string field ('' when absent)."""
    if v is not None and not isinstance(v, str):
        raise invalid(path, v, "must be a string")
    return v or ""


def _strs(v: Any, path: str) -> list[str]:
    return [_str(s, f"{path}[{i}]") for i, s in enumerate(_list(v, path))]


def _string(v: Any, path: str) -> str:
    """A value the checkers need to be a string (null included)."""
    if not isinstance(v, str):
        raise invalid(path, v, "must be a string")
    return v


def _bool(v: Any, path: str) -> None:
    if v is not None and not isinstance(v, bool):
        raise invalid(path, v, "must be a boolean")


def _int(v: Any, path: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """An optional integer field (None when absent): no bool, string or float with a fraction."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not v.is_integer()):
        raise invalid(path, v, "must be an integer")
    n = int(v)
    if not -(2**63) <= n < 2**63:
        raise invalid(path, v, "must be a 64-bit integer")
    if minimum is not None and n < minimum:
        raise invalid(path, n, f"must be greater than or equal to {minimum}")
    if maximum is not None and n > maximum:
        raise invalid(path, n, f"must be less than or equal to {maximum}")
    return n


def _unset(v: Any) -> bool:
    """A zero value that Kubernetes' defaulting replaces: null, '' or the integer 0."""
    return v is None or v == "" or (type(v) is int and v == 0)


def one_of(v: Any, allowed: tuple[str, ...], path: str) -> None:
    """field.NotSupported: `v` must be one of `allowed`."""
    if not isinstance(v, str) or v not in allowed:
        raise unsupported(path, v, allowed)


def _enum(v: Any, allowed: tuple[str, ...], path: str, default: str = "") -> str:
    """An enum that defaulting fills when absent or '': returns the value in effect."""
    if v is None or v == "":
        return default
    one_of(v, allowed, path)
    return str(v)


# ---------------------------------------------------------------- names (apimachinery's util/validation)

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_ALNUM_END = "and must start and end with an alphanumeric character"
_LABEL_MSG = (
    f"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', {_ALNUM_END}"
)
_SUBDOMAIN_MSG = f"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', {_ALNUM_END}"
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_MSG = f"consist of alphanumeric characters, '-', '_' or '.', {_ALNUM_END}"


def _pattern(value: Any, path: str, regex: str, max_len: int, detail: str) -> str:
    """A string of at most `max_len` characters that `regex` matches whole (fullmatch: '$' lets '\\n' in)."""
    s = _string(value, path)
    if len(s) > max_len:
        raise invalid(path, s, f"must be no more than {max_len} characters")
    if not re.fullmatch(regex, s):
        raise invalid(path, s, detail)
    return s


def dns1123_label(value: Any, path: str) -> None:
    """IsDNS1123Label (namespace, container and port names): [a-z0-9-], alphanumeric ends, <= 63."""
    _pattern(value, path, _LABEL, 63, _LABEL_MSG)


def dns1123_subdomain(value: Any, path: str) -> None:
    """IsDNS1123Subdomain (most object names): dot-separated RFC 1123 labels, <= 253."""
    _pattern(value, path, _SUBDOMAIN, 253, _SUBDOMAIN_MSG)


def dns1035_label(value: Any, path: str) -> None:
    """IsDNS1035Label (Service names): like an RFC 1123 label but starting with a letter."""
    _pattern(value, path, r"[a-z]([-a-z0-9]*[a-z0-9])?", 63, _DNS1035_MSG)


def _wildcard_host(value: Any, path: str) -> None:
    """IsWildcardDNS1123Subdomain or IsDNS1123Subdomain: an Ingress host, '*.' allowed in front."""
    host = _string(value, path)
    if host.startswith("*."):
        detail = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain"
        _pattern(host, path, r"\*\." + _SUBDOMAIN, 253, detail)
    else:
        dns1123_subdomain(host, path)


def label_key(value: Any, path: str) -> None:
    """IsQualifiedName (label and annotation keys): an optional DNS-subdomain prefix and '/', then a name
    part of at most 63 alphanumerics, '-', '_' or '.'."""
    key = _string(value, path)
    parts = key.split("/")
    if len(parts) > 2:
        raise invalid(
            path, key, f"a qualified name must {_QUALIFIED_MSG} with an optional DNS subdomain prefix and '/'"
        )
    if len(parts) == 2:
        if not parts[0]:
            raise invalid(path, key, "prefix part must be non-empty")
        if len(parts[0]) > 253:
            raise invalid(path, key, "prefix part must be no more than 253 characters")
        if not re.fullmatch(_SUBDOMAIN, parts[0]):
            raise invalid(path, key, f"prefix part {_SUBDOMAIN_MSG}")
    if not parts[-1]:
        raise invalid(path, key, "name part must be non-empty")
    if len(parts[-1]) > 63:
        raise invalid(path, key, "name part must be no more than 63 characters")
    if not re.fullmatch(_QUALIFIED, parts[-1]):
        raise invalid(path, key, f"name part must {_QUALIFIED_MSG}")


def label_value(value: Any, path: str) -> None:
    """IsValidLabelValue: empty, or a name part (at most 63 characters)."""
    _pattern(
        value, path, f"({_QUALIFIED})?", 63, f"a valid label must be an empty string or {_QUALIFIED_MSG}"
    )


def labels(mapping: Any, path: str) -> None:
    """ValidateLabels: label keys to label values (a wrong one is reported at the mapping's path)."""
    for k, v in _mapping(mapping, path).items():
        label_key(k, path)
        label_value(v, path)


ANNOTATIONS_LIMIT = 262144  # TotalAnnotationSizeLimitB


def _size(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


def annotations(mapping: Any, path: str) -> None:
    """ValidateAnnotations: keys are qualified names (lower-cased first), values strings, 256 KiB in all."""
    total = 0
    for k, v in _mapping(mapping, path).items():
        label_key(k.lower() if isinstance(k, str) else k, path)
        total += _size(k) + _size(_str(v, _key(path, k)))
    if total > ANNOTATIONS_LIMIT:
        raise FieldError(path, f"Too long: may not be more than {ANNOTATIONS_LIMIT} bytes")


def _not_dot_dir(key: str, path: str) -> None:
    """hasChDirPrefix: a config key or env name is not '.' or '..' and does not start with '..'."""
    if key in (".", ".."):
        raise invalid(path, key, f"must not be '{key}'")
    if key.startswith(".."):
        raise invalid(path, key, "must not start with '..'")


def _config_key(value: Any, path: str) -> None:
    """IsConfigMapKey: at most 253 of [-._a-zA-Z0-9]."""
    detail = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    _not_dot_dir(_pattern(value, path, r"[-._a-zA-Z0-9]+", 253, detail), path)


# ---------------------------------------------------------------- label selectors


def label_selector(sel: Any, path: str) -> None:
    """ValidateLabelSelector: matchLabels as labels; matchExpressions In/NotIn with values, Exists/
    DoesNotExist without."""
    sel = _mapping(sel, path)
    labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for p, expr in _items(sel.get("matchExpressions"), f"{path}.matchExpressions"):
        op, values = expr.get("operator"), _strs(expr.get("values"), f"{p}.values")
        if op in ("In", "NotIn") and not values:
            raise required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        if op in ("Exists", "DoesNotExist") and values:
            detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            raise FieldError(f"{p}.values", f"Forbidden: {detail}")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise invalid(f"{p}.operator", op, "not a valid selector operator")
        label_key(expr.get("key"), f"{p}.key")
        for i, v in enumerate(values):
            label_value(v, f"{p}.values[{i}]")


def _selects(sel: Mapping[Any, Any], lbls: Mapping[Any, Any]) -> bool:
    """Whether a valid LabelSelector matches valid labels."""
    if any(lbls.get(k) != v for k, v in (sel.get("matchLabels") or {}).items()):
        return False
    for expr in sel.get("matchExpressions") or []:
        present = expr["key"] in lbls
        hit = present and lbls[expr["key"]] in (expr.get("values") or [])
        if not {"In": hit, "NotIn": not hit, "Exists": present, "DoesNotExist": not present}[
            expr["operator"]
        ]:
            return False
    return True


# ---------------------------------------------------------------- ports, quantities, addresses


def port_number(v: Any, path: str) -> None:
    """IsValidPortNum: an integer 1..65535."""
    n = _int(v, path)
    if n is None:
        raise required(path)
    if not 1 <= n <= 65535:
        raise invalid(path, n, "must be between 1 and 65535, inclusive")


def port_name(v: Any, path: str) -> None:
    """IsValidPortName (IANA_SVC_NAME): <= 15 of [a-z0-9-], a letter, no '--', no hyphen at either end."""
    name = _string(v, path)
    if len(name) > 15:
        raise invalid(path, name, "must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", name):
        raise invalid(path, name, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        raise invalid(path, name, "must contain at least one letter (a-z)")
    if "--" in name:
        raise invalid(path, name, "must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        raise invalid(path, name, "must not begin or end with a hyphen")


def int_or_string_port(v: Any, path: str) -> None:
    """ValidatePortNumOrName: a port number, or a port name (so "8080", a string, is refused)."""
    if isinstance(v, str):
        port_name(v, path)
    elif v is None or isinstance(v, int | float) and not isinstance(v, bool):
        port_number(v, path)
    else:
        raise invalid(path, v, "must be an integer or a string")


def int_or_percent(v: Any, path: str) -> None:
    """ValidatePositiveIntOrPercent: an integer >= 0, or a percent string such as '25%'."""
    if isinstance(v, str):
        if not re.fullmatch(r"[0-9]{1,10}%", v):
            raise invalid(
                path, v, "a valid percent string must be a numeric string followed by an ending '%'"
            )
    elif isinstance(v, int | float) and not isinstance(v, bool):
        _int(v, path, minimum=0)
    else:
        raise invalid(path, v, "must be an integer or a percentage")


_QUANTITY = r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|([eE][+-]?[0-9]+))?"
_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)}
_SUFFIXES |= {s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")}
_SUFFIXES |= {s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))}


def quantity(v: Any, path: str) -> Decimal:
    """resource.Quantity: a number, or a string such as '500m', '64Mi', '1e3'; returns its value."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() <= 256:
        return Decimal(v)
    if isinstance(v, float) and math.isfinite(v):
        return Decimal(repr(v))
    match = re.fullmatch(_QUANTITY, v) if isinstance(v, str) and len(v) <= 100 else None
    try:
        if match and match[3]:
            return Decimal(match[1] + match[3])
        if match:
            return Decimal(match[1]) * _SUFFIXES[match[2] or ""]
    except InvalidOperation:  # an exponent beyond what Decimal holds
        pass
    detail = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    raise invalid(path, v, detail)


def _resource_list(v: Any, path: str) -> dict[str, Decimal]:
    """A ResourceList: resource names (qualified names: cpu, memory, example.com/gpu) to quantities >= 0."""
    out: dict[str, Decimal] = {}
    for name, q in _mapping(v, path).items():
        label_key(name, path)
        out[name] = quantity(q, _key(path, name))
        if out[name] < 0:
            raise invalid(_key(path, name), q, "must be greater than or equal to 0")
    return out


def ip_address(v: Any, path: str) -> None:
    """IsValidIP: an IPv4 or IPv6 address."""
    address = _string(v, path)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise invalid(path, v, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)") from None


_PROTOCOLS = ("SCTP", "TCP", "UDP")


def protocol(v: Any, path: str) -> None:
    """A port's protocol: SCTP, TCP or UDP."""
    one_of(v, _PROTOCOLS, path)


# ---------------------------------------------------------------- metadata

_NAME_RULES: dict[str, Callable[[Any, str], None]] = {"Namespace": dns1123_label, "Service": dns1035_label}


def _metadata(v: Any, kind: str) -> None:
    """ValidateObjectMeta: a name (or generateName) by the kind's rule, a DNS-1123 label namespace, labels,
    annotations, ownerReferences with apiVersion, kind, name and uid."""
    meta = _mapping(v, "metadata")
    rule = _NAME_RULES.get(kind, dns1123_subdomain)
    name = _str(meta.get("name"), "metadata.name")
    generate = _str(meta.get("generateName"), "metadata.generateName")
    if generate:
        try:  # a prefix: the rule applies with one trailing '-' masked
            rule(generate[:-1] if generate.endswith("-") and len(generate) > 1 else generate, "")
        except FieldError as e:
            raise invalid("metadata.generateName", generate, e.detail) from None
    if name:
        rule(name, "metadata.name")
    elif not generate:
        raise required("metadata.name", "name or generateName is required")
    if _str(meta.get("namespace"), "metadata.namespace"):
        dns1123_label(meta["namespace"], "metadata.namespace")
    labels(meta.get("labels"), "metadata.labels")
    annotations(meta.get("annotations"), "metadata.annotations")
    for field in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
        _str(meta.get(field), f"metadata.{field}")
    _int(meta.get("generation"), "metadata.generation", minimum=0)
    _int(meta.get("deletionGracePeriodSeconds"), "metadata.deletionGracePeriodSeconds", minimum=0)
    _strs(meta.get("finalizers"), "metadata.finalizers")
    for p, ref in _items(meta.get("ownerReferences"), "metadata.ownerReferences"):
        for field in ("apiVersion", "kind", "name", "uid"):
            if not _str(ref.get(field), f"{p}.{field}"):
                raise required(f"{p}.{field}")
        _bool(ref.get("controller"), f"{p}.controller")


# ---------------------------------------------------------------- pods (core/validation)


def _container_ports(v: Any, path: str) -> None:
    """validateContainerPorts: containerPort required, hostPort 0 or a port, port names unique."""
    names: set[str] = set()
    for p, port in _items(v, path):
        if _str(port.get("name"), f"{p}.name"):
            port_name(port["name"], f"{p}.name")
            if port["name"] in names:
                raise FieldError(f"{p}.name", f"Duplicate value: {show(port['name'])}")
            names.add(port["name"])
        if _unset(port.get("containerPort")):
            raise required(f"{p}.containerPort")
        port_number(port["containerPort"], f"{p}.containerPort")
        if not _unset(port.get("hostPort")):
            port_number(port["hostPort"], f"{p}.hostPort")
        _enum(port.get("protocol"), _PROTOCOLS, f"{p}.protocol")
        if _str(port.get("hostIP"), f"{p}.hostIP"):
            ip_address(port["hostIP"], f"{p}.hostIP")


def _env(v: Any, path: str) -> None:
    """validateEnv: each variable has a name (IsEnvVarName) and an optional string value."""
    detail = (
        "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
        "and must not start with a digit"
    )
    for p, var in _items(v, path):
        if not _str(var.get("name"), f"{p}.name"):
            raise required(f"{p}.name")
        _not_dot_dir(
            _pattern(var["name"], f"{p}.name", r"[-._a-zA-Z][-._a-zA-Z0-9]*", 2**31, detail), f"{p}.name"
        )
        _str(var.get("value"), f"{p}.value")


def _resources(v: Any, path: str) -> None:
    """ValidateResourceRequirements: quantities >= 0, no request above its limit."""
    res = _mapping(v, path)
    limits = _resource_list(res.get("limits"), f"{path}.limits")
    for name, value in _resource_list(res.get("requests"), f"{path}.requests").items():
        if name in limits and value > limits[name]:
            limit = res["limits"][name]  # a valid quantity: a string is safe to print as it is
            detail = f"must be less than or equal to {name} limit of {limit if isinstance(limit, str) else show(limit)}"
            raise invalid(_key(f"{path}.requests", name), res["requests"][name], detail)


def _probe(v: Any, path: str, once: bool) -> None:
    """validateProbe: one handler; timings >= 0 (0 is Kubernetes' default); liveness and startup probes
    succeed once (successThreshold 1)."""
    probe = _mapping(v, path)
    handlers = [h for h in ("exec", "httpGet", "tcpSocket") if probe.get(h) is not None]
    if not handlers:
        raise required(path, "must specify a handler type")
    if len(handlers) > 1:
        raise FieldError(f"{path}.{handlers[1]}", "Forbidden: may not specify more than 1 handler type")
    _strs(_mapping(probe.get("exec"), f"{path}.exec").get("command"), f"{path}.exec.command")
    for handler in ("httpGet", "tcpSocket"):
        if probe.get(handler) is not None:
            action = _mapping(probe[handler], f"{path}.{handler}")
            int_or_string_port(action.get("port"), f"{path}.{handler}.port")
            _str(action.get("host"), f"{path}.{handler}.host")
            _str(action.get("path"), f"{path}.{handler}.path")
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "failureThreshold"):
        _int(probe.get(field), f"{path}.{field}", minimum=0)
    success = _int(probe.get("successThreshold"), f"{path}.successThreshold", minimum=0)
    if once and success not in (None, 0, 1):
        raise invalid(f"{path}.successThreshold", success, "must be 1")


def _container(c: Mapping[Any, Any], path: str) -> str:
    """validateContainers, one container: name, image, command, ports, env, resources, probes."""
    if not _str(c.get("name"), f"{path}.name"):
        raise required(f"{path}.name")
    dns1123_label(c["name"], f"{path}.name")
    image = _str(c.get("image"), f"{path}.image")
    if not image:
        raise required(f"{path}.image")
    if image != image.strip():
        raise invalid(f"{path}.image", image, "must not have leading or trailing whitespace")
    if any(ch.isspace() for ch in image):
        raise invalid(f"{path}.image", image, "must not contain whitespace")
    _strs(c.get("command"), f"{path}.command")
    _strs(c.get("args"), f"{path}.args")
    _str(c.get("workingDir"), f"{path}.workingDir")
    _enum(c.get("imagePullPolicy"), ("Always", "IfNotPresent", "Never"), f"{path}.imagePullPolicy")
    _container_ports(c.get("ports"), f"{path}.ports")
    _env(c.get("env"), f"{path}.env")
    _resources(c.get("resources"), f"{path}.resources")
    for field, once in (("livenessProbe", True), ("readinessProbe", False), ("startupProbe", True)):
        if c.get(field) is not None:
            _probe(c[field], f"{path}.{field}", once)
    return str(c["name"])


_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")


def _tolerations(v: Any, path: str) -> None:
    """validateTolerations: a label key (empty only with Exists), Equal/Exists (Exists with no value),
    a known effect, tolerationSeconds only with NoExecute."""
    for p, t in _items(v, path):
        key, op = _str(t.get("key"), f"{p}.key"), _str(t.get("operator"), f"{p}.operator")
        value, effect = _str(t.get("value"), f"{p}.value"), _enum(t.get("effect"), _EFFECTS, f"{p}.effect")
        if key:
            label_key(key, f"{p}.key")
        elif op != "Exists":
            raise invalid(f"{p}.operator", op, "operator must be Exists when `key` is empty")
        if op not in ("", "Equal", "Exists"):
            raise unsupported(f"{p}.operator", op, ("Equal", "Exists"))
        if op == "Exists" and value:
            raise invalid(f"{p}.operator", op, "value must be empty when `operator` is 'Exists'")
        label_value(value, f"{p}.value")
        if _int(t.get("tolerationSeconds"), f"{p}.tolerationSeconds") is not None and effect != "NoExecute":
            raise invalid(f"{p}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")


def _pod_spec(v: Any, path: str) -> None:
    """ValidatePodSpec: containers (at least one, unique names), restartPolicy, nodeName, nodeSelector,
    tolerations, terminationGracePeriodSeconds."""
    spec = _mapping(v, path)
    containers = _items(spec.get("containers"), f"{path}.containers")
    if not containers:
        raise required(f"{path}.containers")
    names: set[str] = set()
    for p, c in containers:
        name = _container(c, p)
        if name in names:
            raise FieldError(f"{p}.name", f"Duplicate value: {show(name)}")
        names.add(name)
    _enum(spec.get("restartPolicy"), ("Always", "OnFailure", "Never"), f"{path}.restartPolicy")
    if _str(spec.get("nodeName"), f"{path}.nodeName"):
        dns1123_subdomain(spec["nodeName"], f"{path}.nodeName")
    labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    _tolerations(spec.get("tolerations"), f"{path}.tolerations")
    _int(spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds", minimum=0)


def _conditions(v: Any, path: str) -> None:
    """Pod, node and workload conditions: a type, and a status True, False or Unknown."""
    for p, c in _items(v, path):
        if not _str(c.get("type"), f"{p}.type"):
            raise required(f"{p}.type")
        one_of(c.get("status"), ("True", "False", "Unknown"), f"{p}.status")
        for field in ("reason", "message"):
            _str(c.get(field), f"{p}.{field}")


def pod_status(v: Any, path: str) -> None:
    """PodStatus (as a status patch writes it too): phase, conditions, container statuses, IPs, and
    Skiff's portMappings (the endpoints controller reads them)."""
    status = _mapping(v, path)
    _enum(status.get("phase"), ("Pending", "Running", "Succeeded", "Failed", "Unknown"), f"{path}.phase")
    _conditions(status.get("conditions"), f"{path}.conditions")
    for field in ("podIP", "hostIP"):
        if _str(status.get(field), f"{path}.{field}"):
            ip_address(status[field], f"{path}.{field}")
    for p, cs in _items(status.get("containerStatuses"), f"{path}.containerStatuses"):
        _str(cs.get("name"), f"{p}.name")
        _int(cs.get("restartCount"), f"{p}.restartCount", minimum=0)
        _bool(cs.get("ready"), f"{p}.ready")
        _bool(cs.get("started"), f"{p}.started")
    for p, m in _items(status.get("portMappings"), f"{path}.portMappings"):
        _str(m.get("name"), f"{p}.name")
        _int(m.get("containerPort"), f"{p}.containerPort", 0, 65535)
        _int(m.get("hostPort"), f"{p}.hostPort", 0, 65535)
        if _str(m.get("hostIP"), f"{p}.hostIP"):
            ip_address(m["hostIP"], f"{p}.hostIP")


def _pod(obj: Mapping[Any, Any]) -> None:
    _pod_spec(obj.get("spec"), "spec")
    pod_status(obj.get("status"), "status")


# ---------------------------------------------------------------- workloads (apps/validation)


def _template(v: Any, selector: Mapping[Any, Any] | None) -> Mapping[Any, Any]:
    """ValidatePodTemplateSpecForReplicaSet: labels (that the selector matches) and annotations, a pod
    spec with restartPolicy Always. Returns the labels."""
    if v is None:
        raise required("spec.template")
    template = _mapping(v, "spec.template")
    meta = _mapping(template.get("metadata"), "spec.template.metadata")
    lbls = _mapping(meta.get("labels"), "spec.template.metadata.labels")
    labels(lbls, "spec.template.metadata.labels")
    annotations(meta.get("annotations"), "spec.template.metadata.annotations")
    if selector is not None and not _selects(selector, lbls):
        raise invalid("spec.template.metadata.labels", lbls, "`selector` does not match template `labels`")
    _pod_spec(template.get("spec"), "spec.template.spec")
    policy = _mapping(template.get("spec"), "spec.template.spec").get("restartPolicy")
    if not _unset(policy) and policy != "Always":
        raise unsupported("spec.template.spec.restartPolicy", policy, ("Always",))
    return lbls


_SELECTOR_DEFAULTED = ("extensions/v1beta1", "apps/v1beta1")  # these default it from the template labels


def _workload_spec(obj: Mapping[Any, Any], kind: str) -> Mapping[Any, Any]:
    """ValidateReplicaSetSpec and ValidateDeploymentSpec's common part: replicas, selector, template."""
    spec = _mapping(obj.get("spec"), "spec")
    _int(spec.get("replicas"), "spec.replicas", minimum=0)
    _int(spec.get("minReadySeconds"), "spec.minReadySeconds", minimum=0)
    selector = None
    if spec.get("selector") is not None:
        selector = _mapping(spec["selector"], "spec.selector")
        label_selector(selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            raise invalid("spec.selector", selector, f"empty selector is invalid for {kind.lower()}")
    template_labels = _template(spec.get("template"), selector)
    if selector is None and (obj.get("apiVersion") not in _SELECTOR_DEFAULTED or not template_labels):
        raise required("spec.selector")
    return spec


def _strategy(v: Any) -> None:
    """validateDeploymentStrategy: Recreate (no rollingUpdate) or RollingUpdate, whose maxSurge and
    maxUnavailable (<= 100%) are ints or percents, not both 0."""
    strategy = _mapping(v, "spec.strategy")
    kind = _enum(strategy.get("type"), ("Recreate", "RollingUpdate"), "spec.strategy.type", "RollingUpdate")
    if strategy.get("rollingUpdate") is None:
        return
    path = "spec.strategy.rollingUpdate"
    if kind == "Recreate":
        raise FieldError(path, "Forbidden: may not be specified when strategy `type` is 'Recreate'")
    update = _mapping(strategy["rollingUpdate"], path)
    surge, unavailable = update.get("maxSurge"), update.get("maxUnavailable")
    for field, value in (("maxSurge", surge), ("maxUnavailable", unavailable)):
        if value is not None:
            int_or_percent(value, f"{path}.{field}")
    if isinstance(unavailable, str) and int(unavailable[:-1]) > 100:
        raise invalid(f"{path}.maxUnavailable", unavailable, "must not be greater than 100%")
    if _number(unavailable) == 0 and _number(surge) == 0:
        raise invalid(f"{path}.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0")


def _number(v: Any) -> int | None:
    """The number of a valid int-or-percent (25 for '25%'), None when absent."""
    return None if v is None else int(v[:-1]) if isinstance(v, str) else int(v)


def _workload_status(v: Any, counts: tuple[str, ...]) -> None:
    """ValidateDeploymentStatus and ValidateReplicaSetStatus: the counts are integers >= 0."""
    status = _mapping(v, "status")
    for field in ("replicas", "readyReplicas", "availableReplicas", "observedGeneration", *counts):
        _int(status.get(field), f"status.{field}", minimum=0)
    _conditions(status.get("conditions"), "status.conditions")


def _deployment(obj: Mapping[Any, Any]) -> None:
    """ValidateDeployment: the workload spec, strategy, history limit, progress deadline, status."""
    spec = _workload_spec(obj, "Deployment")
    _strategy(spec.get("strategy"))
    _bool(spec.get("paused"), "spec.paused")
    _int(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit", minimum=0)
    deadline = _int(spec.get("progressDeadlineSeconds"), "spec.progressDeadlineSeconds", minimum=0)
    if deadline is not None and deadline <= (_int(spec.get("minReadySeconds"), "") or 0):
        raise invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
    _workload_status(obj.get("status"), ("updatedReplicas", "unavailableReplicas", "collisionCount"))


def _replica_set(obj: Mapping[Any, Any]) -> None:
    _workload_spec(obj, "ReplicaSet")
    _workload_status(obj.get("status"), ("fullyLabeledReplicas",))


# ---------------------------------------------------------------- services and endpoints


def _cluster_ip(v: Any, path: str) -> None:
    """A clusterIP: '' (allocate one), 'None' (headless) or an IP address."""
    if _str(v, path) not in ("", "None"):
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise invalid(path, v, "must be empty, 'None', or a valid IP address") from None


def _port_names(ports: list[tuple[str, Mapping[Any, Any]]]) -> None:
    """Service and endpoint port names: DNS-1123 labels, required when there are several, unique."""
    seen: set[str] = set()
    for p, port in ports:
        name = _str(port.get("name"), f"{p}.name")
        if not name and len(ports) > 1:
            raise required(f"{p}.name")
        if name:
            dns1123_label(name, f"{p}.name")
            if name in seen:
                raise FieldError(f"{p}.name", f"Duplicate value: {show(name)}")
            seen.add(name)


def _service_port(port: Mapping[Any, Any], p: str, svc_type: str) -> None:
    """A ServicePort: port; targetPort (0 or '' default to port); nodePort only for NodePort and
    LoadBalancer, in 30000-32767."""
    port_number(port.get("port"), f"{p}.port")
    if not _unset(port.get("targetPort")):
        int_or_string_port(port["targetPort"], f"{p}.targetPort")
    _enum(port.get("protocol"), _PROTOCOLS, f"{p}.protocol")
    node_port = _int(port.get("nodePort"), f"{p}.nodePort")
    if node_port and svc_type not in ("NodePort", "LoadBalancer"):
        raise FieldError(f"{p}.nodePort", f"Forbidden: may not be used when `type` is '{svc_type}'")
    if node_port and not 30000 <= node_port <= 32767:
        detail = "provided port is not in the valid range. The range of valid ports is 30000-32767"
        raise invalid(f"{p}.nodePort", node_port, detail)


def _service(obj: Mapping[Any, Any]) -> None:
    """ValidateService: type, clusterIP, ports (required but for ExternalName and headless services),
    selector, sessionAffinity."""
    spec = _mapping(obj.get("spec"), "spec")
    types = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
    svc_type = _enum(spec.get("type"), types, "spec.type", "ClusterIP")
    _cluster_ip(spec.get("clusterIP"), "spec.clusterIP")
    for i, ip in enumerate(_list(spec.get("clusterIPs"), "spec.clusterIPs")):
        _cluster_ip(ip, f"spec.clusterIPs[{i}]")
    ports = _items(spec.get("ports"), "spec.ports")
    if not ports and svc_type != "ExternalName" and spec.get("clusterIP") != "None":
        raise required("spec.ports")
    for p, port in ports:
        _service_port(port, p, svc_type)
    _port_names(ports)
    labels(spec.get("selector"), "spec.selector")
    _enum(spec.get("sessionAffinity"), ("ClientIP", "None"), "spec.sessionAffinity")


def _endpoints(obj: Mapping[Any, Any]) -> None:
    """ValidateEndpoints: addresses with an IP (and a DNS-1123 hostname and nodeName when set), ports."""
    for s, subset in _items(obj.get("subsets"), "subsets"):
        addresses = _items(subset.get("addresses"), f"{s}.addresses")
        for p, a in addresses + _items(subset.get("notReadyAddresses"), f"{s}.notReadyAddresses"):
            if _unset(a.get("ip")):
                raise required(f"{p}.ip")
            ip_address(a["ip"], f"{p}.ip")
            if _str(a.get("hostname"), f"{p}.hostname"):
                dns1123_label(a["hostname"], f"{p}.hostname")
            if _str(a.get("nodeName"), f"{p}.nodeName"):
                dns1123_subdomain(a["nodeName"], f"{p}.nodeName")
            for field, ref in _mapping(a.get("targetRef"), f"{p}.targetRef").items():
                _str(ref, _key(f"{p}.targetRef", field))
        ports = _items(subset.get("ports"), f"{s}.ports")
        for p, port in ports:
            port_number(port.get("port"), f"{p}.port")
            _enum(port.get("protocol"), _PROTOCOLS, f"{p}.protocol")
        _port_names(ports)


# ---------------------------------------------------------------- ingress (networking/validation)


def _backend(v: Any, path: str) -> None:
    """validateIngressBackend: service.name (a Service name) and one of service.port.number and .name;
    or the extensions/v1beta1 form, serviceName and servicePort."""
    backend = _mapping(v, path)
    if backend.get("serviceName") is not None or backend.get("servicePort") is not None:
        if not _str(backend.get("serviceName"), f"{path}.serviceName"):
            raise required(f"{path}.serviceName")
        dns1035_label(backend["serviceName"], f"{path}.serviceName")
        int_or_string_port(backend.get("servicePort"), f"{path}.servicePort")
        return
    if backend.get("service") is None:
        raise required(f"{path}.service")
    service = _mapping(backend["service"], f"{path}.service")
    if not _str(service.get("name"), f"{path}.service.name"):
        raise required(f"{path}.service.name")
    dns1035_label(service["name"], f"{path}.service.name")
    port = _mapping(service.get("port"), f"{path}.service.port")
    number = _int(port.get("number"), f"{path}.service.port.number")
    name = _str(port.get("name"), f"{path}.service.port.name")
    if number and name:
        raise invalid(f"{path}.service.port", port, "cannot set both port name & port number")
    if name:
        port_name(name, f"{path}.service.port.name")
    elif number:
        port_number(number, f"{path}.service.port.number")
    else:
        raise required(f"{path}.service.port", "port name or number is required")


def _rule_host(v: Any, path: str) -> None:
    """An Ingress rule's host: a (wildcard) DNS-1123 subdomain, not an IP address."""
    host = _string(v, path)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        _wildcard_host(host, path)
    else:
        raise invalid(path, v, "must be a DNS name, not an IP address")


def _http_path(item: Mapping[Any, Any], p: str, needs_type: bool) -> None:
    """validateHTTPIngressPath: pathType (required in networking.k8s.io/v1), an absolute path, a backend."""
    path = _str(item.get("path"), f"{p}.path")
    path_type = item.get("pathType")
    if _unset(path_type) and needs_type:
        raise required(f"{p}.pathType", "pathType must be specified")
    _enum(path_type, ("Exact", "ImplementationSpecific", "Prefix"), f"{p}.pathType")
    if (path or path_type in ("Exact", "Prefix")) and not path.startswith("/"):
        raise invalid(f"{p}.path", path, "must be an absolute path")
    if item.get("backend") is None:
        raise required(f"{p}.backend")
    _backend(item["backend"], f"{p}.backend")


def _ingress(obj: Mapping[Any, Any]) -> None:
    """ValidateIngressSpec: a default backend or rules; rule (and TLS) hosts; HTTP paths; TLS secrets."""
    spec = _mapping(obj.get("spec"), "spec")
    rules = _items(spec.get("rules"), "spec.rules")
    field = "defaultBackend" if spec.get("defaultBackend") is not None else "backend"
    if spec.get(field) is None and not rules:
        raise required("spec", "either `defaultBackend` or `rules` must be specified")
    if spec.get(field) is not None:
        _backend(spec[field], f"spec.{field}")
    for r, rule in rules:
        if _str(rule.get("host"), f"{r}.host"):
            _rule_host(rule["host"], f"{r}.host")
        if rule.get("http") is not None:
            paths = _items(_mapping(rule["http"], f"{r}.http").get("paths"), f"{r}.http.paths")
            if not paths:
                raise required(f"{r}.http.paths")
            for p, item in paths:
                _http_path(item, p, obj.get("apiVersion") == "networking.k8s.io/v1")
    for t, tls in _items(spec.get("tls"), "spec.tls"):
        for i, host in enumerate(_strs(tls.get("hosts"), f"{t}.hosts")):
            _rule_host(host, f"{t}.hosts[{i}]")
        if _str(tls.get("secretName"), f"{t}.secretName"):
            dns1123_subdomain(tls["secretName"], f"{t}.secretName")


# ---------------------------------------------------------------- config maps, nodes, namespaces, events

CONFIG_MAP_LIMIT = 1048576  # MaxSecretSize, which ConfigMaps share


def _config_map(obj: Mapping[Any, Any]) -> None:
    """ValidateConfigMap: config keys, string values, data and binaryData disjoint, 1 MiB in all."""
    data, binary = _mapping(obj.get("data"), "data"), _mapping(obj.get("binaryData"), "binaryData")
    total = 0
    for field, entries in (("data", data), ("binaryData", binary)):
        for key, value in entries.items():
            _config_key(key, _key(field, key))
            total += _size(_str(value, _key(field, key)))
            if field == "data" and key in binary:
                raise invalid(_key(field, key), key, "duplicate of key present in binaryData")
    if total > CONFIG_MAP_LIMIT:
        raise FieldError("data", f"Too long: may not be more than {CONFIG_MAP_LIMIT} bytes")


def _node(obj: Mapping[Any, Any]) -> None:
    """ValidateNode: unschedulable, taints (label key and value, a required effect); status resources,
    conditions, addresses and the kubelet's port."""
    spec = _mapping(obj.get("spec"), "spec")
    _bool(spec.get("unschedulable"), "spec.unschedulable")
    for p, taint in _items(spec.get("taints"), "spec.taints"):
        label_key(taint.get("key"), f"{p}.key")
        label_value(_str(taint.get("value"), f"{p}.value"), f"{p}.value")
        if _unset(taint.get("effect")):
            raise required(f"{p}.effect")
        one_of(taint["effect"], _EFFECTS, f"{p}.effect")
    status = _mapping(obj.get("status"), "status")
    _resource_list(status.get("capacity"), "status.capacity")
    _resource_list(status.get("allocatable"), "status.allocatable")
    _conditions(status.get("conditions"), "status.conditions")
    address_types = ("ExternalDNS", "ExternalIP", "Hostname", "InternalDNS", "InternalIP")
    for p, address in _items(status.get("addresses"), "status.addresses"):
        one_of(address.get("type"), address_types, f"{p}.type")
        _str(address.get("address"), f"{p}.address")
    endpoints = _mapping(status.get("daemonEndpoints"), "status.daemonEndpoints")
    kubelet = _mapping(endpoints.get("kubeletEndpoint"), "status.daemonEndpoints.kubeletEndpoint")
    _int(kubelet.get("Port"), "status.daemonEndpoints.kubeletEndpoint.Port", 0, 65535)


def _namespace(obj: Mapping[Any, Any]) -> None:
    """ValidateNamespace: finalizers are qualified names; status.phase Active or Terminating."""
    for i, name in enumerate(_strs(_mapping(obj.get("spec"), "spec").get("finalizers"), "spec.finalizers")):
        label_key(name, f"spec.finalizers[{i}]")
    _enum(_mapping(obj.get("status"), "status").get("phase"), ("Active", "Terminating"), "status.phase")


def _event(obj: Mapping[Any, Any]) -> None:
    """ValidateEvent: the involved object's reference, strings, count >= 0, type Normal or Warning."""
    for field, value in _mapping(obj.get("involvedObject"), "involvedObject").items():
        _str(value, _key("involvedObject", field))
    for field in ("reason", "message", "firstTimestamp", "lastTimestamp", "reportingComponent"):
        _str(obj.get(field), field)
    _int(obj.get("count"), "count", minimum=0)
    _enum(obj.get("type"), ("Normal", "Warning"), "type")


_KIND_RULES: dict[str, Callable[[Mapping[Any, Any]], None]] = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replica_set,
    "Service": _service,
    "Endpoints": _endpoints,
    "Ingress": _ingress,
    "ConfigMap": _config_map,
    "Node": _node,
    "Namespace": _namespace,
    "Event": _event,
}


def validate_object(obj: Any) -> None:
    """Raise FieldError for the first rule `obj` breaks (obj already has kind, apiVersion, metadata)."""
    if not isinstance(obj, Mapping):
        raise invalid("<object>", obj, "must be an object")
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) else ""
    _metadata(obj.get("metadata"), kind)
    for part in ("spec", "status"):  # objects in every kind that has them
        _mapping(obj.get(part), part)
    rule = _KIND_RULES.get(kind)
    if rule is not None:
        rule(obj)
