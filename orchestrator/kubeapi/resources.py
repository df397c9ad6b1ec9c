"""The REST resource registry: which (group, version, resource) the Kubernetes API serves, and as what.

Built once, at import, from `model.KINDS`: a kind's plural, singular, short names and scope come from
its `KindInfo` (names are plural first, then singular and short names, as kubectl accepts them). The
small tables below hold only what the model does not know: the group-versions served (default: the
kind's first apiVersion), the verbs, the categories and the subresources; plus the kinds the model does
not have (yet), which are used only while `model.KINDS` lacks them.

One `Resource` per (kind, served group-version): an Ingress is served twice, as networking.k8s.io/v1
and as the seed era's extensions/v1beta1. `RESOURCES` is ordered the way discovery lists them: groups
in `group_versions()` order, resources by plural within a group-version.

Pure: no I/O; every lookup answers from the immutable registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator import model

# ---------------------------------------------------------------- the types


@dataclass(frozen=True)
class Subresource:
    """A subresource such as deployments/scale: what a GET answers with (`kind` in `group`/`version`)."""

    name: str
    kind: str
    group: str
    version: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class Resource:
    """One served resource of one group-version, as discovery describes it."""

    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    verbs: tuple[str, ...]
    categories: tuple[str, ...]
    subresources: tuple[Subresource, ...]

    @property
    def api_version(self) -> str:
        """'v1' for the core group, else 'group/version'."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """Kubernetes' qualified resource, as its messages name it: 'deployments.apps', 'pods'."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def group_kind(self) -> str:
        """Kubernetes' qualified kind, as Invalid messages name it: 'Deployment.apps', 'Pod'."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def scope(self) -> str:
        return "Namespaced" if self.namespaced else "Cluster"


# ---------------------------------------------------------------- what the model does not know

# Kubernetes' verbs for a stored resource (client libraries send deletecollection; kubectl's `delete
# --all` lists, then deletes one by one).
CRUD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class _Extra:
    """A kind `model.KINDS` does not have: the same facts a KindInfo carries."""

    api_versions: tuple[str, ...]
    namespaced: bool
    names: tuple[str, ...]  # plural, singular, short names


# Used only while model.KINDS lacks the kind; once the model has it, the model's facts win.
_NOT_IN_MODEL: dict[str, _Extra] = {
    "Namespace": _Extra(("v1",), False, ("namespaces", "namespace", "ns")),
    # Never stored: read-only views of the Endpoints objects, for `kubectl describe service|ingress`.
    "EndpointSlice": _Extra(("discovery.k8s.io/v1",), True, ("endpointslices", "endpointslice")),
    # Never stored: served so that `kubectl auth can-i` finds it in discovery.
    "SelfSubjectAccessReview": _Extra(
        ("authorization.k8s.io/v1",), False, ("selfsubjectaccessreviews", "selfsubjectaccessreview")
    ),
}

# Served group-versions, preferred first; a kind not listed is served at its first apiVersion.
_SERVED: dict[str, tuple[str, ...]] = {
    # extensions/v1beta1 only for Ingress: the seed's examples/basic-ingress.yaml uses it.
    "Ingress": ("networking.k8s.io/v1", "extensions/v1beta1"),
}

_VERBS: dict[str, tuple[str, ...]] = {
    "SelfSubjectAccessReview": ("create",),
    "EndpointSlice": ("get", "list"),
}

# As in Kubernetes, whose "all" also holds kinds Skiff lacks (statefulsets, jobs, ...); not ingresses.
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Pod": ("all",),
    "Service": ("all",),
    "Deployment": ("all",),
    "ReplicaSet": ("all",),
}

# name -> (response apiVersion, response kind, verbs); a None apiVersion/kind is the resource's own.
_SubSpec = tuple[str, str | None, str | None, tuple[str, ...]]
_STATUS: _SubSpec = ("status", None, None, STATUS_VERBS)
_SCALE: _SubSpec = ("scale", "autoscaling/v1", "Scale", STATUS_VERBS)
_SUBRESOURCES: dict[str, tuple[_SubSpec, ...]] = {
    "Deployment": (_SCALE, _STATUS),
    "ReplicaSet": (_SCALE, _STATUS),
    "Pod": (
        _STATUS,
        ("log", None, "Pod", ("get",)),
        ("eviction", "policy/v1", "Eviction", ("create",)),
        ("binding", "v1", "Binding", ("create",)),
    ),
    "Node": (_STATUS,),
    "Service": (_STATUS,),
}

# Discovery order of the groups. kubectl's RESTMapper takes the first group that has a resource, so
# networking.k8s.io must come before extensions for `kubectl get ingress` to use the v1 form.
_GROUP_ORDER = ("", "apps", "networking.k8s.io", "discovery.k8s.io", "authorization.k8s.io")
_LEGACY_GROUPS = ("extensions",)


# ---------------------------------------------------------------- building the registry


def split_api_version(api_version: str) -> tuple[str, str]:
    """'apps/v1' -> ('apps', 'v1'); 'v1' -> ('', 'v1')."""
    group, _, version = api_version.rpartition("/")
    return group, version


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """A sort key putting Kubernetes' preferred version first: GA, then beta, then alpha; higher first."""
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0)
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0))


