"""The component registry: discovery through pluggy entry points, lookup and creation.

Every component (colorkit's own included) reaches the registry the same way: a
module implementing :func:`colorkit.hookspecs.colorkit_components`, announced by an
entry point in the ``colorkit`` group.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import importlib.metadata
import inspect
import itertools
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from colorkit import contracts, hookspecs

__all__ = [
    "KINDS",
    "ColorkitError",
    "Component",
    "ContractError",
    "DuplicateComponentError",
    "InvalidOptionError",
    "PluginLoadWarning",
    "Registry",
    "UnknownComponentError",
    "create",
    "default_registry",
    "list_components",
]

#: The component kinds colorkit composes.
KINDS = ("generator", "discriminator", "refiner", "loss", "stabilizer", "recipe", "weights")
# kinds whose factory is a value (a Recipe, a Weights record) rather than a callable
_VALUE_KINDS = frozenset({"recipe", "weights"})

#: Keyword arguments the engine supplies itself, of any kind; they are not user options.
_ENGINE_ARGUMENTS = frozenset(itertools.chain(*contracts.ENGINE_ARGUMENTS.values()))


class ColorkitError(Exception):
    """Base class of colorkit's errors."""


class UnknownComponentError(ColorkitError, LookupError):
    """A component kind or name that is not registered."""


class DuplicateComponentError(ColorkitError):
    """Two plugins registered the same kind and name."""


class InvalidOptionError(ColorkitError, TypeError):
    """A keyword option that the component does not accept."""


class ContractError(ColorkitError, TypeError):
    """A created component that does not keep its kind's contract (:mod:`colorkit.contracts`)."""


class PluginLoadWarning(UserWarning):
    """A plugin failed to import or to list its components and was skipped."""


@dataclass(frozen=True)
class Component:
    """One registered component.

    Args:
        kind: one of :data:`KINDS`.
        name: the name it is created by, e.g. ``"unet"``.
        factory: a callable returning the component (usually its class); for the
            ``recipe`` kind, a :class:`colorkit.Recipe`.
        summary: one line for listings; defaults to the first line of the factory's docstring.
        source: the plugin that registered it, filled in by the registry.
    """

    kind: str
    name: str
    factory: Any
    summary: str = ""
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"component {self.name!r} has unknown kind {self.kind!r}; expected one of {KINDS}"
            )
        if not self.summary and self.kind in _VALUE_KINDS:
            object.__setattr__(self, "summary", getattr(self.factory, "description", ""))
        if not self.summary:
            doc = inspect.getdoc(self.factory) or ""
            object.__setattr__(self, "summary", doc.strip().splitlines()[0] if doc else "")

    def options(self) -> dict[str, Any]:
        """The keyword options the factory accepts, with their defaults.

        Returns:
            A mapping of option name to default value (``inspect.Parameter.empty``
            where there is none). Engine-supplied arguments such as ``in_channels``
            are left out. Empty for recipes and weights.
        """
        if self.kind in _VALUE_KINDS:
            return {}
        return {
            name: param.default
            for name, param in _signature(self.factory).parameters.items()
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
            and name not in _ENGINE_ARGUMENTS
        }

    def accepts_any_option(self) -> bool:
        """Whether the factory takes ``**kwargs`` (so its options cannot be checked).

        Returns:
            ``True`` if any keyword is accepted.
        """
        if self.kind in _VALUE_KINDS:
            return False
        params = _signature(self.factory).parameters.values()
        return any(p.kind == p.VAR_KEYWORD for p in params)


def _signature(factory: Callable[..., Any]) -> inspect.Signature:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        return inspect.Signature([inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)])


def suggest(word: str, candidates: Iterable[str]) -> str:
    """Text naming the candidates nearest to ``word``, for error messages."""
    candidates = sorted(set(candidates))
    close = difflib.get_close_matches(word, candidates, n=5, cutoff=0.5)
    if close:
        return "did you mean " + ", ".join(repr(c) for c in close) + "?"
    if not candidates:
        return "none are registered"
    return "valid names: " + ", ".join(repr(c) for c in candidates)


class Registry:
    """Components by kind and name, filled from pluggy plugins.

    Args:
        group: the entry-point group to discover plugins in; ``None`` discovers
            nothing, so only plugins passed to :meth:`register_plugin` count.
    """

    def __init__(self, group: str | None = hookspecs.PROJECT) -> None:
        self._group = group
        self._manager = pluggy.PluginManager(hookspecs.PROJECT)
        self._manager.add_hookspecs(hookspecs)
        self._components: dict[tuple[str, str], Component] | None = None

    # -- discovery ---------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        if self._group is None:
            return
        for entry_point in importlib.metadata.entry_points(group=self._group):
            dist = entry_point.dist.name if entry_point.dist is not None else "?"
            source = f"{dist}:{entry_point.name}"
            if self._manager.has_plugin(source):
                continue  # the same distribution seen twice on sys.path
            try:
                plugin = entry_point.load()
            except Exception as exc:  # a broken plugin must not take the others down
                warnings.warn(
                    f"colorkit plugin {source!r} ({entry_point.value}) failed to import and "
                    f"was skipped: {type(exc).__name__}: {exc}",
                    PluginLoadWarning,
                    stacklevel=3,
                )
                continue
            if not self._manager.is_registered(plugin):
                self._manager.register(plugin, name=source)

    def _collect(self) -> dict[tuple[str, str], Component]:
        components: dict[tuple[str, str], Component] = {}
        for impl in reversed(self._manager.hook.colorkit_components.get_hookimpls()):
            source = impl.plugin_name
            try:
                provided = list(impl.function() or [])
            except Exception as exc:
                warnings.warn(
                    f"colorkit plugin {source!r} failed to list its components and was "
                    f"skipped: {type(exc).__name__}: {exc}",
                    PluginLoadWarning,
                    stacklevel=3,
                )
                continue
            for component in provided:
                if not isinstance(component, Component):
                    raise ColorkitError(
                        f"plugin {source!r} returned {component!r} from colorkit_components; "
                        "expected colorkit.Component objects"
                    )
                key = (component.kind, component.name)
                if key in components:
                    raise DuplicateComponentError(
                        f"{component.kind} {component.name!r} is registered twice: by "
                        f"{components[key].source!r} and by {source!r}"
                    )
                components[key] = Component(
                    component.kind, component.name, component.factory, component.summary, source
                )
        return components

    def _table(self) -> dict[tuple[str, str], Component]:
        if self._components is None:
            self._load_entry_points()
            self._components = self._collect()
        return self._components

    def register_plugin(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object (a module or instance with ``@hookimpl`` functions).

        Useful for components defined in a notebook or a test; distributed plugins
        should use an entry point instead.

        Args:
            plugin: the object implementing :func:`~colorkit.hookspecs.colorkit_components`.
            name: its name in error messages; defaults to pluggy's.

        Raises:
            DuplicateComponentError: if it provides a kind and name already registered.
        """
        self._table()
        self._manager.register(plugin, name=name)
        try:
            self._components = self._collect()
        except DuplicateComponentError:
            self._manager.unregister(plugin)
            self._components = self._collect()
            raise

    def unregister_plugin(self, plugin: object) -> None:
        """Remove a plugin registered with :meth:`register_plugin`.

        Args:
            plugin: the object that was registered.
        """
        self._manager.unregister(plugin)
        self._components = self._collect()

    # -- lookup ------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Component:
        """The registered component of this kind and name.

        Args:
            kind: one of :data:`KINDS`.
            name: the registered name.

        Returns:
            The component.

        Raises:
            UnknownComponentError: for an unknown kind or name, listing the nearest ones.
        """
        _check_kind(kind)
        try:
            return self._table()[(kind, name)]
        except KeyError:
            known = self.list(kind)
            raise UnknownComponentError(
                f"unknown {kind} {name!r}; {suggest(name, known)}"
            ) from None

    def list(self, kind: str, pattern: str | None = None) -> list[str]:
        """Sorted names of the registered components of a kind, optionally filtered.

        Args:
            kind: one of :data:`KINDS`.
            pattern: a shell-style wildcard such as ``"unet*"``.

        Returns:
            The matching names.

        Raises:
            UnknownComponentError: for an unknown kind.
        """
        _check_kind(kind)
        names = sorted(name for k, name in self._table() if k == kind)
        return fnmatch.filter(names, pattern) if pattern else names

    def components(self) -> list[Component]:
        """Every registered component, sorted by kind and name.

        Returns:
            The components.
        """
        return sorted(self._table().values(), key=lambda c: (KINDS.index(c.kind), c.name))

    def check_options(self, kind: str, name: str, options: dict[str, Any]) -> None:
        """Raise if a component does not accept these keyword options.

        Args:
            kind: the component kind.
            name: the component name.
            options: the keyword options to check.

        Raises:
            UnknownComponentError: for an unknown component.
            InvalidOptionError: naming the bad option and the nearest valid ones.
        """
        component = self.get(kind, name)
        if component.accepts_any_option():
            return
        valid = component.options()
        for key in options:
            if key not in valid:
                raise InvalidOptionError(
                    f"{kind} {name!r} has no option {key!r}; {suggest(key, valid)}"
                )

    def create(self, kind: str, name: str, **kwargs: Any) -> Any:
        """Create a component by kind and name.

        Args:
            kind: one of :data:`KINDS`.
            name: the registered name.
            **kwargs: options passed to the component's factory.

        Returns:
            The component (for the ``recipe`` kind, the :class:`colorkit.Recipe`; for
            ``weights``, the :class:`colorkit.weights.Weights` record).

        Raises:
            UnknownComponentError: for an unknown kind or name.
            InvalidOptionError: for an option the component does not take.
        """
        component = self.get(kind, name)
        if kind == "recipe":
            if kwargs:
                raise InvalidOptionError(
                    "recipes take no options here; pass overrides to colorkit.build()"
                )
            return copy.deepcopy(component.factory)  # callers may not alter the registered recipe
        if kind == "weights":
            if kwargs:
                raise InvalidOptionError("weights take no options; pass them to colorkit.load()")
            return component.factory
        user_options = {k: v for k, v in kwargs.items() if k not in _ENGINE_ARGUMENTS}
        self.check_options(kind, name, user_options)
        return component.factory(**kwargs)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UnknownComponentError(f"unknown component kind {kind!r}; {suggest(kind, KINDS)}")


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, discovered from entry points on first use.

    Returns:
        The shared :class:`Registry`.
    """
    global _default
    if _default is None:
        _default = Registry()
    return _default


def list_components(kind: str, pattern: str | None = None) -> list[str]:
    """Names of the registered components of a kind.

    Args:
        kind: ``"generator"``, ``"discriminator"``, ``"refiner"``, ``"loss"``, ``"recipe"``
            or ``"weights"``.
        pattern: an optional shell-style wildcard, e.g. ``"unet*"``.

    Returns:
        The sorted matching names.

    Raises:
        UnknownComponentError: for an unknown kind.

    Example:
        >>> import colorkit
        >>> colorkit.list_components("generator", "unet*")
        ['unet']
    """
    return default_registry().list(kind, pattern)


def create(kind: str, name: str, **kwargs: Any) -> Any:
    """Create one registered component by kind and name.

    Args:
        kind: the component kind.
        name: the registered name.
        **kwargs: options for the component.

    Returns:
        The component, e.g. an ``nn.Module``.

    Raises:
        UnknownComponentError: for an unknown kind or name (with the nearest names).
        InvalidOptionError: for an option the component does not take.

    Example:
        >>> import colorkit
        >>> unet = colorkit.create("generator", "unet", depth=6)
    """
    return default_registry().create(kind, name, **kwargs)