def _group_priority(group: str) -> tuple[int, int, str]:
    if group in _GROUP_ORDER:
        return (0, _GROUP_ORDER.index(group), "")
    if group in _LEGACY_GROUPS:
        return (2, _LEGACY_GROUPS.index(group), "")
    return (1, 0, group)


def _facts(kinds: Mapping[str, model.KindInfo]) -> list[tuple[str, tuple[str, ...], bool, tuple[str, ...]]]:
    """(kind, api versions, namespaced, names) for every kind: the model's, then the missing extras."""
    out = [(k.kind, k.api_versions, k.namespaced, k.names) for k in kinds.values()]
    out += [
        (kind, x.api_versions, x.namespaced, x.names)
        for kind, x in _NOT_IN_MODEL.items()
        if kind not in kinds
    ]
    return out


def _subresources(kind: str, group: str, version: str) -> tuple[Subresource, ...]:
    subs = []
    for name, api_version, sub_kind, verbs in _SUBRESOURCES.get(kind, ()):
        g, v = split_api_version(api_version) if api_version else (group, version)
        subs.append(Subresource(name, sub_kind or kind, g, v, verbs))
    return tuple(subs)


def build(kinds: Mapping[str, model.KindInfo]) -> tuple[Resource, ...]:
    """The registry for `kinds` (normally `model.KINDS`), in discovery order."""
    out: list[Resource] = []
    for kind, api_versions, namespaced, names in _facts(kinds):
        plural = names[0]
        singular = kind.lower()  # Kubernetes' singular is the lower-cased kind ("endpoints" too)
        short = tuple(n for n in names[1:] if n not in (plural, singular))
        for api_version in _SERVED.get(kind, api_versions[:1]):
            group, version = split_api_version(api_version)
            out.append(
                Resource(
                    kind=kind,
                    group=group,
                    version=version,
                    plural=plural,
                    singular=singular,
                    short_names=short,
                    namespaced=namespaced,
                    verbs=_VERBS.get(kind, CRUD_VERBS),
                    categories=_CATEGORIES.get(kind, ()),
                    subresources=_subresources(kind, group, version),
                )
            )
    return tuple(sorted(out, key=lambda r: (_group_priority(r.group), version_priority(r.version), r.plural)))


RESOURCES: tuple[Resource, ...] = build(model.KINDS)

_BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}


# ---------------------------------------------------------------- lookups


def by_path(group: str, version: str, plural: str) -> Resource | None:
    """The resource a URL names (/api/v1/pods: ('', 'v1', 'pods')), or None if it is not served."""
    return _BY_PATH.get((group, version, plural))


def for_kind(kind: str, api_version: str | None = None) -> Resource | None:
    """The kind's resource at `api_version`, or at its preferred version when None; None if not served."""
    for r in RESOURCES:
        if r.kind == kind and (api_version is None or r.api_version == api_version):
            return r
    return None


def for_group_resource(group: str, plural: str) -> Resource | None:
    """The preferred version of a group's resource ('apps', 'deployments'), or None."""
    for r in RESOURCES:
        if r.group == group and r.plural == plural:
            return r
    return None


def group_versions() -> tuple[tuple[str, str], ...]:
    """Every served (group, version), in discovery order: core first, versions preferred first."""
    seen: dict[tuple[str, str], None] = {}
    for r in RESOURCES:
        seen.setdefault((r.group, r.version), None)
    return tuple(seen)


def in_group_version(group: str, version: str) -> tuple[Resource, ...]:
    """The resources of one group-version, by plural; () if it is not served."""
    return tuple(r for r in RESOURCES if r.group == group and r.version == version)


def groups(resources: Iterable[Resource] = RESOURCES) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(group, its versions preferred first) in discovery order, core group included."""
    out: dict[str, list[str]] = {}
    for r in resources:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return tuple((g, tuple(v)) for g, v in out.items())
